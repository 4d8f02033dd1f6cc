"""Issue 10: the demo's flows with the lock (firmware/main.py + lib/blesmp, unmodified) on
the real MicroPython interpreter and its peers on CPython, all on one simulated air."""

import re
import subprocess
import sys

import pytest

from tools.blesim.run import ROOT, micropython_exe


def test_demo_flows_with_the_lock_on_micropython(tmp_path):
    try:
        micropython_exe()
    except RuntimeError:
        pytest.skip("no micropython")
    r = subprocess.run([sys.executable, "tools/demo.py", "--mp", "--no-chart", "--svg-dir", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert "All steps gave the expected result." in out and "[FAIL]" not in out
    assert "the lock ran on MicroPython, unix port" in out
    table = out[out.index("Summary"):]
    assert re.search(r"Passkey Entry \(LE SC\)\s+4\s+16\s+yes", table)
    assert re.search(r"stored LTK \(no pairing\)\s+2\s+16\s+yes", table)  # bonds reloaded by MicroPython
