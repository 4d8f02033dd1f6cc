# Runs on MicroPython too (make test-mp).
# SecurityManager logic driven by hand-written IRQ sequences (the ones the firmware reference
# documents), against a tiny fake BLE object and a dict store. Runs under pytest (CPython) and
# under tools/checks/mptest.py (MicroPython): plain asserts only. The same flows on simulated boards
# with a real SMP underneath are in host_tests/manager/.
import time

import micropython

if not hasattr(time, "ticks_add"):  # CPython without a blesim World
    time.ticks_add = lambda a, b: a + b
    time.ticks_diff = lambda a, b: a - b
    time.ticks_ms = lambda: 0

from blesmp import const as C
from blesmp import link as L
from blesmp import manager as M
from blesmp.agents import CallbackAgent, ConsoleAgent

_CLOCK = [1000]

PEER = b"\x11\x22\x33\x44\x55\x66"
ZERO7 = bytes(7)


def _key(t, a):
    return bytes([t]) + bytes(a[5 - i] for i in range(6))


KEY = _key(0, PEER)


def blob(ks=16, auth=0, sc=1, t=0, a=PEER):
    b = bytearray(88)
    b[0] = t
    b[1:7] = _key(t, a)[1:]
    b[10] = ks
    for i in range(16):
        b[24 + i] = i + 1
    b[40] = 1
    b[80] = (auth & 1) | ((sc & 1) << 1)
    return bytes(b)


class FakeBLE:
    def __init__(self):
        self.calls = []
        self.handler = None
        self.cfg = {}
        self.active_when_irq = None
        self.act = False

    def config(self, **kw):
        self.cfg.update(kw)

    def irq(self, h):
        self.handler = h
        if self.active_when_irq is None:
            self.active_when_irq = self.act

    def active(self, v=None):
        if v is not None:
            self.act = bool(v)
        return self.act

    def gap_pair(self, h):
        self.calls.append(("pair", h))

    def gap_passkey(self, h, action, pk):
        self.calls.append(("passkey", h, action, pk))

    def gap_disconnect(self, h):
        self.calls.append(("disconnect", h))
        return True

    def ev(self, event, *data):
        return self.handler(event, data)


class _Bond:
    def __init__(self, v):
        self.key_size, self.authenticated, self.sc = v[10], v[80] & 1, (v[80] >> 1) & 1


class DictStore:
    def __init__(self):
        self.d = {}
        self.done = []

    def get_secret(self, t, i, k):
        if k is None:
            items = [v for (tt, kk), v in sorted(self.d.items()) if tt == t]
            return items[i] if i < len(items) else None
        k = bytes(k)
        if k == ZERO7:
            return None
        return self.d.get((t, k))

    def set_secret(self, t, k, v):
        k = bytes(k)
        if v is None:
            return self.d.pop((t, k), None) is not None
        self.d[(t, k)] = bytes(v)
        return True

    def find(self, t, a):
        v = self.d.get((2, _key(t, a))) or self.d.get((1, _key(t, a)))
        if v is None:
            return None
        return _Bond(v)

    def pairing_done(self, t, a, ok, bonded=1):
        self.done.append(ok)
        return "stored" if ok and bonded else None

    def bonds(self):
        return []


def make(ble_cls=None, **kw):
    _CLOCK[0] = 1000
    ble = (ble_cls or FakeBLE)()
    store = DictStore()
    events = []
    kw.setdefault("timer", None)
    sm = M.SecurityManager(ble, store=store, callback=lambda e, c, v: events.append((e, c, v)),
                           clock=lambda: _CLOCK[0], **kw)
    return sm, ble, store, events


def names(events):
    return [C.event_name(e[0]) for e in events]


def auth(events):
    r = [e[2] for e in events if e[0] == C.AUTH_CMPL_EVT]
    assert len(r) == 1, names(events)
    return r[0]


def advance(sm, ms):
    _CLOCK[0] += ms
    sm.poll()
    run = getattr(micropython, "run_scheduled", None)
    if run is not None:
        run()


def incoming(ble, h=0, key=KEY, repeat=False):
    # NimBLE's look-ups at the start of a pairing the central started (ESP32 peripheral).
    ble.ev(C.IRQ_GET_SECRET, 2, 0, None)
    ble.ev(C.IRQ_GET_SECRET, 1, 0, ZERO7)
    return ble.ev(C.IRQ_GET_SECRET, 2, 0, memoryview(key))


def connect(ble, h=0, central=True):
    ev = C.IRQ_CENTRAL_CONNECT if central else C.IRQ_PERIPHERAL_CONNECT
    ble.ev(ev, h, 0, memoryview(PEER))


def test_construction_applies_params_before_active():
    sm, ble, store, ev = make(io=C.IO_DISPLAY_YESNO, mitm=True, bond=True)
    assert ble.cfg == {"io": 1, "bond": True, "mitm": True, "le_secure": True}
    assert ble.active_when_irq is False and ble.act is True
    try:
        make(io=C.IO_NO_INPUT_OUTPUT, mitm=True)
        raise AssertionError("mitm without IO accepted")
    except ValueError:
        pass
    sm, ble, store, ev = make(sc_only=True, io=C.IO_DISPLAY_YESNO)
    assert sm.level == 4 and sm.min_key_size == 16 and ble.cfg["mitm"] and ble.cfg["le_secure"]


def test_just_works_bonded_new_order():
    sm, ble, store, ev = make()
    connect(ble)
    incoming(ble)
    assert names(ev) == ["SEC_REQ"]
    assert ble.ev(C.IRQ_SET_SECRET, 1, memoryview(KEY), memoryview(blob()))
    assert ble.ev(C.IRQ_SET_SECRET, 2, memoryview(KEY), memoryview(blob()))
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 1, 0, 1, 16)
    r = auth(ev)
    assert r.success and r.level == 2 and r.sc == 1 and r.bonded == 1 and r.key_size == 16
    assert sm.state(0).level == 2 and store.done == [True]
    assert ("disconnect", 0) not in ble.calls


def _link_loaded():
    import sys

    import blesmp

    return "blesmp.link" in sys.modules or "link" in blesmp.__dict__


