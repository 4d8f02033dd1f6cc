"""The firmware apps (firmware/lockapp.py, boardio.py) on in-process simulated boards: the
REPL helpers act on the running lock (yes() answers a numeric comparison, status() and
bonds() show the result, forget() removes the bond), the lock state is level-3 only, the
LED blinks a passkey digit by digit and the button is debounced."""

import io
import sys
from contextlib import redirect_stdout

import pytest

from blesmp import const as C
from blesmp.manager import SecurityManager
from blesmp.store import BondStore
from tools.blesim import World
from tools.board.deploy import ROOT

sys.path.insert(0, str(ROOT / "firmware"))
import boardio  # noqa: E402
import lockapp  # noqa: E402

IRQ_GATTC_READ_RESULT = 15
IRQ_GATTC_READ_DONE = 16


class Peer:
    """A central on the simulator's "phone" profile (prompts reach its app), recording its IRQs."""

    def __init__(self, w, io_cap, mitm=True, profile="phone"):
        self.w = w
        self.board = w.board("phone", profile=profile)
        self.irqs = []
        self.events = []
        self.answer = {}
        with self.board:
            self.sm = SecurityManager(self.board.ble, store=BondStore(fs=self.board.fs), io=io_cap, mitm=mitm,
                                      central_prompts=profile == "phone", callback=self._cb,
                                      handler=self._irq, timer=None)

    def _irq(self, event, data):
        self.irqs.append((event, tuple(bytes(x) if isinstance(x, memoryview) else x for x in data)))

    def _cb(self, event, conn, value):
        self.events.append((C.event_name(event), value))
        f = self.answer.get(event)
        if f is not None:
            f(conn, value)

    def connect(self, lock_board):
        self.board.call(self.board.ble.gap_connect, lock_board.addr_type, lock_board.public_addr)
        assert self.w.run_until(lambda: self.sm.connections(), 5)
        return self.sm.connections()[0].handle

    def read(self, conn, handle):
        n = len(self.irqs)
        self.board.call(self.board.ble.gattc_read, conn, handle)
        assert self.w.run_until(lambda: any(e == IRQ_GATTC_READ_DONE for e, _ in self.irqs[n:]), 5)
        data = [d[2] for e, d in self.irqs[n:] if e == IRQ_GATTC_READ_RESULT]
        status = [d[2] for e, d in self.irqs[n:] if e == IRQ_GATTC_READ_DONE][0]
        return (data[0] if data else None), status

    def results(self):
        return [v for n, v in self.events if n == "AUTH_CMPL"]


@pytest.fixture
def world():
    lockapp.APP = None
    w = World(seed=7)
    yield w
    lockapp.APP = None
    w.close()


def start_lock(w, **kw):
    b = w.board("lock")
    out = []
    with b:
        app = lockapp.start(ble=b.ble, store=BondStore(fs=b.fs), board={}, out=out.append, **kw)
    return b, app, out


def helper(board, fn, *args):
    """Calls a REPL helper as the board would run it, capturing what it prints."""
    buf = io.StringIO()
    with redirect_stdout(buf):
        r = board.call(fn, *args)
    return r, buf.getvalue()


