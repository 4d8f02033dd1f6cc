"""A green run is quiet: the MicroPython unit runner shows what a test printed only when that
test fails, and make fuzz's progress is one rewritten line on a terminal, plain lines in CI."""

import io
import os
import subprocess
import sys

from tools import fuzz
from tools.blesim.run import micropython_exe

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_mptest_shows_output_only_of_failing_tests(tmp_path):
    (tmp_path / "test_x.py").write_text(
        "def test_loud_but_passing():\n    print('expected noise')\n\n"
        "def test_failing():\n    print('why it failed')\n    assert 1 == 2, 'boom'\n")
    r = subprocess.run([micropython_exe(), "tools/mptest.py", str(tmp_path / "test_x.py")], cwd=ROOT,
                       env=dict(os.environ, MICROPYPATH="lib:.frozen"), capture_output=True, text=True)
    assert r.returncode == 1
    assert "expected noise" not in r.stdout
    assert "FAIL %s::test_failing" % (tmp_path / "test_x.py") in r.stdout
    assert "why it failed" in r.stdout and "AssertionError: boom" in r.stdout
    assert r.stdout.rstrip().endswith("mptest: 1 passed, 1 failed (viper kernels)")


class _Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


def test_fuzz_progress_plain_lines_in_ci(monkeypatch):
    err = _Stream(False)
    monkeypatch.setattr(sys, "stderr", err)
    fuzz._LAST.clear()
    for i in range(1, 101):
        fuzz._progress("engine", i, 100)
    fuzz._progress_end()
    lines = err.getvalue().split("\n")
    assert "\r" not in err.getvalue()
    assert lines[:-1] == ["engine: %d/100" % n for n in range(10, 101, 10)]


def test_fuzz_progress_one_line_on_a_terminal(monkeypatch):
    err = _Stream(True)
    monkeypatch.setattr(sys, "stderr", err)
    for i in range(1, 51):
        fuzz._progress("air", i, 50)
    fuzz._progress_end()
    out = err.getvalue()
    assert out.count("\n") == 1 and out.endswith("air: 50/50\033[K\n") and out.count("\r") == 50