def test_link_code_loaded_only_while_links_exist_on_micropython():
    import sys

    import blesmp

    mp = sys.implementation.name == "micropython"
    if mp:  # this file imported it (random_passkey): set it aside to see what the manager keeps
        sys.modules.pop("blesmp.link", None)
        blesmp.__dict__.pop("link", None)
    sm, ble, store, ev = make(insecure_static_passkey=123456)  # (set-up checks it with link)
    assert not (mp and _link_loaded())  # at rest: set-up did not leave it behind
    ble.ev(C.IRQ_GET_SECRET, 10, 0, b"irk")  # NimBLE's start-up look-up: answered without it
    assert not (mp and _link_loaded())
    for rnd in (1, 2):  # pair, disconnect; then again: the module comes back and works
        store.d.clear()  # (a second pairing of a bonded peer would be a repeat pairing: refused)
        connect(ble)
        assert _link_loaded() and sm.state(0) is not None
        incoming(ble)
        assert ble.ev(C.IRQ_SET_SECRET, 1, memoryview(KEY), memoryview(blob()))
        assert ble.ev(C.IRQ_SET_SECRET, 2, memoryview(KEY), memoryview(blob()))
        ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 1, 0, 1, 16)
        assert names(ev).count("AUTH_CMPL") == rnd and auth_last(ev).success
        connect(ble, h=1, central=False)  # a second link keeps it while the first goes
        ble.ev(C.IRQ_CENTRAL_DISCONNECT, 0, 0, memoryview(PEER))
        assert _link_loaded() and sm.state(0) is None and sm.state(1) is not None
        ble.ev(C.IRQ_PERIPHERAL_DISCONNECT, 1, 0, memoryview(PEER))
        assert sm.connections() == [] and not (mp and _link_loaded())
    assert store.done == [True, True]


def test_link_code_that_cannot_load_drops_the_link():
    # A CONNECT whose link-time code cannot be loaded (no heap, no file) must not leave an
    # untracked link that could pair past the policy: the manager disconnects it.
    import sys

    import blesmp

    sm, ble, store, ev = make(allow=[(0, b"\x01\x02\x03\x04\x05\x06")])
    saved = sys.modules.pop("blesmp.link", None)
    had = blesmp.__dict__.pop("link", None)
    sys.modules["blesmp.link"] = None  # any import of it fails
    try:
        connect(ble)
        assert sm.state(0) is None and ("disconnect", 0) in ble.calls
    finally:
        del sys.modules["blesmp.link"]
        if saved is not None:
            sys.modules["blesmp.link"] = saved
        if had is not None:
            blesmp.link = had
    connect(ble, h=1)  # loadable again: tracked, and the allow-list refuses this peer
    assert sm.state(1) is not None
    incoming(ble, h=1)
    advance(sm, 0)  # (the refusal's disconnect waits until outside the store callback)
    assert auth(ev).reason == C.NOT_ALLOWED and ("disconnect", 1) in ble.calls


def auth_last(events):
    return [e[2] for e in events if e[0] == C.AUTH_CMPL_EVT][-1]


def test_old_order_waits_for_keys():
    sm, ble, store, ev = make()
    connect(ble)
    incoming(ble)
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 1, 0, 1, 16)
    assert "AUTH_CMPL" not in names(ev)
    ble.ev(C.IRQ_SET_SECRET, 1, memoryview(KEY), memoryview(blob(sc=0)))
    ble.ev(C.IRQ_SET_SECRET, 2, memoryview(KEY), memoryview(blob(sc=0)))
    r = auth(ev)
    assert r.success and r.sc == 0


def test_display_passkey_fresh_and_in_range():
    seen = []
    for _ in range(3):
        sm, ble, store, ev = make(io=C.IO_DISPLAY_ONLY, mitm=True)
        connect(ble)
        incoming(ble)
        ble.ev(C.IRQ_PASSKEY_ACTION, 0, C.PASSKEY_ACTION_DISPLAY, 0)
        inj = [c for c in ble.calls if c[0] == "passkey"]
        notif = [e[2] for e in ev if e[0] == C.PASSKEY_NOTIF_EVT]
        assert len(inj) == 1 and inj[0][2] == 3 and 0 <= inj[0][3] <= 999999
        assert notif == [inj[0][3]]
        seen.append(notif[0])
    assert len(set(seen)) == 3  # fresh per pairing (a clash has probability ~3e-6)


def test_static_passkey_only_when_named_insecure():
    sm, ble, store, ev = make(io=C.IO_DISPLAY_ONLY, mitm=True, insecure_static_passkey=123456)
    connect(ble)
    incoming(ble)
    ble.ev(C.IRQ_PASSKEY_ACTION, 0, C.PASSKEY_ACTION_DISPLAY, 0)
    assert ("passkey", 0, 3, 123456) in ble.calls
    try:
        make(insecure_static_passkey=1000000)
        raise AssertionError("7-digit passkey accepted")
    except ValueError:
        pass


def test_random_passkey_rejection_sampling():
    feed = [b"\xff\xff\xff", b"\xf4\x24\x00", b"\xf4\x23\xff"]  # 2**24-1 and 16e6 rejected
    assert L.random_passkey(lambda n: feed.pop(0)) == 999999 and not feed
    vals = [L.random_passkey() for _ in range(200)]
    assert all(0 <= v <= 999999 for v in vals)
    assert len(set(vals)) > 190


def test_nc_accept_and_reject():
    sm, ble, store, ev = make(io=C.IO_DISPLAY_YESNO, mitm=True)
    connect(ble)
    incoming(ble)
    ble.ev(C.IRQ_PASSKEY_ACTION, 0, C.PASSKEY_ACTION_NUMERIC_COMPARISON, 123456)
    assert (C.NC_REQ_EVT, 0, 123456) in ev
    assert sm.confirm_reply(0, False)
    assert ("passkey", 0, 4, 0) in ble.calls
    r = auth(ev)
    assert not r.success and r.reason == C.REJECTED
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 0, 0, 0, 0)  # the firmware's late update (30 s later)
    advance(sm, 1000)
    assert len([e for e in ev if e[0] == C.AUTH_CMPL_EVT]) == 1

    sm, ble, store, ev = make(io=C.IO_DISPLAY_YESNO, mitm=True)
    connect(ble)
    incoming(ble)
    ble.ev(C.IRQ_PASSKEY_ACTION, 0, C.PASSKEY_ACTION_NUMERIC_COMPARISON, 654321)
    sm.confirm_reply(0, True)
    assert ("passkey", 0, 4, 1) in ble.calls
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 1, 1, 0, 16)
    r = auth(ev)
    assert r.success and r.authenticated and r.sc == 1 and r.level == 4


def test_prompt_timeout_fails_before_smp_timeout():
    sm, ble, store, ev = make(io=C.IO_KEYBOARD_ONLY, mitm=True, prompt_timeout_ms=20000)
    connect(ble)
    incoming(ble)
    ble.ev(C.IRQ_PASSKEY_ACTION, 0, C.PASSKEY_ACTION_INPUT, 0)
    assert names(ev)[-1] == "PASSKEY_REQ"
    advance(sm, 19000)
    assert "AUTH_CMPL" not in names(ev)
    advance(sm, 1500)
    r = auth(ev)
    assert r.reason == C.PROMPT_TIMEOUT and ("disconnect", 0) in ble.calls
    assert "PROMPT_CANCEL" in names(ev)
    assert not sm.passkey_reply(0, True, 1)  # too late


