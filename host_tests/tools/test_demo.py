"""`make demo` passes: firmware/main.py and the fob / phone on simulated boards, one
process each, all four steps with the expected results (the demo checks each one and
exits non-zero otherwise); the summary table and the SVG charts are there."""

import re
import subprocess
import sys

import pytest

from tools import demo

ROOT = demo.ROOT


@pytest.mark.parametrize("mp", [False, True], ids=["cpython", "micropython"])
def test_demo_passes_every_step(tmp_path, mp):
    argv = [sys.executable, "tools/demo.py", "--no-chart", "--svg-dir", str(tmp_path),
            "--stack", "sim-mp" if mp else "sim"]
    r = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert ("the lock and the fob ran on MicroPython" in out) == mp
    assert "All steps gave the expected result." in out and "[FAIL]" not in out
    table = out[out.index("Summary"):]
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^(\d) .*$", table, re.M)}
    assert set(rows) == {"1", "2", "3", "4"}
    assert re.search(r"Just Works \(LE SC\)\s+2\s+16\s+yes", rows["1"])
    assert re.search(r"Passkey Entry \(LE SC\)\s+4\s+16\s+yes", rows["2"])
    assert re.search(r"stored LTK \(no pairing\)\s+2\s+16\s+yes", rows["3"])
    assert re.search(r"Passkey Entry \(LE SC\) FAILED\s+1\s+0\s+no", rows["4"])
    # the passkey the phone's user typed is the one the lock displayed (step 2), and not (step 4)
    shown = re.findall(r"lock \| PASSKEY (\d{6})", out)
    typed = re.findall(r"phone\| TYPED (\d{6})", out)
    assert len(shown) == len(typed) == 2 and shown[0] == typed[0] and shown[1] != typed[1]
    assert "Pairing Failed 0x04 (Confirm Value Failed)" in out
    for n in (1, 2, 3, 4):
        svg = (tmp_path / ("step%d.svg" % n)).read_text()
        assert svg.startswith("<svg") or "<svg" in svg[:200]
        assert "PAIRING" in svg or n == 3


def test_demo_exits_nonzero_when_a_step_misses(tmp_path, monkeypatch):
    # The fob never reports its result (as if pairing hung): the step must fail, the summary
    # must say so, and the exit status must be non-zero.
    import io

    real_expect = demo.Session.expect

    def expect(self, name, pattern, timeout=demo.STEP_TIMEOUT):
        if name == "fob" and "SECURED" in pattern:
            raise demo.StepFailed("fob: no result (injected)")
        return real_expect(self, name, pattern, timeout)

    monkeypatch.setattr(demo.Session, "expect", expect)
    out = io.StringIO()
    d = demo.Demo(svg_dir=str(tmp_path), show_chart=False, out=out)
    assert d.run([1]) == 1
    text = out.getvalue()
    assert "DEMO FAILED" in text and "fob: no result (injected)" in text
    assert d.rows and d.rows[0]["result"] == "FAIL"


def test_demo_summary_only_prints_the_table_and_verdict(tmp_path):
    """make test's demo gate: one table and the verdict, no board output, no charts."""
    r = subprocess.run([sys.executable, "tools/demo.py", "--summary-only", "--svg-dir", str(tmp_path), "--steps", "1"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "All steps gave the expected result." in r.stdout
    assert "1 Just Works (ESP32 fob)" in r.stdout
    assert "lock |" not in r.stdout and "fob  |" not in r.stdout and "Step 1" not in r.stdout
    assert len(r.stdout.strip().split("\n")) < 15


def test_demo_unknown_stack_lists_the_known_ones():
    r = subprocess.run([sys.executable, "tools/demo.py", "--stack", "esp"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2
    assert "unknown stack 'esp'; known stacks: %s" % ", ".join(demo.STACKS) in r.stderr
    assert "sim, sim-mp" in r.stderr


def test_make_demo_mp_1_points_to_stack():
    """MP names the MicroPython binary in the Makefile: MP=1 must not be taken as a demo option."""
    r = subprocess.run(["make", "-s", "demo", "MP=1", "STAMP=" ], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode != 0
    assert "make demo STACK=sim-mp" in r.stdout + r.stderr


def test_no_air_time_passes_while_the_host_is_slow_to_start_the_second_board(tmp_path, monkeypatch):
    # On a loaded machine the second board's process starts late; the lock must not advertise
    # alone meanwhile (the clock waits for the announced board), or the step's air depends on load.
    import io
    import json
    import time as _time

    real_start = demo.Session.start

    def slow_start(self, name, *a, **k):
        if name == "fob":
            _time.sleep(1.5)  # wall time only
        return real_start(self, name, *a, **k)

    monkeypatch.setattr(demo.Session, "start", slow_start)
    d = demo.Demo(svg_dir=str(tmp_path), show_chart=False, out=io.StringIO())
    assert d.run([1]) == 0
    with open(tmp_path / "step1.jsonl") as f:
        joins = {r["board"]: r["t"] for r in map(json.loads, f) if r["kind"] == "note" and r["name"] == "join"}
    assert joins["fob"] - joins["lock"] < 0.05, joins
