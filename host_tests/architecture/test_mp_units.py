"""The unit tests `make test-mp` runs on MicroPython are the files marked on their first line; a
marker anywhere else would be selected by the Makefile's grep but read as misplaced, and a marked
file must not need pytest (MicroPython has none)."""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MARK = "# Runs on MicroPython too (make test-mp)."


def _test_files():
    for d, dirs, files in os.walk(os.path.join(ROOT, "host_tests")):
        dirs[:] = sorted(x for x in dirs if x != "__pycache__")
        for f in sorted(files):
            if f.startswith("test_") and f.endswith(".py"):
                yield os.path.join(d, f)


def test_marked_files_carry_the_mark_on_line_one_and_need_no_pytest():
    marked = []
    for path in _test_files():
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        if MARK not in lines:
            continue
        rel = os.path.relpath(path, ROOT)
        assert lines[0] == MARK, "%s: the make test-mp mark must be its first line" % rel
        assert not any(l.startswith(("import pytest", "from pytest")) for l in lines), rel
        marked.append(rel)
    # the unit suites of lib/, one per concern folder (crypto, store, resolver, manager, package)
    assert {p.split(os.sep)[1] for p in marked} >= {"crypto", "store", "resolver", "manager", "architecture"}, marked