def test_link_lost_peer_failed_smp_timeout():
    sm, ble, store, ev = make()
    connect(ble)
    incoming(ble)
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 0, 0, 0, 0)
    ble.ev(C.IRQ_CENTRAL_DISCONNECT, 0, 0, memoryview(PEER))
    assert auth(ev).reason == C.LINK_LOST
    assert store.done == [False]

    sm, ble, store, ev = make()
    connect(ble)
    incoming(ble)
    advance(sm, 100)
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 0, 0, 0, 0)
    advance(sm, 300)
    assert auth(ev).reason == C.PEER_FAILED

    sm, ble, store, ev = make()
    connect(ble)
    incoming(ble)
    _CLOCK[0] += 30000
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 0, 0, 0, 0)
    advance(sm, 300)
    assert auth(ev).reason == C.SMP_TIMEOUT


def test_wrong_passkey_is_auth_failed():
    sm, ble, store, ev = make(io=C.IO_KEYBOARD_ONLY, mitm=True)
    connect(ble)
    incoming(ble)
    ble.ev(C.IRQ_PASSKEY_ACTION, 0, C.PASSKEY_ACTION_INPUT, 0)
    assert sm.passkey_reply(0, True, 111111)
    assert ("passkey", 0, 2, 111111) in ble.calls
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 0, 0, 0, 0)
    advance(sm, 300)
    assert auth(ev).reason == C.AUTH_FAILED
    try:
        sm.passkey_reply(0, True, 1000000)
    except ValueError:
        pass


def _typed_wrong(handler=None):
    # Passkey Entry on the lock's keyboard; NimBLE's confirm check fails: its failed update
    sm, ble, store, ev = make(io=C.IO_KEYBOARD_ONLY, mitm=True, handler=handler)
    connect(ble)
    incoming(ble)
    ble.ev(C.IRQ_PASSKEY_ACTION, 0, C.PASSKEY_ACTION_INPUT, 0)
    assert sm.passkey_reply(0, True, 111111)
    _CLOCK[0] += 2000
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 0, 0, 0, 0)
    return sm, ble, store, ev


def test_wrong_passkey_then_the_peer_leaves_is_auth_failed():
    # A phone whose user typed a wrong passkey gets Pairing Failed and disconnects at once: its
    # DISCONNECT is a later HCI event (a connection interval or more), within the 250 ms grace.
    for later in (50, 4):
        sm, ble, store, ev = _typed_wrong()
        _CLOCK[0] += later
        ble.ev(C.IRQ_CENTRAL_DISCONNECT, 0, 0, memoryview(PEER))
        assert [C.reason_name(r) for r in _reasons(ev)] == ["AUTH_FAILED"], later
        assert store.done == [False] and not sm.connections()
    # the same without a prompt: the peer gave up (PEER_FAILED), it did not vanish
    sm, ble, store, ev = make()
    connect(ble)
    incoming(ble)
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 0, 0, 0, 0)
    _CLOCK[0] += 30
    ble.ev(C.IRQ_CENTRAL_DISCONNECT, 0, 0, memoryview(PEER))
    assert _reasons(ev) == [C.PEER_FAILED]


def test_link_lost_mid_pairing_is_link_lost_after_a_prompt_too():
    # A link loss: NimBLE's ble_gap_conn_broken raises the failed update and the DISCONNECT in
    # one host call, back to back (with a GATT client's aborted procedure between them, maybe).
    sm, ble, store, ev = _typed_wrong()
    ble.ev(C.IRQ_CENTRAL_DISCONNECT, 0, 0, memoryview(PEER))
    assert _reasons(ev) == [C.LINK_LOST]
    sm, ble, store, ev = _typed_wrong()
    _CLOCK[0] += 2
    ble.ev(17, 0, 0, 3, 0x0E)  # _IRQ_GATTC_WRITE_DONE (failed): same delivery
    _CLOCK[0] += 2
    ble.ev(C.IRQ_CENTRAL_DISCONNECT, 0, 0, memoryview(PEER))
    assert _reasons(ev) == [C.LINK_LOST]


def test_same_delivery_is_measured_from_the_end_of_the_previous_handler():
    # On a board a handler takes time (here the application's own, 40 ms for the failed update):
    # the DISCONNECT right after it returns is still the same delivery.
    def slow(event, data):
        if event == C.IRQ_ENCRYPTION_UPDATE:
            _CLOCK[0] += 40

    sm, ble, store, ev = _typed_wrong(handler=slow)
    ble.ev(C.IRQ_CENTRAL_DISCONNECT, 0, 0, memoryview(PEER))
    assert _reasons(ev) == [C.LINK_LOST]
    sm, ble, store, ev = _typed_wrong(handler=slow)
    _CLOCK[0] += 20
    ble.ev(C.IRQ_CENTRAL_DISCONNECT, 0, 0, memoryview(PEER))
    assert _reasons(ev) == [C.AUTH_FAILED]


def test_key_too_short_refused_and_dropped():
    sm, ble, store, ev = make(min_key_size=16)
    connect(ble)
    incoming(ble)
    assert not ble.ev(C.IRQ_SET_SECRET, 1, memoryview(KEY), memoryview(blob(ks=7)))
    assert not ble.ev(C.IRQ_SET_SECRET, 2, memoryview(KEY), memoryview(blob(ks=7)))
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 1, 0, 1, 7)
    advance(sm, 10)
    r = auth(ev)
    assert r.reason == C.KEY_TOO_SHORT and ("disconnect", 0) in ble.calls and store.d == {}


def test_sc_only_refuses_legacy_keys():
    sm, ble, store, ev = make(sc_only=True, io=C.IO_DISPLAY_ONLY)
    connect(ble)
    incoming(ble)
    ble.ev(C.IRQ_PASSKEY_ACTION, 0, C.PASSKEY_ACTION_DISPLAY, 0)
    assert not ble.ev(C.IRQ_SET_SECRET, 2, memoryview(KEY), memoryview(blob(auth=1, sc=0)))
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 1, 1, 1, 16)
    assert auth(ev).reason == C.LEGACY_UNDER_SC_ONLY and store.d == {}


def _fail_once(ble, h, peer=PEER, t=0):
    ble.ev(C.IRQ_CENTRAL_CONNECT, h, t, memoryview(peer))
    r = incoming(ble, h=h, key=_key(t, peer))
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, h, 0, 0, 0, 0)
    ble.ev(C.IRQ_CENTRAL_DISCONNECT, h, t, memoryview(peer))
    return r


