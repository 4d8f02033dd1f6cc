# Review findings on SecurityManager's IRQ handling, each a failing test before its fix. Runs
# under pytest (CPython) and tools/mptest.py (MicroPython): plain asserts, a fake BLE object and a
# dict store, no simulator.
import time

if not hasattr(time, "ticks_add"):  # CPython without a blesim World
    time.ticks_add = lambda a, b: a + b
    time.ticks_diff = lambda a, b: a - b
    time.ticks_ms = lambda: 0

from blesmp import const as C
from blesmp import manager as M

PEER = b"\x11\x22\x33\x44\x55\x66"
ZERO7 = bytes(7)
KEY = bytes([0]) + bytes(PEER[5 - i] for i in range(6))


class _BLE:
    def __init__(self):
        self.handler = None
        self.calls = []

    def config(self, **kw):
        pass

    def irq(self, h):
        self.handler = h

    def active(self, v=None):
        return True

    def gap_pair(self, h):
        self.calls.append(("pair", h))

    def gap_passkey(self, h, action, pk):
        self.calls.append(("passkey", h, action, pk))

    def gap_disconnect(self, h):
        self.calls.append(("disconnect", h))
        return True

    def ev(self, event, *data):
        return self.handler(event, data)


class _Store:
    def __init__(self):
        self.d = {}

    def get_secret(self, t, i, k):
        if k is None or bytes(k) == ZERO7:
            return None
        return self.d.get((t, bytes(k)))

    def set_secret(self, t, k, v):
        if v is None:
            return self.d.pop((t, bytes(k)), None) is not None
        self.d[(t, bytes(k))] = bytes(v)
        return True

    def find(self, t, a):
        return None

    def pairing_done(self, t, a, ok, bonded=1):
        return "stored" if ok and bonded else None

    def bonds(self):
        return []


def _make():
    ble = _BLE()
    events = []
    sm = M.SecurityManager(ble, store=_Store(), timer=None, clock=lambda: 1000,
                           callback=lambda e, c, v: events.append((e, c, v)))
    return sm, ble, events


def _blob(ks=16):
    b = bytearray(88)
    b[1:7] = KEY[1:]
    b[10] = ks
    for i in range(16):
        b[24 + i] = i + 1
    b[40] = 1
    b[80] = 2
    return bytes(b)


def test_malformed_connect_tuples_are_not_stored():
    # A CONNECT whose handle is not an int, whose address type is neither public nor random, or
    # whose address is not 6 bytes is no connection: it must not become a Link.
    sm, ble, events = _make()
    for data in ((None, 0, memoryview(PEER)), ("x", 0, memoryview(PEER)), (0, 4, memoryview(PEER)),
                 (0, 0, memoryview(PEER[:2])), (0, 0, 6), (0, None, memoryview(PEER)), (0, 0, None)):
        for event in (C.IRQ_CENTRAL_CONNECT, C.IRQ_PERIPHERAL_CONNECT):
            ble.handler(event, data)
    assert sm.connections() == [], sm.connections()


def test_pairing_after_a_malformed_connect_lands_on_the_real_link():
    # A bogus Link with the peer's key would capture the real link's pairing (first match wins).
    sm, ble, events = _make()
    ble.ev(C.IRQ_CENTRAL_CONNECT, None, 0, memoryview(PEER))
    ble.ev(C.IRQ_CENTRAL_CONNECT, 0, 0, memoryview(PEER))
    ble.ev(C.IRQ_GET_SECRET, 1, 0, memoryview(ZERO7))
    ble.ev(C.IRQ_GET_SECRET, 2, 0, memoryview(KEY))
    ble.ev(C.IRQ_SET_SECRET, 1, memoryview(KEY), memoryview(_blob()))
    ble.ev(C.IRQ_SET_SECRET, 2, memoryview(KEY), memoryview(_blob()))
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 1, 0, 1, 16)
    res = [v for e, c, v in events if e == C.AUTH_CMPL_EVT]
    assert len(res) == 1 and res[0].conn == 0 and res[0].success, res
    assert not res[0].reencrypt  # a pairing, not a re-encryption


def test_malformed_encryption_update_does_not_open_a_protected_read():
    # An ENCRYPTION_UPDATE whose key size is not an int must be ignored: stored in the Link it made
    # every later check raise, and the READ_REQUEST answer fell back to 0 (read allowed).
    sm, ble, events = _make()
    sm.protect(20, level=2)
    ble.ev(C.IRQ_CENTRAL_CONNECT, 0, 0, memoryview(PEER))
    assert ble.ev(C.IRQ_GATTS_READ_REQUEST, 0, 20) == C.ATT_INSUFFICIENT_AUTHENTICATION
    for data in ((0, 1, 0, 1, None), (0, 1, 1, 1, "16"), (0, 1, 0, 1, memoryview(b"\x10"))):
        ble.handler(C.IRQ_ENCRYPTION_UPDATE, data)
        assert ble.ev(C.IRQ_GATTS_READ_REQUEST, 0, 20) != 0, data
        assert "conn 0" in repr(sm.state(0))
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 1, 0, 0, 16)  # a real update still counts
    assert sm.state(0).enc and ble.ev(C.IRQ_GATTS_READ_REQUEST, 0, 20) == 0


def test_read_request_fails_closed_when_the_check_raises():
    # If deciding a read fails inside the manager, the read is refused (0x0E Unlikely Error),
    # never allowed by default.
    sm, ble, events = _make()
    sm.protect(20, level=2)
    ble.ev(C.IRQ_CENTRAL_CONNECT, 0, 0, memoryview(PEER))

    def broken(conn, attr_handle, write=False):
        raise RuntimeError("injected")

    sm.check = broken
    assert ble.ev(C.IRQ_GATTS_READ_REQUEST, 0, 20) == 0x0E
    assert sm.connections()  # the handler is still installed and the link still known
