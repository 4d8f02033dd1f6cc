"""The multitests of this folder (MicroPython's multitest format, .exp files) run through
tools/multitest.py: each instance a separate process joined to one air broker, on CPython,
and with one instance on the real MicroPython interpreter."""

import glob
import os

import pytest

from tools.blesim.run import micropython_exe
from tools.multitest import main, run_test

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


def _interps():
    out = [["cpython"]]
    try:
        micropython_exe()
        out.append(["mp"])
    except RuntimeError:
        pass
    return out


def test_output_metric_lines_are_reported_apart_from_the_output(tmp_path, capsys):
    """upstream run-multitests.py: an OUTPUT_METRIC line (multitest.output_metric) is not part
    of the output compared with the .exp; the runner prints it after the result."""
    t = tmp_path / "metric.py"
    t.write_text("def instance0():\n    multitest.next()\n    print('a')\n    multitest.output_metric('took 5 ms')\n"
                 "    print('b')\n\n\ndef instance1():\n    multitest.next()\n")
    (tmp_path / "metric.py.exp").write_text("--- instance0 ---\na\nb\n--- instance1 ---\n\n")
    for interps in _interps():
        r = run_test(str(t), interps)
        assert r.status == "pass" and r.metrics == ["took 5 ms"], (interps, r.output)
    assert main([str(t)]) == 0
    out = capsys.readouterr().out
    assert out.index("pass") < out.index("%s: took 5 ms" % t)


REBOOT = (
    "import machine\nimport os\nimport time\n\n\n"
    "def instance0():\n    multitest.next()\n    with open('state', 'w') as f:\n        f.write('kept')\n"
    "    multitest.wait('ready')\n    multitest.expect_reboot(resume='instance0_resume', delay_ms=100)\n"
    "    print('dropped: the runner reads nothing between WAIT_FOR_REBOOT and the reboot')\n"
    "    machine.{how}\n\n\n"
    "def instance0_resume():\n    print('restarted', open('state').read())\n    multitest.broadcast('back')\n\n\n"
    "def instance1():\n    multitest.next()\n    multitest.broadcast('ready')\n    multitest.wait('back')\n"
    "    print('peer saw it back')\n")
REBOOT_EXP = ("--- instance0 ---\nWAIT_FOR_REBOOT instance0_resume 100\nrestarted kept\n"
              "--- instance1 ---\npeer saw it back\n")


@pytest.mark.parametrize("how", ["deepsleep(100)", "reset()"])
def test_expect_reboot_restarts_the_instance_with_its_resume_function(tmp_path, how):
    """upstream: multitest.expect_reboot(resume, delay_ms) prints WAIT_FOR_REBOOT (kept in the
    output); the board reboots (here: its process ends with status 99, machine.deepsleep or
    reset); the test file runs again with the resume function; the board's flash is kept."""
    t = tmp_path / "reboot.py"
    t.write_text(REBOOT.replace("{how}", how))
    (tmp_path / "reboot.py.exp").write_text(REBOOT_EXP)
    for interps in _interps():
        r = run_test(str(t), interps)
        assert r.status == "pass", (interps, r.output)


def test_a_board_that_does_not_reboot_fails_the_test_with_a_note(tmp_path):
    t = tmp_path / "noreboot.py"
    t.write_text(REBOOT.replace("machine.{how}", "pass"))
    (tmp_path / "noreboot.py.exp").write_text(REBOOT_EXP)
    r = run_test(str(t), ["cpython"], timeout=2)
    assert r.status == "fail"
    # (then instance1 waits for "back" in vain: TIMEOUT, and maybe a note that nothing can wake it)
    assert r.notes[0] == "Reboot: instance0 did not reboot (exit status 0)"


def test_a_resume_function_of_another_instance_is_an_error(tmp_path):
    t = tmp_path / "badresume.py"
    t.write_text(REBOOT.replace("resume='instance0_resume'", "resume='instance1_resume'").replace("{how}", "reset()"))
    with pytest.raises(SystemExit, match='must start with "instance0"'):
        run_test(str(t), ["cpython"])


def test_a_broadcast_before_the_receiver_has_joined_holds_the_clock(tmp_path):
    """The line is on its way to a board that has not joined yet (the runner hands it over once
    that board printed NEXT): the clock must not run meanwhile, or the broadcaster's 5 s wait
    for the connection times out while the peer has not even read "adv" (upstream
    ble_characteristic.py failed so: the central's gap_connect ended at once)."""
    t = tmp_path / "early.py"
    t.write_text(
        "import time\nimport bluetooth\nimport machine\n\nev = []\n\n\n"
        "def irq(e, d):\n    ev.append(e)\n\n\n"
        "def instance0():\n    multitest.globals(BDADDR=ble.config('mac'))\n    multitest.next()\n"
        "    ble.gap_advertise(20_000, b'\\x02\\x01\\x06')\n    multitest.broadcast('adv')\n"
        "    t0 = time.ticks_ms()\n    while 1 not in ev and time.ticks_diff(time.ticks_ms(), t0) < 5000:\n"
        "        machine.idle()\n    print('connected' if 1 in ev else 'timeout')\n\n\n"
        "def instance1():\n    multitest.next()\n    multitest.wait('adv')\n    ble.gap_connect(*BDADDR)\n"
        "    t0 = time.ticks_ms()\n    while 7 not in ev and time.ticks_diff(time.ticks_ms(), t0) < 5000:\n"
        "        machine.idle()\n    print('connected' if 7 in ev else 'failed')\n\n\n"
        "ble = bluetooth.BLE()\nble.active(1)\nble.irq(irq)\n")
    (tmp_path / "early.py.exp").write_text("--- instance0 ---\nconnected\n--- instance1 ---\nconnected\n")
    for interps in _interps():
        r = run_test(str(t), interps)
        assert r.status == "pass", (interps, r.output)


def test_instances_left_waiting_on_a_peer_that_ended_stop_at_once_with_a_note(tmp_path):
    """instance1 waits for a broadcast that instance0, which has ended, will never send: nothing
    can wake it, so the runner ends the test with TIMEOUT and says why, instead of sitting out
    the real-time timeout (here 60 s: the test must not need it)."""
    t = tmp_path / "orphan.py"
    t.write_text("import bluetooth\n\n\ndef instance0():\n    multitest.next()\n    print('bye')\n\n\n"
                 "def instance1():\n    multitest.next()\n    bluetooth.BLE().active(1)\n"
                 "    bluetooth.BLE().gap_advertise(100_000, b'\\x02\\x01\\x06')  # air events go on: no matter\n"
                 "    multitest.wait('never')\n    print('woke')\n")
    (tmp_path / "orphan.py.exp").write_text("--- instance0 ---\nbye\n--- instance1 ---\nwoke\n")
    for interps in _interps():
        r = run_test(str(t), interps, timeout=60)
        assert r.status == "fail", (interps, r.output)
        assert r.output == "--- instance0 ---\nbye\n--- instance1 ---\nTIMEOUT\n"
        assert r.notes == ["blesim: every instance is waiting and nothing can wake it (instance0 ended): stopped at "
                           "once (upstream would print TIMEOUT after 60 s)"]