def _reasons(ev):
    return [e[2].reason for e in ev if e[0] == C.AUTH_CMPL_EVT]


def test_backoff_after_every_failure_doubling():
    # Vol 3 Part H 2.3.6: a waiting interval after every failed pairing (F7), growing.
    sm, ble, store, ev = make(backoff_ms=2000)
    _fail_once(ble, 0)
    assert _reasons(ev) == [C.LINK_LOST]
    # at once after the first failure: refused, link dropped, no prompt
    connect(ble, h=1)
    assert incoming(ble, h=1) is None
    assert _reasons(ev) == [C.LINK_LOST, C.REPEATED_ATTEMPTS]
    advance(sm, 10)
    assert ("disconnect", 1) in ble.calls
    ble.ev(C.IRQ_CENTRAL_DISCONNECT, 1, 0, memoryview(PEER))
    _CLOCK[0] += 2000  # the first interval (2 s) is over: the peer may try again, and fails again
    _fail_once(ble, 2)
    assert _reasons(ev) == [C.LINK_LOST, C.REPEATED_ATTEMPTS, C.LINK_LOST]
    _CLOCK[0] += 3000  # the second interval is 4 s: still refused after 3 s
    connect(ble, h=3)
    assert incoming(ble, h=3) is None
    assert _reasons(ev)[-1] == C.REPEATED_ATTEMPTS
    ble.ev(C.IRQ_CENTRAL_DISCONNECT, 3, 0, memoryview(PEER))
    _CLOCK[0] += 1000  # 4 s after the second failure (a refusal does not extend the interval)
    connect(ble, h=4)
    incoming(ble, h=4)
    assert _reasons(ev) == [C.LINK_LOST, C.REPEATED_ATTEMPTS, C.LINK_LOST, C.REPEATED_ATTEMPTS]
    # another peer is not affected
    other = b"\x11\x22\x33\x44\x55\x77"
    ble.ev(C.IRQ_CENTRAL_CONNECT, 7, 0, memoryview(other))
    incoming(ble, h=7, key=_key(0, other))
    assert len(_reasons(ev)) == 4


def test_backoff_intervals_grow_to_64x():
    sm, ble, store, ev = make(backoff_ms=1000)
    waits = []
    for i in range(9):
        _fail_once(ble, i)
        waits.append(time.ticks_diff(sm._backoff[_key(0, PEER)][1], _CLOCK[0]))
        _CLOCK[0] += 200000
    assert waits == [1000, 2000, 4000, 8000, 16000, 32000, 64000, 64000, 64000], waits


def test_backoff_not_counted_for_failed_reencryption():
    # a peer we lost the bond of re-encrypts (KEY_MISSING), then its NimBLE pairs afresh at once
    sm, ble, store, ev = make(backoff_ms=2000)
    connect(ble)
    assert ble.ev(C.IRQ_GET_SECRET, 1, 0, memoryview(KEY)) is None
    assert _reasons(ev) == [C.KEY_MISSING]
    incoming(ble)
    assert _reasons(ev) == [C.KEY_MISSING]  # not refused: no REPEATED_ATTEMPTS


class _FakeResolver:
    def __init__(self, rpas, ident):
        self.rpas = rpas
        self.ident = ident

    def resolve(self, t, a):
        if t == 1 and bytes(a) in self.rpas:
            return self.ident
        return None


class _Ident:
    addr_type = 0
    addr = PEER


def test_backoff_keyed_by_identity_with_a_resolver():
    # a bonded peer's RPA changes between attempts: the resolver names the same identity
    rpa1 = b"\x41\x00\x00\x00\x00\x01"
    rpa2 = b"\x52\x00\x00\x00\x00\x02"
    for resolver, slot in ((None, _key(1, rpa1)), (_FakeResolver([rpa1, rpa2], _Ident()), KEY)):
        sm, ble, store, ev = make(backoff_ms=2000, resolver=resolver)
        _fail_once(ble, 0, peer=rpa1, t=1)
        assert slot in sm._backoff
        ble.ev(C.IRQ_CENTRAL_CONNECT, 1, 1, memoryview(rpa2))
        incoming(ble, h=1, key=_key(1, rpa2))
        # refused either way: by the identity's slot, or by the slot peers without a bond share
        assert _reasons(ev)[-1] == C.REPEATED_ATTEMPTS, _reasons(ev)


def test_backoff_shared_by_peers_without_a_bond():
    # An attacker changing its random address for every guess gets no fresh slot: peers without
    # a bond share one (issue 17's rotating-address limit); bonded peers keep their own.
    sm, ble, store, ev = make(backoff_ms=2000)
    a = b"\x41\x00\x00\x00\x00\x01"
    b = b"\x52\x00\x00\x00\x00\x02"
    _fail_once(ble, 0, peer=a, t=1)
    ble.ev(C.IRQ_CENTRAL_CONNECT, 1, 1, memoryview(b))
    assert incoming(ble, h=1, key=_key(1, b)) is None
    assert _reasons(ev) == [C.LINK_LOST, C.REPEATED_ATTEMPTS]
    ble.ev(C.IRQ_CENTRAL_DISCONNECT, 1, 1, memoryview(b))
    store.d[(2, KEY)] = blob(auth=1)  # a bonded peer pairs again: not held up by strangers
    store.d[(1, KEY)] = blob(auth=1)
    connect(ble, h=2)
    assert incoming(ble, h=2) is not None and sm.state(2).busy and len(_reasons(ev)) == 2
    ble.ev(C.IRQ_CENTRAL_DISCONNECT, 2, 0, memoryview(PEER))
    _CLOCK[0] += 2000  # the interval is over: a new peer may pair
    ble.ev(C.IRQ_CENTRAL_CONNECT, 3, 1, memoryview(b))
    incoming(ble, h=3, key=_key(1, b))
    assert len(_reasons(ev)) == 3 and sm.state(3).busy


def test_pairing_window():
    sm, ble, store, ev = make(window=True)
    connect(ble)
    incoming(ble)
    assert auth(ev).reason == C.NOT_IN_WINDOW
    assert not ble.ev(C.IRQ_SET_SECRET, 2, memoryview(KEY), memoryview(blob()))
    sm, ble, store, ev = make(window=True)
    sm.open_window(30)
    connect(ble)
    incoming(ble)
    ble.ev(C.IRQ_SET_SECRET, 2, memoryview(KEY), memoryview(blob()))
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 1, 0, 1, 16)
    assert auth(ev).success
    _CLOCK[0] += 31000
    assert not sm.window_open()


