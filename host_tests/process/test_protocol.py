"""The broker's wire protocol end to end, against a stand-in World (fakeworld.py), with the
board scripts in real processes on CPython and on MicroPython."""

import os
import subprocess
import sys

import pytest

from tools.blesim.broker import Broker
from tools.blesim.run import board_command, micropython_exe

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fakeworld import FakeWorld  # noqa: E402

INTERPS = ["cpython", "mp"]


def _mp_available():
    try:
        micropython_exe()
        return True
    except RuntimeError:
        return False


def _run(scripts, tmp_path):
    """Runs {name: (script, interp)} on one broker; returns ({name: stdout}, world)."""
    w = FakeWorld()
    b = Broker(world=w, expect=list(scripts))
    addr = b.start_thread()
    procs = {}
    try:
        for name, (script, interp) in scripts.items():
            argv, env = board_command(os.path.join(HERE, "scripts", script), name, addr, interp)
            procs[name] = subprocess.Popen(argv, env=env, cwd=str(tmp_path), stdout=subprocess.PIPE,
                                           stderr=subprocess.STDOUT, text=True)
        out = {}
        for name, p in procs.items():
            out[name] = p.communicate(timeout=60)[0]
            assert p.returncode == 0, out[name]
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
        b.stop()
    return out, w


@pytest.mark.parametrize("interp", INTERPS)
def test_calls_irqs_clock_and_handler_errors(interp, tmp_path):
    if interp == "mp" and not _mp_available():
        pytest.skip("no micropython")
    out, w = _run({"a": ("proto_one.py", interp)}, tmp_path)
    lines = out["a"].splitlines()
    assert lines[0] == "('pong', (1, b'ab', (2, 3)), {'k': 'v'})"
    assert lines[1] == "True False True"  # methods come from the firmware model; BLE() is a singleton
    # GET_SECRET arrives in the middle of the call, read-only, with a nested call inside the handler,
    # and the handler's return value is what the firmware got
    assert lines[2:6] == ["get_secret 1 0 b'\\x00\\x01\\x02\\x03\\x04\\x05\\x06'", "read-only",
                          "nested ('pong', (5,), {})", "b'\\x11\\x11\\x11\\x11'"]
    assert lines[6] == "stale False"  # the memoryview is not valid after the handler returned
    # a timer IRQ lands during sleep_ms at its virtual time; sleep_ms(1000) takes 1000 virtual ms
    assert lines[7] == "later 7 b'xy' 500"
    assert lines[8] == "slept 1000"
    assert lines[9] == "oserror 128"
    assert lines[10] == "Unhandled exception in IRQ callback handler"
    assert lines[11] == "Traceback (most recent call last):"
    assert "in irq" in lines[12] and "_blesim" not in out["a"]
    assert lines[13] == "ValueError: boom"
    assert lines[14] == "handler kept False"  # the firmware removed the handler
    assert w.now >= 1.02  # the virtual clock moved; the test did not sleep that long


@pytest.mark.parametrize("ia,ib", [("cpython", "cpython"), ("mp", "cpython"), ("cpython", "mp")])
def test_irq_to_a_busy_board_and_cross_board_return_values(ia, ib, tmp_path):
    if "mp" in (ia, ib) and not _mp_available():
        pytest.skip("no micropython")
    out, w = _run({"a": ("proto_a.py", ia), "b": ("proto_b.py", ib)}, tmp_path)
    assert out["b"].splitlines() == ["b got hello b"]
    assert out["a"].splitlines() == ["ping pong", "a saw ['b']"]


@pytest.mark.parametrize("interp", INTERPS)
def test_machine_timer_and_idle_on_the_virtual_clock(interp, tmp_path):
    if interp == "mp" and not _mp_available():
        pytest.skip("no micropython")
    out, w = _run({"a": ("timer.py", interp)}, tmp_path)
    assert out["a"].splitlines() == ["fired [250, 500, 750, 1000]", "oneshot [100] 100",
                                     "nvs 7 True"]


@pytest.mark.parametrize("interp", INTERPS)
def test_asyncio_on_the_virtual_clock(interp, tmp_path):
    if interp == "mp" and not _mp_available():
        pytest.skip("no micropython")
    out, w = _run({"a": ("aio_board.py", interp)}, tmp_path)
    assert out["a"].splitlines() == ["slept 2000", "woken by irq after 700 b'tsf' 700", "timeout after 30700"]
    assert w.now >= 32.7  # 32.7 virtual seconds, no real sleeping


@pytest.mark.parametrize("interp", INTERPS)
def test_asyncio_tasks_events_cancel(interp, tmp_path):
    if interp == "mp" and not _mp_available():
        pytest.skip("no micropython")
    out, w = _run({"a": ("aio_more.py", interp)}, tmp_path)
    assert out["a"].splitlines() == ["[10, 20, 30] [2, 3, 1] 300", "event at 800", "cancelled True",
                                     "locked True", "wait_for timeout at 1350"]


@pytest.mark.parametrize("interp", INTERPS)
def test_handler_may_return_a_view_of_its_data(interp, tmp_path):
    if interp == "mp" and not _mp_available():
        pytest.skip("no micropython")
    out, w = _run({"a": ("proto_retview.py", interp)}, tmp_path)
    assert out["a"].splitlines() == ["b'\\x00\\x01\\x02\\x03'"]


def test_broker_survives_a_bad_client():
    import socket

    w = FakeWorld()
    b = Broker(world=w)
    addr = b.start_thread()
    host, port = addr.split(":")
    with socket.create_connection((host, int(port))) as s:
        s.sendall(b"this is not json\n")
        assert s.recv(100) == b""  # dropped
    from tools.blesim.broker import control

    assert control(addr, {"op": "status"})["op"] == "status"  # still serving
    b.stop()


def test_broker_refuses_a_second_board_with_the_same_address():
    import json
    import socket

    from tools.blesim.world import World

    b = Broker(world=World())
    addr = b.start_thread()
    host, port = addr.split(":")

    def hello(name, opts):
        s = socket.create_connection((host, int(port)))
        s.sendall((json.dumps({"op": "hello", "board": name, "opts": opts, "d": 0}) + "\n").encode())
        buf = b""
        while b"\n" not in buf:
            buf += s.recv(4096)
        return s, json.loads(buf.split(b"\n")[0])

    s1, m1 = hello("a", {"addr": "a4cf12000002"})
    s2, m2 = hello("b", {})  # the next address no board has: not a4cf12000002 again
    s3, m3 = hello("c", {"addr": "a4cf12000002"})
    try:
        assert m1["op"] == "welcome" and m1["addr"] == "a4cf12000002"
        assert m2["op"] == "welcome" and m2["addr"] == "a4cf12000003"
        assert m3 == {"op": "refused", "why": "address a4cf12000002 is board 'a''s", "now": m3["now"]}
    finally:
        for s in (s1, s2, s3):
            s.close()
        b.stop()
