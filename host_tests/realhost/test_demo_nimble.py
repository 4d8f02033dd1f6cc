"""`make demo STACK=nimble` / `STACK=nimble-mynewt`: the demo's four steps on the real NimBLE
host (firmware/ unmodified on real-host MicroPython, the phone a Bumble device) with the demo's
own checks; every check must hold and the table must have its four rows."""

import io
import os
import shutil
import warnings

import pytest
from realkit import interpreter_or_skip

from tools.demo import Demo


@pytest.mark.parametrize("host", ["esp", "mynewt"])
def test_demo_steps_on_real_host(host, tmp_path):
    interpreter_or_skip(host)
    for _attempt in (1, 2):
        out = io.StringIO()
        demo = Demo(width=100, svg_dir=str(tmp_path / "svg"), show_chart=False, out=out, nimble=host)
        rc = demo.run()
        text = out.getvalue()
        # a run where a step missed its deadline on a loaded shared machine runs once more (see
        # test_upstream_nimble.py); a defect fails both runs
        if not any("never printed" in f for f in demo.failures):
            break
        warnings.warn("the demo on nimble-%s missed a step's deadline (machine load?), runs again" % host,
                      stacklevel=1)
    assert rc == 0 and not demo.failures, text
    rows = {r["flow"][0]: r for r in demo.rows}
    assert sorted(rows) == ["1", "2", "3", "4"], text
    assert rows["1"]["method"] == "Just Works (LE SC)" and rows["1"]["level"] == 2
    # a fresh Just Works pairing is a new bond on both hosts (mynewt makes no bond-count look-up)
    first = next(line for line in text.splitlines() if "lock | SECURED" in line)
    assert "sc=1" in first and "(stored bond)" not in first and text.index("lock | BOND STORED") < text.index(first)
    assert rows["2"]["method"] == "Passkey Entry (LE SC)" and rows["2"]["level"] >= 3 and rows["2"]["bonded"] == 1
    assert rows["3"]["method"] == "stored LTK (no pairing)" and rows["3"]["bonded"] == 1
    assert rows["4"]["method"].endswith("FAILED") and rows["4"]["bonded"] == 0
    charts = sorted(f for f in os.listdir(tmp_path / "svg") if f.endswith(".svg"))  # beside the captures
    assert charts == ["step1.svg", "step2.svg", "step3.svg", "step4.svg"]
    shutil.rmtree(tmp_path / "svg")
