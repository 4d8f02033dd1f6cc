"""The multitests of this folder (MicroPython's multitest format, .exp files) run through
tools/multitest.py: each instance a separate process joined to one air broker, on CPython,
and with one instance on the real MicroPython interpreter."""

import glob
import os

import pytest

from tools.blesim.run import micropython_exe
from tools.multitest import run_test

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = sorted(glob.glob(os.path.join(HERE, "ble_*.py")))


def _mp():
    try:
        micropython_exe()
    except RuntimeError:
        pytest.skip("no micropython interpreter")


def _check(r):
    assert r.expected is not None, "missing .exp"
    assert r.status == "pass", "output differs from %s.exp:\n%s" % (os.path.basename(r.path), r.output)


@pytest.mark.parametrize("path", TESTS, ids=os.path.basename)
def test_cpython(path):
    _check(run_test(path, ["cpython"]))


@pytest.mark.parametrize("path", TESTS, ids=os.path.basename)
def test_peripheral_on_micropython(path):
    _mp()
    _check(run_test(path, ["mp", "cpython"]))


@pytest.mark.parametrize("path", TESTS, ids=os.path.basename)
def test_central_on_micropython(path):
    _mp()
    _check(run_test(path, ["cpython", "mp"]))


def test_a_wrong_expectation_fails(tmp_path):
    """The comparison is exact: one changed field in the .exp makes the test fail."""
    src = os.path.join(HERE, "ble_pair.py")
    dst = tmp_path / "ble_pair.py"
    dst.write_text(open(src).read())
    exp = open(src + ".exp").read()
    assert "_IRQ_ENCRYPTION_UPDATE 1 0 0 16" in exp
    (tmp_path / "ble_pair.py.exp").write_text(exp.replace("_IRQ_ENCRYPTION_UPDATE 1 0 0 16",
                                                          "_IRQ_ENCRYPTION_UPDATE 1 0 1 16", 1))
    r = run_test(str(dst), ["cpython"])
    assert r.status == "fail"
    assert "_IRQ_ENCRYPTION_UPDATE 1 0 0 16" in r.output


def test_silent_instance_times_out(tmp_path):
    """An instance that prints nothing for the read timeout gets TIMEOUT and fails the test
    (a short timeout here; the runner's default is upstream's 10 s)."""
    t = tmp_path / "silent.py"
    t.write_text("import sys\n\n\ndef instance0():\n    multitest.next()\n    sys.stdin.readline()\n\n\n"
                 "def instance1():\n    multitest.next()\n    print('hello')\n")
    (tmp_path / "silent.py.exp").write_text("--- instance0 ---\n\n--- instance1 ---\nhello\n")
    r = run_test(str(t), ["cpython"], timeout=1.5)
    assert r.status == "fail"
    assert "TIMEOUT" in r.output


def test_globals_broadcast_and_skip(tmp_path):
    t = tmp_path / "sync.py"
    t.write_text(
        "import time\n\n\n"
        "def instance0():\n    multitest.globals(X=(1, b'\\x02'))\n    multitest.next()\n"
        "    time.sleep_ms(500)\n    multitest.broadcast('go')\n    multitest.wait('done')\n    print('i0 done')\n\n\n"
        "def instance1():\n    multitest.next()\n    t0 = time.ticks_ms()\n    multitest.wait('go')\n"
        "    print('i1', X, time.ticks_diff(time.ticks_ms(), t0) >= 500)\n    multitest.broadcast('done')\n")
    (tmp_path / "sync.py.exp").write_text(
        "--- instance0 ---\ni0 done\n--- instance1 ---\ni1 (1, b'\\x02') True\n")
    assert run_test(str(t), ["cpython"]).status == "pass"
    s = tmp_path / "skip.py"
    s.write_text("def instance0():\n    multitest.skip()\n\n\ndef instance1():\n    multitest.next()\n")
    assert run_test(str(s), ["cpython"]).status == "skip"


def test_without_exp_micropython_is_checked_against_cpython(tmp_path):
    """No .exp: as upstream, the truth is the same test with every instance on CPython."""
    _mp()
    t = tmp_path / "scan.py"
    t.write_text(
        "import time\nimport bluetooth\nimport machine\n\n\n"
        "def instance0():\n    multitest.globals(BDADDR=ble.config('mac'))\n    multitest.next()\n"
        "    ble.gap_advertise(100_000, b'\\x02\\x01\\x06\\x04\\xffMPY', connectable=False)\n"
        "    time.sleep_ms(1500)\n    ble.gap_advertise(None)\n    print('adv done')\n\n\n"
        "def instance1():\n    multitest.next()\n    seen = {}\n    done = []\n\n"
        "    def irq(ev, data):\n        if ev == 5 and data[0] == BDADDR[0] and bytes(data[1]) == BDADDR[1]:\n"
        "            seen[data[2]] = bytes(data[4])\n        elif ev == 6:\n            done.append(1)\n\n"
        "    ble.irq(irq)\n    ble.gap_scan(1000, 30000, 30000)\n    while not done:\n        machine.idle()\n"
        "    print('types', sorted(seen), 'data', seen.get(2))\n\n\n"
        "ble = bluetooth.BLE()\nble.active(1)\n")
    r = run_test(str(t), ["cpython", "mp"])
    assert r.truth_from == "cpython" and r.status == "pass", r.output
    # non-connectable advertising is ADV_SCAN_IND (2) on the firmware (see test_gap)
    assert "types [2] data b'\\x02\\x01\\x06\\x04\\xffMPY'" in r.output
    r = run_test(str(t), ["cpython"])
    assert r.status == "fail" and r.expected is None  # nothing to compare with