def test_numeric_comparison_answered_with_yes_then_status_bonds_forget(world):
    lock_board, app, out = start_lock(world)  # io from board.json default: DisplayYesNo
    phone = Peer(world, C.IO_DISPLAY_YESNO)
    phone.answer[C.NC_REQ_EVT] = lambda conn, n: phone.sm.confirm_reply(conn, True)
    conn = phone.connect(lock_board)
    # before pairing: the public battery level is readable, the lock state is not
    assert phone.read(conn, app.h_battery) == (bytes((87,)), 0)
    assert phone.read(conn, app.h_state) == (None, 0x100 + C.ATT_INSUFFICIENT_AUTHENTICATION)
    phone.board.call(phone.sm.pair, conn)
    assert world.run_until(lambda: app.pending is not None, 5)
    number = app.pending[2]
    assert any(line.startswith("CONFIRM %06d?" % number) for line in out)
    helper(lock_board, lockapp.yes)  # the user at the lock's REPL
    assert world.run_until(lambda: app.results and phone.results(), 5)
    r = app.results[-1]
    assert r.success and r.level == 4 and r.authenticated and r.bonded and r.key_size == 16
    assert phone.read(conn, app.h_state) == (b"locked", 0)
    _, text = helper(lock_board, lockapp.status)
    assert "locked" in text and "level=4" in text and "1 bond(s)" in text
    _, text = helper(lock_board, lockapp.bonds)
    assert text.startswith("0 ")
    ok, _ = helper(lock_board, lockapp.forget, 0)
    assert ok and app.sm.get_bond_device_num() == 0
    assert world.run_until(lambda: not app.conns, 5)  # forgetting a connected peer drops its link


def test_no_at_the_repl_refuses_the_pairing(world):
    lock_board, app, out = start_lock(world)
    phone = Peer(world, C.IO_DISPLAY_YESNO)
    phone.answer[C.NC_REQ_EVT] = lambda conn, n: phone.sm.confirm_reply(conn, True)
    conn = phone.connect(lock_board)
    phone.board.call(phone.sm.pair, conn)
    assert world.run_until(lambda: app.pending is not None, 5)
    helper(lock_board, lockapp.no)
    assert world.run_until(lambda: app.results, 5)
    assert not app.results[-1].success and app.results[-1].reason == C.REJECTED
    assert any(line.startswith("PAIRING FAILED") and "refused here" in line for line in out)
    assert app.sm.get_bond_device_num() == 0


def test_a_just_works_central_gets_level_2_and_no_lock_state(world):
    lock_board, app, out = start_lock(world)
    fob = Peer(world, C.IO_NO_INPUT_OUTPUT, mitm=False, profile="esp32")
    conn = fob.connect(lock_board)
    fob.board.call(fob.sm.pair, conn)
    assert world.run_until(lambda: app.results and fob.results(), 5)
    assert app.results[-1].success and app.results[-1].level == 2
    assert fob.read(conn, app.h_state) == (None, 0x100 + C.ATT_INSUFFICIENT_AUTHENTICATION)


def test_passkey_pattern_blinks_each_digit():
    p = boardio.passkey_pattern(102030)
    ons = []
    n = 0
    for on, ms in p:
        if on:
            n += 1
        elif ms > boardio._OFF_MS:  # the gap after a digit
            ons.append(n)
            n = 0
    assert ons == [1, 10, 2, 10, 3, 10]
    assert p[-1] == (0, boardio._REPEAT_GAP_MS)


class _FakePin:
    IN = OUT = PULL_UP = PULL_DOWN = 0
    level = 1

    def __init__(self, *a):
        pass

    def value(self, v=None):
        return _FakePin.level


class _FakeMachine:
    Pin = _FakePin


def test_button_click_is_debounced(world, monkeypatch):
    import time

    monkeypatch.setattr(boardio, "machine", _FakeMachine)
    b = boardio.Button({"pin": 0, "pull": "up", "active": 0})
    assert b.present and not b.clicked()
    _FakePin.level = 0  # pressed (active low)
    assert not b.clicked()
    time.sleep_ms(10)
    _FakePin.level = 1  # a 10 ms bounce: not a click
    assert not b.clicked()
    _FakePin.level = 0
    b.clicked()
    time.sleep_ms(80)
    _FakePin.level = 1
    assert b.clicked()  # released after 80 ms: one click
    assert not b.clicked()


def test_board_json_io_capability_reaches_the_app():
    assert boardio.io_capability({"io_capability": "keyboard_only"}) == C.IO_KEYBOARD_ONLY
    assert boardio.io_capability({}, 1) == C.IO_DISPLAY_YESNO
    assert boardio.load("/nonexistent/board.json") == {}
