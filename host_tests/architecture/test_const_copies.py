"""Every private copy `_X = const(v)` in lib/ has the value of `blesmp.const.X`.

MicroPython folds `const()` names into the code that uses them, so modules keep private copies
instead of reading `const.X` at run time; a copy that drifts from the public value would make the
manager report one reason while the app compares with another.
"""

import ast
import os
import sys

import blesmp.const as C

LIB = os.path.join(os.path.dirname(__file__), "..", "..", "lib", "blesmp")


def _copies():
    for fname in sorted(os.listdir(LIB)):
        if not fname.endswith(".py") or fname == "const.py":
            continue
        with open(os.path.join(LIB, fname), encoding="utf-8") as f:
            tree = ast.parse(f.read())
        for node in tree.body:
            if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
                continue
            target, value = node.targets[0], node.value
            if not (isinstance(target, ast.Name) and target.id.startswith("_")):
                continue
            if not (isinstance(value, ast.Call) and getattr(value.func, "id", None) == "const"):
                continue
            yield fname, target.id, ast.literal_eval(value.args[0])


def test_every_copy_of_a_public_constant_has_its_value():
    copies = list(_copies())
    public = [(f, n, v) for f, n, v in copies if hasattr(C, n[1:])]
    assert len(public) > 20  # the check looks at the real copies (manager, link, store code)
    wrong = ["%s: %s = %r, const.%s = %r" % (f, n, v, n[1:], getattr(C, n[1:]))
             for f, n, v in public if getattr(C, n[1:]) != v]
    assert not wrong, "\n".join(wrong)


def test_a_drifted_copy_is_caught(tmp_path, monkeypatch):
    # the check itself must fail on a copy whose value differs
    src = tmp_path / "blesmp"
    src.mkdir()
    (src / "x.py").write_text("from micropython import const\n_STORE_FULL = const(0x31)\n")
    monkeypatch.setattr(sys.modules[__name__], "LIB", str(src))
    copies = [c for c in _copies() if hasattr(C, c[1][1:])]
    assert copies == [("x.py", "_STORE_FULL", 0x31)] and C.STORE_FULL != 0x31