def test_security_rsp_from_callback_rejects():
    sm, ble, store, ev = make()

    def cb(e, c, v):
        if e == C.SEC_REQ_EVT:
            sm.security_rsp(c, False)

    sm.register_callback(cb)
    connect(ble)
    assert incoming(ble) is None
    advance(sm, 10)
    assert ("disconnect", 0) in ble.calls
    assert sm.state(0).result.reason == C.REJECTED


def test_repeat_pairing_unauthenticated_outside_window_keeps_bond():
    sm, ble, store, ev = make()
    store.d[(1, KEY)] = blob(auth=1)
    store.d[(2, KEY)] = blob(auth=1)
    connect(ble)
    assert incoming(ble) is not None  # accepted for now: NimBLE deletes (the store hides)
    assert not ble.ev(C.IRQ_SET_SECRET, 2, memoryview(KEY), memoryview(blob(auth=0)))
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 1, 0, 1, 16)
    r = auth(ev)
    assert r.reason == C.WEAKER_THAN_BOND and store.done == [False]
    assert store.d[(2, KEY)] == blob(auth=1)


def test_central_role_limitation():
    sm, ble, store, ev = make(io=C.IO_DISPLAY_YESNO, mitm=True)
    connect(ble, central=False)
    assert sm.pair(0, level=3) is False
    assert auth(ev).reason == C.CENTRAL_NO_PROMPTS and ("pair", 0) not in ble.calls
    sm, ble, store, ev = make(io=C.IO_DISPLAY_YESNO, mitm=True)
    connect(ble, central=False)
    assert sm.pair(0)
    ble.ev(C.IRQ_GET_SECRET, 2, 0, memoryview(KEY))
    ble.ev(C.IRQ_GET_SECRET, 2, 0, None)
    ble.ev(C.IRQ_GET_SECRET, 1, 0, ZERO7)
    advance(sm, 4000)
    assert "AUTH_CMPL" not in names(ev)
    advance(sm, 1500)
    assert auth(ev).reason == C.CENTRAL_NO_PROMPTS and ("disconnect", 0) in ble.calls


def test_reencrypt_with_stored_bond_and_key_missing():
    sm, ble, store, ev = make()
    store.d[(1, KEY)] = blob(auth=0, sc=1)
    connect(ble)
    ble.ev(C.IRQ_GET_SECRET, 1, 0, memoryview(KEY))
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 1, 0, 1, 16)
    r = auth(ev)
    assert r.success and r.reencrypt and r.sc == 1
    sm, ble, store, ev = make()
    connect(ble)
    ble.ev(C.IRQ_GET_SECRET, 1, 0, memoryview(KEY))
    assert auth(ev).reason == C.KEY_MISSING


def test_require_disconnects_low_level_reencryption():
    sm, ble, store, ev = make(io=C.IO_DISPLAY_YESNO, mitm=True)
    store.d[(1, KEY)] = blob(auth=0)
    connect(ble)
    sm.require(0, 3, start=False)
    ble.ev(C.IRQ_GET_SECRET, 1, 0, memoryview(KEY))
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 1, 0, 1, 16)
    assert auth(ev).reason == C.LEVEL_TOO_LOW and ("disconnect", 0) in ble.calls


def test_gatt_authorization():
    sm, ble, store, ev = make()
    calls = []

    def authorize(conn, h, write):
        calls.append((conn, h, write))
        return h != 30

    sm.protect(20, level=2)
    sm.protect(30, level=2, authorize=authorize)
    connect(ble)
    assert ble.ev(C.IRQ_GATTS_READ_REQUEST, 0, 20) == C.ATT_INSUFFICIENT_AUTHENTICATION
    assert ble.ev(C.IRQ_GATTS_READ_REQUEST, 0, 21) == 0
    # notify without data / gatts_write(send_update=True): the firmware reads with conn 65535,
    # and a link below the level is connected: refused (issue 17 item 5)
    assert ble.ev(C.IRQ_GATTS_READ_REQUEST, 65535, 20) == C.ATT_INSUFFICIENT_AUTHENTICATION
    assert ble.ev(C.IRQ_GATTS_READ_REQUEST, 65535, 21) == 0  # not protected
    incoming(ble)
    ble.ev(C.IRQ_SET_SECRET, 2, memoryview(KEY), memoryview(blob()))
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 1, 0, 1, 16)
    assert ble.ev(C.IRQ_GATTS_READ_REQUEST, 0, 20) == 0
    assert ble.ev(C.IRQ_GATTS_READ_REQUEST, 0, 30) == C.ATT_INSUFFICIENT_AUTHORIZATION
    assert calls == [(0, 30, False)]


def test_app_handler_chained_and_raising_callbacks_contained():
    seen = []

    def app(event, data):
        seen.append(event)
        if event == C.IRQ_GATTS_READ_REQUEST:
            return 7
        raise RuntimeError("application bug")

    def bad_cb(e, c, v):
        raise ValueError("callback bug")

    agent = CallbackAgent(display=lambda c, p: 1 / 0, done=lambda r: [][1])
    sm, ble, store, ev = make(io=C.IO_DISPLAY_ONLY, mitm=True, handler=app, agent=agent)
    sm.register_callback(bad_cb)
    connect(ble)
    incoming(ble)
    ble.ev(C.IRQ_PASSKEY_ACTION, 0, C.PASSKEY_ACTION_DISPLAY, 0)
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 1, 1, 0, 16)
    assert ble.ev(C.IRQ_GATTS_READ_REQUEST, 0, 5) == 7
    assert C.IRQ_CENTRAL_CONNECT in seen and C.IRQ_ENCRYPTION_UPDATE in seen
    assert C.IRQ_GET_SECRET not in seen and C.IRQ_PASSKEY_ACTION not in seen
    assert sm.state(0).level == 3


def test_console_agent_answers_later():
    out = []
    agent = ConsoleAgent(out=out.append)
    sm, ble, store, ev = make(io=C.IO_DISPLAY_YESNO, mitm=True, agent=agent)
    connect(ble)
    incoming(ble)
    ble.ev(C.IRQ_PASSKEY_ACTION, 0, C.PASSKEY_ACTION_NUMERIC_COMPARISON, 42)
    assert "000042" in out[-1]
    assert agent.yes()
    assert ("passkey", 0, 4, 1) in ble.calls
    assert not agent.yes()


def test_garbage_events_never_escape():
    sm, ble, store, ev = make(io=C.IO_DISPLAY_YESNO, mitm=True)
    junk = [(), (1,), (None, None, None), ("x", 1, 2, 3, 4), (0, 0, b"\x00" * 6), (-1, 999, 3),
            (0, 4, 123), (65535, 0, 0, 0, 0)]
    for event in (1, 2, 3, 4, 7, 8, 27, 28, 29, 30, 31, 99, -5, None, "x"):
        for data in junk:
            ble.handler(event, data)
    for data in ((2, 0, b"\x00"), (1, 0, None), (2, 5, None)):
        r = ble.handler(C.IRQ_GET_SECRET, data)
        assert r is None or isinstance(r, (bytes, bytearray, memoryview))


