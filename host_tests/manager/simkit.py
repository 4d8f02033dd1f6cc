"""Simulated boards running SecurityManager: the helpers of the manager scenario tests.

    w = World(seed=...)
    p = Dev(w, "periph", io=IO_DISPLAY_ONLY, mitm=True)     # board + BondStore on its flash + sm
    c = Dev(w, "central")
    link = connect(w, c, p)                                  # (central handle, peripheral handle)

Each Dev records its manager's events as (name, conn, value) in `events`, drives sm.poll()
every 250 ms of virtual time (what the machine.Timer does on a board) and can answer prompts
through `answers` (a dict event name -> function(dev, conn, value)).
"""

import pytest

from blesmp import const as C
from blesmp.manager import SecurityManager
from blesmp.store import BondStore
from tools.blesim import World  # noqa: F401  (re-exported for the tests)


class Dev:
    def __init__(self, w, name, addr=None, profile=None, store_kw=None, cls=SecurityManager, store_cls=BondStore, **kw):
        self.w = w
        self.cls = cls
        self.store_cls = store_cls
        self.board = w.board(name, addr=addr, profile=profile)
        self.kw = kw
        self.store_kw = store_kw or {}
        self.events = []
        self.answers = {}
        self.app_irqs = []
        self.gen = 0
        self.boot()

    @property
    def ble(self):
        return self.board.ble

    def boot(self):
        """(Re)starts the application after a reset or power cycle: a new store read from flash
        and a new manager, installed before active(True)."""
        self.gen += 1
        self.events = []
        kw = dict(self.kw)
        kw.setdefault("timer", None)
        kw.setdefault("handler", self._app_irq)
        with self.board:
            self.store = self.store_cls(fs=self.board.fs, **self.store_kw)
            self.sm = self.cls(self.board.ble, store=self.store, callback=self._cb, **kw)
        self._tick(self.gen)

    def _app_irq(self, event, data):
        self.app_irqs.append(event)

    def _tick(self, gen):
        if gen != self.gen or not self.board.powered:
            return
        with self.board:
            self.sm.poll()
        self.w.schedule(0.25, self._tick, gen)

    def _cb(self, event, conn, value):
        name = C.event_name(event)
        self.events.append((name, conn, value))
        f = self.answers.get(name)
        if f is not None:
            f(self, conn, value)

    def names(self):
        return [e[0] for e in self.events]

    def results(self):
        return [e[2] for e in self.events if e[0] == "AUTH_CMPL"]

    def result(self):
        r = self.results()
        assert len(r) == 1, self.events
        return r[0]

    def conn(self):
        links = self.sm.connections()
        assert len(links) == 1, links
        return links[0].handle

    def call(self, fn, *args):
        return self.board.call(fn, *args)

    def power_cycle(self):
        self.board.power_off()
        self.w.run(0.5)
        self.board.power_on()
        self.boot()


def connect(w, central, periph, timeout=5.0):
    """periph advertises, central connects; returns (central handle, peripheral handle)."""
    periph.call(periph.ble.gap_advertise, 50000, b"\x02\x01\x06")
    n_c = len(central.sm.connections())
    central.call(central.ble.gap_connect, periph.board.addr_type, periph.board.public_addr)
    ok = w.run_until(lambda: central.sm.connections() and periph.sm.connections(), timeout)
    assert ok, "no connection"
    del n_c
    return central.sm.connections()[-1].handle, periph.sm.connections()[-1].handle


def done(dev):
    return lambda: any(e[0] == "AUTH_CMPL" for e in dev.events)


def both_done(w, a, b, timeout=40):
    """Runs until both devices have reported AUTH_CMPL (True) or `timeout` s of virtual time."""
    return w.run_until(lambda: done(a)() and done(b)(), timeout)


def world_fixture(seed):
    """A test module's `w` fixture (`w = world_fixture(7)`): a World with `seed`, closed after
    the test."""

    @pytest.fixture
    def w():
        world = World(seed=seed)
        yield world
        world.close()

    return w


def make_phone_ble(max_key_size=16):
    """A BLE model for a *phone* (or a firmware patched to forward prompts to a central): the
    ESP32 firmware model unchanged except that PASSKEY_ACTION reaches Python in the central role
    too, and an optional smaller Maximum Encryption Key Size in its Pairing Request/Response.
    Stock ESP32 boards in these tests never use it."""
    from tools.blesim.firmware.ble import BLE, IRQ_PASSKEY_ACTION

    class PhoneBLE(BLE):
        def _io_request(self, c, action, number):
            c.io_action = action
            c.io_injected = False
            self._irq(IRQ_PASSKEY_ACTION, (c.handle, action, number), conn=c.handle)

        def _engine(self, c):
            eng = BLE._engine(self, c)
            eng.config.max_key_size = max_key_size
            return eng

    return PhoneBLE


class Phone(Dev):
    """A central with prompts (see make_phone_ble), running the same SecurityManager with
    central_prompts=True."""

    def __init__(self, w, name, addr=None, max_key_size=16, **kw):
        self._cls = make_phone_ble(max_key_size)
        kw.setdefault("central_prompts", True)
        Dev.__init__(self, w, name, addr=addr, **kw)

    def boot(self):
        b = self.board
        if not isinstance(b.ble, self._cls):
            b._ble_cls = self._cls
            b.ble = self._cls(b)
        Dev.boot(self)