def test_reason_and_event_names_match_constants():
    n = 0
    for name in dir(C):
        v = getattr(C, name)
        if not isinstance(v, int) or name.startswith("_"):
            continue
        if name in ("OK", "PASSKEY_ENTRY_FAILED", "AUTH_REQUIREMENTS", "CONFIRM_VALUE_FAILED",
                    "PAIRING_NOT_SUPPORTED", "ENCRYPTION_KEY_SIZE", "UNSPECIFIED", "REPEATED_ATTEMPTS",
                    "NUMERIC_COMPARISON_FAILED") or 0x20 <= v <= 0x30 and not name.startswith(("IRQ", "ATT")):
            assert C.reason_name(v) == name, (name, C.reason_name(v))
            n += 1
        if name.endswith("_EVT"):
            assert C.event_name(v) == name[:-4]
            n += 1
    assert n > 30
    assert C.reason_name(0x7F) == "0x7f" and C.event_name(99) == "99"


def test_allow_list():
    other = b"\x99\x88\x77\x66\x55\x44"
    sm, ble, store, ev = make(allow=[(0, other)])
    connect(ble)
    assert incoming(ble) is None
    assert auth(ev).reason == C.NOT_ALLOWED
    sm, ble, store, ev = make()
    sm.allow(0, PEER)
    connect(ble)
    incoming(ble)
    ble.ev(C.IRQ_SET_SECRET, 2, memoryview(KEY), memoryview(blob()))
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 1, 0, 1, 16)
    assert auth(ev).success


def test_protected_write_not_forwarded_below_level():
    seen = []
    sm, ble, store, ev = make(handler=lambda e, d: seen.append((e, d[1])))
    sm.protect(20, level=2)
    connect(ble)
    ble.ev(C.IRQ_GATTS_WRITE, 0, 20)
    ble.ev(C.IRQ_GATTS_WRITE, 0, 21)
    assert (C.IRQ_GATTS_WRITE, 20) not in seen and (C.IRQ_GATTS_WRITE, 21) in seen
    incoming(ble)
    ble.ev(C.IRQ_SET_SECRET, 2, memoryview(KEY), memoryview(blob()))
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 1, 0, 1, 16)
    ble.ev(C.IRQ_GATTS_WRITE, 0, 20)
    assert (C.IRQ_GATTS_WRITE, 20) in seen


def test_aio_pair_returns_auth_cmpl():
    import asyncio

    from blesmp import aio

    _CLOCK[0] = 1000
    ble = FakeBLE()
    sm = aio.SecurityManager(ble, store=DictStore(), clock=lambda: _CLOCK[0], poll_ms=5)
    connect(ble, central=False)

    class Conn:  # an aioble DeviceConnection carries its handle here
        _conn_handle = 0

    async def main():
        sm.start()
        task = asyncio.create_task(sm.pair(Conn()))
        for _ in range(3):
            await asyncio.sleep(0.01)
        assert ("pair", 0) in ble.calls
        ble.ev(C.IRQ_GET_SECRET, 2, 0, memoryview(KEY))
        ble.ev(C.IRQ_GET_SECRET, 1, 0, ZERO7)
        ble.ev(C.IRQ_SET_SECRET, 2, memoryview(KEY), memoryview(blob()))
        ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 1, 0, 1, 16)
        return await task

    r = asyncio.run(main())
    assert r.success and r.level == 2 and r.bonded == 1 and not r.reencrypt


def test_deinit_gives_the_handler_back():
    def app(e, d):
        return None

    sm, ble, store, ev = make(handler=app)
    assert ble.handler == sm._irq
    sm.deinit()
    assert ble.handler is app


def test_failed_update_then_encrypted_is_a_failure():
    sm, ble, store, ev = make()
    connect(ble)
    incoming(ble)
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 0, 0, 0, 0)  # the SMP failure (key distribution)
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 1, 0, 0, 16)  # then the link layer's encryption change
    advance(sm, 10)
    r = auth(ev)
    assert not r.success and r.reason == C.PEER_FAILED and ("disconnect", 0) in ble.calls


# Malformed IRQ tuples and failures inside the manager (review findings F9-F11, SECURITY.md).
def test_malformed_connect_tuples_are_not_stored():
    # A CONNECT whose handle is not an int, whose address type is neither public nor random, or
    # whose address is not 6 bytes is no connection: it must not become a Link.
    sm, ble, _store, events = make()
    for data in ((None, 0, memoryview(PEER)), ("x", 0, memoryview(PEER)), (0, 4, memoryview(PEER)),
                 (0, 0, memoryview(PEER[:2])), (0, 0, 6), (0, None, memoryview(PEER)), (0, 0, None)):
        for event in (C.IRQ_CENTRAL_CONNECT, C.IRQ_PERIPHERAL_CONNECT):
            ble.handler(event, data)
    assert sm.connections() == [], sm.connections()


def test_pairing_after_a_malformed_connect_lands_on_the_real_link():
    # A bogus Link with the peer's key would capture the real link's pairing (first match wins).
    sm, ble, _store, events = make()
    ble.ev(C.IRQ_CENTRAL_CONNECT, None, 0, memoryview(PEER))
    ble.ev(C.IRQ_CENTRAL_CONNECT, 0, 0, memoryview(PEER))
    ble.ev(C.IRQ_GET_SECRET, 1, 0, memoryview(ZERO7))
    ble.ev(C.IRQ_GET_SECRET, 2, 0, memoryview(KEY))
    ble.ev(C.IRQ_SET_SECRET, 1, memoryview(KEY), memoryview(blob()))
    ble.ev(C.IRQ_SET_SECRET, 2, memoryview(KEY), memoryview(blob()))
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 1, 0, 1, 16)
    res = [v for e, c, v in events if e == C.AUTH_CMPL_EVT]
    assert len(res) == 1 and res[0].conn == 0 and res[0].success, res
    assert not res[0].reencrypt  # a pairing, not a re-encryption


def test_malformed_encryption_update_does_not_open_a_protected_read():
    # An ENCRYPTION_UPDATE whose key size is not an int must be ignored: stored in the Link it made
    # every later check raise, and the READ_REQUEST answer fell back to 0 (read allowed).
    sm, ble, _store, events = make()
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
    sm, ble, _store, events = make()
    sm.protect(20, level=2)
    ble.ev(C.IRQ_CENTRAL_CONNECT, 0, 0, memoryview(PEER))

    def broken(conn, attr_handle, write=False):
        raise RuntimeError("injected")

    sm.check = broken
    assert ble.ev(C.IRQ_GATTS_READ_REQUEST, 0, 20) == 0x0E
    assert sm.connections()  # the handler is still installed and the link still known


# ---------------------------------------------------------------- issue 17 / issue 15 item 6


def test_encryption_without_a_store_answered_look_up_is_a_pairing():
    # upstream NimBLE as MicroPython's unix port builds it (BLE_SM_BONDING=0): no bond-count
    # look-up, ENCRYPTION_UPDATE before the SET_SECRETs. Not a re-encryption: a new bond, and the
    # incoming-pairing policy ran (SEC_REQ; the window refuses it when closed).
    sm, ble, store, ev = make()
    connect(ble)
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 1, 0, 1, 16)
    assert names(ev) == ["SEC_REQ"]
    assert ble.ev(C.IRQ_SET_SECRET, 1, memoryview(KEY), memoryview(blob()))
    assert ble.ev(C.IRQ_SET_SECRET, 2, memoryview(KEY), memoryview(blob()))
    r = auth(ev)
    assert r.success and not r.reencrypt and r.sc == 1 and r.bonded == 1 and store.done == [True]
    sm, ble, store, ev = make(window=True)
    connect(ble)
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 1, 0, 1, 16)
    assert auth(ev).reason == C.NOT_IN_WINDOW
    assert not ble.ev(C.IRQ_SET_SECRET, 2, memoryview(KEY), memoryview(blob()))
    assert store.d == {}
    # a re-encryption is one whose LTK look-up the store answered
    sm, ble, store, ev = make(window=True)
    store.d[(1, KEY)] = blob()
    store.d[(2, KEY)] = blob()
    connect(ble)
    assert ble.ev(C.IRQ_GET_SECRET, 1, 0, memoryview(KEY)) is not None
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 1, 0, 1, 16)
    r = auth(ev)
    assert r.success and r.reencrypt


def test_keys_for_a_bonded_identity_follow_that_bonds_policy():
    # a peer on another address distributes a bonded peer's identity: refused (WEAKER_THAN_BOND,
    # not STORE_FULL), the bond untouched; even authenticated (numeric comparison: the user said
    # "yes" to what looked like a new device), unless the pairing window is open
    other = b"\xc5\x00\x00\x00\x00\x77"
    sm, ble, store, ev = make()
    store.d[(1, KEY)] = blob(auth=1)
    store.d[(2, KEY)] = blob(auth=1)
    ble.ev(C.IRQ_CENTRAL_CONNECT, 0, 1, memoryview(other))
    incoming(ble, key=_key(1, other))
    assert not ble.ev(C.IRQ_SET_SECRET, 1, memoryview(KEY), memoryview(blob(auth=1)))
    assert not ble.ev(C.IRQ_SET_SECRET, 2, memoryview(KEY), memoryview(blob(auth=1)))
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 1, 1, 1, 16)
    r = auth(ev)
    assert r.reason == C.WEAKER_THAN_BOND and not r.success and r.bonded == 0
    assert store.d[(2, KEY)] == blob(auth=1)
    sm, ble, store, ev = make()
    store.d[(2, KEY)] = blob(auth=1)
    sm.open_window(30)
    ble.ev(C.IRQ_CENTRAL_CONNECT, 0, 1, memoryview(other))
    incoming(ble, key=_key(1, other))
    assert ble.ev(C.IRQ_SET_SECRET, 2, memoryview(KEY), memoryview(blob(auth=1)))
    # equal strength, authenticated, window open, but repeat="deny": refused
    sm, ble, store, ev = make(repeat="deny")
    sm.open_window(30)
    store.d[(2, KEY)] = blob()
    ble.ev(C.IRQ_CENTRAL_CONNECT, 0, 1, memoryview(other))
    incoming(ble, key=_key(1, other))
    assert not ble.ev(C.IRQ_SET_SECRET, 2, memoryview(KEY), memoryview(blob(auth=1)))


def test_refusal_after_encryption_closes_gatt_at_once():
    sm, ble, store, ev = make()
    sm.protect(20, level=2)
    connect(ble)
    incoming(ble)
    assert not ble.ev(C.IRQ_SET_SECRET, 2, memoryview(KEY), memoryview(blob(ks=7)))
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 1, 0, 1, 7)
    assert auth(ev).reason == C.KEY_TOO_SHORT
    # the DISCONNECT has not come yet: the link is refused for reads and writes already
    assert ble.ev(C.IRQ_GATTS_READ_REQUEST, 0, 20) == C.ATT_INSUFFICIENT_AUTHENTICATION
    assert sm.check(0, 20, True) != 0


def test_sc_only_refuses_unknown_sc():
    # no keys stored (the peer does not bond), no comparison: SC unknown -> refused
    sm, ble, store, ev = make(sc_only=True, io=C.IO_DISPLAY_ONLY)
    connect(ble)
    incoming(ble)
    ble.ev(C.IRQ_PASSKEY_ACTION, 0, 3, 0)
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 1, 1, 0, 16)
    r = auth(ev)
    assert r.reason == C.LEGACY_UNDER_SC_ONLY and r.sc is None and not r.success


def test_answer_to_our_security_request_runs_the_policy():
    sm, ble, store, ev = make(window=True)
    connect(ble)
    assert sm.pair(0)
    assert incoming(ble) is None
    assert auth(ev).reason == C.NOT_IN_WINDOW
    advance(sm, 10)
    assert ("disconnect", 0) in ble.calls
    seen = []
    sm, ble, store, ev = make(agent=CallbackAgent(accept=lambda c, t, a: seen.append(c) or False))
    connect(ble)
    sm.require(0, 2)
    incoming(ble)
    assert seen == [0] and auth(ev).reason == C.REJECTED


def test_bond_rewrite_outside_pairing_is_no_pairing():
    # esp-nimble rewrites our keys of a bond (the sign counter after a signed write) on an
    # encrypted link: same LTK, no pairing: stored, no SEC_REQ, no policy (even repeat="deny")
    sm, ble, store, ev = make(repeat="deny")
    store.d[(1, KEY)] = blob()
    store.d[(2, KEY)] = blob()
    connect(ble)
    assert ble.ev(C.IRQ_GET_SECRET, 1, 0, memoryview(KEY)) is not None
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, 0, 1, 0, 1, 16)
    assert auth(ev).reencrypt
    b = bytearray(blob())
    b[84] = 5  # (the sign counter of the 88-byte layout)
    assert ble.ev(C.IRQ_SET_SECRET, 1, memoryview(KEY), memoryview(bytes(b)))
    assert names(ev) == ["AUTH_CMPL"] and not sm.state(0).busy and ("disconnect", 0) not in ble.calls


class _NotifyBLE(FakeBLE):
    # gatts_notify/indicate without data: the firmware reads the value with conn 65535 through the
    # handler (ble_gattc_notify_custom -> ble_att_svr_read_handle(BLE_HS_CONN_HANDLE_NONE, ...));
    # a non-zero answer means nothing is sent (BLE_HS_EAPP -> OSError)
    def _send(self, op, conn, h, data):
        if data is None:
            if self.handler(C.IRQ_GATTS_READ_REQUEST, (65535, h)):
                raise OSError(5)
            data = b"db"
        self.calls.append((op, conn, h, bytes(data)))

    def gatts_notify(self, conn, h, data=None):
        self._send("notify", conn, h, data)

    def gatts_indicate(self, conn, h, data=None):
        self._send("indicate", conn, h, data)


def _pair_conn(ble, h, addr):
    key = _key(0, addr)
    ble.ev(C.IRQ_CENTRAL_CONNECT, h, 0, memoryview(addr))
    ble.ev(C.IRQ_GET_SECRET, 2, 0, None)
    ble.ev(C.IRQ_GET_SECRET, 1, 0, ZERO7)
    ble.ev(C.IRQ_GET_SECRET, 2, 0, memoryview(key))
    ble.ev(C.IRQ_SET_SECRET, 2, memoryview(key), memoryview(blob(a=addr)))
    ble.ev(C.IRQ_ENCRYPTION_UPDATE, h, 1, 0, 1, 16)


def test_notification_reads_of_protected_values_need_every_link_to_qualify():
    # Issue 17 item 5: NimBLE reads a value to notify/indicate it with conn 65535 and does not say
    # to whom; anyone may subscribe (CCCD writes need no encryption). A protected value is read for
    # that only while every connection qualifies; notify() sends to one qualifying connection.
    sm, ble, store, ev = make(_NotifyBLE)
    sm.protect(20, level=2)
    assert ble.ev(C.IRQ_GATTS_READ_REQUEST, 65535, 20) == 0  # nobody connected: nobody to leak to
    _pair_conn(ble, 0, PEER)
    assert sm.state(0).level == 2
    assert ble.ev(C.IRQ_GATTS_READ_REQUEST, 65535, 20) == 0  # the only link qualifies
    other = b"\x66\x55\x44\x33\x22\x11"
    ble.ev(C.IRQ_CENTRAL_CONNECT, 1, 0, memoryview(other))  # an unpaired subscriber
    assert ble.ev(C.IRQ_GATTS_READ_REQUEST, 65535, 20) == C.ATT_INSUFFICIENT_AUTHENTICATION
    # the per-connection path: the friend gets it, the stranger does not (with or without data)
    assert sm.notify(0, 20) and ("notify", 0, 20, b"db") in ble.calls
    assert sm.notify(0, 20, b"v", True)
    assert ("indicate", 0, 20, b"v") in ble.calls
    n = len(ble.calls)
    assert not sm.notify(1, 20) and not sm.notify(1, 20, b"secret") and not sm.notify(1, 20, None, True)
    assert len(ble.calls) == n  # nothing sent to conn 1
    assert sm.notify(1, 21, b"public")  # not protected: sent
    # a raw gatts_notify without data to the stranger is refused by the read (the firmware sends nothing)
    try:
        ble.gatts_notify(1, 20)
        raise AssertionError("protected value notified to an unencrypted link")
    except OSError:
        pass
    # a notify() in progress in another thread (on ESP32 the NimBLE task sends notifications of
    # gatts_write(send_update=True) by itself): its reads are not the one notify() vouched for
    sm._notify_to = (0, "another thread")
    assert ble.ev(C.IRQ_GATTS_READ_REQUEST, 65535, 20) == C.ATT_INSUFFICIENT_AUTHENTICATION
    sm._notify_to = None
    ble.ev(C.IRQ_CENTRAL_DISCONNECT, 1, 0, memoryview(other))
    assert ble.ev(C.IRQ_GATTS_READ_REQUEST, 65535, 20) == 0


def test_protect_validates_its_arguments():
    sm, ble, store, ev = make()

    class Chr:  # what aioble's server Characteristic/Descriptor has once registered
        _value_handle = 42

    sm.protect(Chr(), level=3)
    assert sm._authz[42][0] == 3
    sm.protect(7)
    sm.protect(8, level=4, min_key_size=16, authorize=lambda c, h, w: True)
    assert 7 in sm._authz and 8 in sm._authz
    unregistered = Chr()
    unregistered._value_handle = None
    bad = (("x",), (None,), (unregistered,), (0,), (65535,), (True,), (1.5,), (object(),),
           (9, 0), (9, 5), (9, -1), (9, "2"), (9, None), (9, True), (9, 2, 6), (9, 2, 17), (9, 2, "16"),
           (9, 2, 0, "yes"), (9, 2, 0, 1))
    for args in bad:
        try:
            sm.protect(*args)
        except (TypeError, ValueError) as e:
            assert "protect" in str(e), (args, e)
        else:
            raise AssertionError("protect%r accepted" % (args,))
    assert sorted(sm._authz) == [7, 8, 42]  # nothing protected by a refused call


def test_a_refused_pairing_request_does_not_mark_a_bonded_peers_later_look_up():
    # NimBLE counts bonds, then refuses a stranger's Pairing Request (e.g. key size < 7) before
    # its repeat-pairing look-up. 200 ms later a bonded peer's GATT permission check looks up its
    # bond: no pairing of that peer starts (before: SEC_REQ, and SMP_TIMEOUT 30 s later).
    sm, ble, store, ev = make()
    store.d[(2, KEY)] = blob(auth=0, sc=1)
    connect(ble, h=0)  # the bonded peer
    ble.ev(C.IRQ_CENTRAL_CONNECT, 1, 0, memoryview(bytes((9, 9, 9, 9, 9, 9))))  # the stranger
    _CLOCK[0] += 50
    ble.ev(C.IRQ_GET_SECRET, 2, 0, None)
    ble.ev(C.IRQ_GET_SECRET, 1, 0, ZERO7)  # ... and NimBLE refuses the request: no repeat look-up
    _CLOCK[0] += 200
    assert ble.ev(C.IRQ_GET_SECRET, 2, 0, memoryview(KEY)) is not None
    assert "SEC_REQ" not in names(ev)
    advance(sm, 31000)
    assert "AUTH_CMPL" not in names(ev) and ("disconnect", 0) not in ble.calls, ev
    # the look-ups of one call still mark a pairing start
    sm, ble, store, ev = make()
    store.d[(2, KEY)] = blob(auth=0, sc=1)
    connect(ble, h=0)
    _CLOCK[0] += 50
    incoming(ble)
    assert names(ev) == ["SEC_REQ"]
