"""Scenario on simulated boards: a bonded peer rotates its RPA, reconnects and is recognised.

A gateway (central, scanning) runs blesmp's BondStore and Resolver; a tag
(peripheral) advertises with `addr_mode=2` (RPA) and rotates its address after
the firmware's RPA timeout. The gateway must recognise the tag behind every
address: in scan results (which the firmware never resolves for Python) and
in `_IRQ_PERIPHERAL_CONNECT`, both when the IRQ handler was installed before
`active(True)` (the firmware resolves connections itself) and when it was
installed late (the firmware's resolving list is empty and the IRQ shows the
RPA: only the Resolver knows who it is). The first test starts from a bond
written into both stores as NimBLE writes it; the second pairs on the air
first (the simulator's SMP), so the IRK the resolver uses is the one the tag
distributed.
"""

import os

import pytest

world_mod = pytest.importorskip("tools.blesim.world")
store_mod = pytest.importorskip("blesmp.store")
blob = pytest.importorskip("blesmp.blob")

from blesmp.resolver import RPA, Resolver, ScanFilter, kind  # noqa: E402

_IRQ_PERIPHERAL_CONNECT = 7
_IRQ_PERIPHERAL_DISCONNECT = 8
_IRQ_ENCRYPTION_UPDATE = 28
_IRQ_GET_SECRET = 29
_IRQ_SET_SECRET = 30
TAG_ADDR = bytes.fromhex("a4cf120000a2")
ADV = b"\x02\x01\x06\x04\x09tag"


def _plain(data):
    return tuple(bytes(x) if isinstance(x, memoryview) else x for x in data) if data else ()


def _sec(addr_type, addr, ltk, irk):
    s = blob.Sec()
    s.addr_type = addr_type
    s.addr = addr
    s.key_size = 16
    s.ltk = ltk
    s.irk = irk
    s.sc = 1
    return blob.encode(s, blob.ESP88)


def _bond(store, addr_type, addr, ltk, peer_irk):
    """Keys as NimBLE stores them after an LE Secure Connections bonding (same LTK both ways)."""
    key = memoryview(store_mod.addr_key(addr_type, addr))
    assert store.set_secret(1, key, memoryview(_sec(addr_type, addr, ltk, None)))
    assert store.set_secret(2, key, memoryview(_sec(addr_type, addr, ltk, peer_irk)))


class Node:
    def __init__(self, board, late_handler=False):
        self.board = board
        self.ble = board.ble
        self.store = store_mod.BondStore("bonds.db", fs=board.fs, layout=blob.ESP88)
        self.events = []
        self.late = late_handler

    def irq(self, event, data):
        if event == _IRQ_GET_SECRET:
            return self.store.get_secret(*data)
        if event == _IRQ_SET_SECRET:
            return self.store.set_secret(*data)
        self.events.append((event, _plain(data)))
        return None

    def start(self, handler=None):
        self.ble.config(bond=True, le_secure=True)
        h = handler or self.irq
        if self.late:
            self.ble.active(True)
            self.ble.irq(h)
        else:
            self.ble.irq(h)
            self.ble.active(True)


def _setup(late_handler):
    w = world_mod.World(trace=False)
    gw = Node(w.board("gw"), late_handler=late_handler)
    tag = Node(w.board("tag", addr=(0, TAG_ADDR)))
    tag.start()
    tag_irk = tag.store.irk()  # NimBLE's load_irk stored it through SET(10)
    assert tag_irk is not None and len(tag_irk) == 16
    # A bond made earlier, on both sides (the gateway's public address is its identity).
    ltk = os.urandom(16)
    gw_id = gw.board.public_addr
    _bond(gw.store, 0, TAG_ADDR, ltk, tag_irk)
    _bond(tag.store, 0, gw_id, ltk, None)
    resolver = Resolver(gw.store)
    seen = []
    scan = ScanFilter(resolver, lambda bond, t, a, at, rssi, d: seen.append((bond, t, bytes(a))), bonded_only=False)

    def gw_irq(event, data):
        if scan.irq(event, data):
            return None
        return gw.irq(event, data)

    gw.start(gw_irq)
    return w, gw, tag, resolver, seen, scan


def _advertise_and_scan(w, gw, tag, seen):
    tag.ble.gap_advertise(100_000, ADV)
    del seen[:]
    gw.ble.gap_scan(600, 30_000, 30_000)
    w.run(0.7)
    tag.ble.gap_advertise(None)
    assert seen, "the gateway saw no advertisement"
    addrs = {a for _, _, a in seen}
    assert len(addrs) == 1
    return addrs.pop()


@pytest.mark.parametrize("late_handler", [False, True], ids=["handler-before-active", "handler-late"])
def test_bonded_peer_rotates_rpa_and_is_recognised(late_handler):
    w, gw, tag, resolver, seen, scan = _setup(late_handler)
    tag.ble.config(addr_mode=2)

    rpa1 = _advertise_and_scan(w, gw, tag, seen)
    assert kind(1, rpa1) == RPA and rpa1 != TAG_ADDR
    for bond, addr_type, _addr in seen:
        assert addr_type == 1
        assert bond is not None and (bond.addr_type, bond.addr) == (0, TAG_ADDR)

    # The tag's RPA times out (900 s in NimBLE); its next advertising uses a new one.
    w.run(901)
    rpa2 = _advertise_and_scan(w, gw, tag, seen)
    assert kind(1, rpa2) == RPA and rpa2 not in (rpa1, TAG_ADDR)
    assert all(b is not None and b.addr == TAG_ADDR for b, _, _ in seen)
    assert scan.errors == 0

    # Reconnect to the new address.
    tag.ble.gap_advertise(100_000, ADV)
    gw.ble.gap_connect(1, rpa2)
    w.run_until(lambda: any(e == _IRQ_PERIPHERAL_CONNECT for e, _ in gw.events), timeout=5)
    conn, t, a = next(d for e, d in gw.events if e == _IRQ_PERIPHERAL_CONNECT)
    if late_handler:
        # The firmware's resolving list never got the tag's IRK: the IRQ shows the RPA.
        assert (t, a) == (1, rpa2)
    else:
        # The firmware resolved the connection itself: the identity address.
        assert (t, a) == (0, TAG_ADDR)
    bond = resolver.identify(t, a)
    assert bond is not None and (bond.addr_type, bond.addr) == (0, TAG_ADDR)

    if not late_handler:
        # With the identity the firmware also finds the stored keys and
        # re-encrypts (bonded=1) without pairing again.
        gw.ble.gap_pair(conn)
        w.run_until(lambda: any(e == _IRQ_ENCRYPTION_UPDATE for e, _ in gw.events), timeout=5)
        enc = next(d for e, d in gw.events if e == _IRQ_ENCRYPTION_UPDATE)
        assert enc[1:] == (1, 0, 1, 16)


def test_pair_then_rotate_and_reconnect():
    """The whole story on the simulator: pair with a stranger behind an RPA, then
    recognise it behind its next RPA and re-encrypt without pairing."""
    w = world_mod.World(trace=False)
    gw = Node(w.board("gw"))
    tag = Node(w.board("tag", addr=(0, TAG_ADDR)))
    tag.start()
    resolver = Resolver(gw.store)
    seen = []
    scan = ScanFilter(resolver, lambda bond, t, a, at, rssi, d: seen.append((bond, t, bytes(a))), bonded_only=False)
    gw.start(lambda e, d: None if scan.irq(e, d) else gw.irq(e, d))
    tag.ble.config(addr_mode=2)

    rpa1 = _advertise_and_scan(w, gw, tag, seen)
    assert kind(1, rpa1) == RPA and all(b is None for b, _, _ in seen)  # a stranger so far
    tag.ble.gap_advertise(100_000, ADV)
    gw.ble.gap_connect(1, rpa1)
    w.run_until(lambda: any(e == _IRQ_PERIPHERAL_CONNECT for e, _ in gw.events), timeout=5)
    conn = next(d for e, d in gw.events if e == _IRQ_PERIPHERAL_CONNECT)[0]
    gw.ble.gap_pair(conn)
    both = (gw.events, tag.events)
    w.run_until(lambda: all(any(e == _IRQ_ENCRYPTION_UPDATE and d[1] for e, d in ev) for ev in both), timeout=35)
    enc = [d for e, d in gw.events if e == _IRQ_ENCRYPTION_UPDATE][-1]
    assert enc[1] == 1 and enc[3] == 1, enc  # encrypted and bonded
    assert len(resolver) == 1  # the store's "added" event reached the resolver
    bonds = gw.store.bonds()
    assert [(b.addr_type, b.addr) for b in bonds] == [(0, TAG_ADDR)]
    assert bonds[0].irk == tag.store.irk()
    assert resolver.resolve(1, rpa1).addr == TAG_ADDR
    gw.ble.gap_disconnect(conn)
    tag.ble.gap_advertise(None)
    w.run(1)

    w.run(901)  # the tag's RPA times out
    del gw.events[:]
    rpa2 = _advertise_and_scan(w, gw, tag, seen)
    assert rpa2 != rpa1 and all(b is not None and b.addr == TAG_ADDR for b, _, _ in seen)
    tag.ble.gap_advertise(100_000, ADV)
    gw.ble.gap_connect(1, rpa2)
    w.run_until(lambda: any(e == _IRQ_PERIPHERAL_CONNECT for e, _ in gw.events), timeout=5)
    conn, t, a = next(d for e, d in gw.events if e == _IRQ_PERIPHERAL_CONNECT)
    assert resolver.identify(t, a).addr == TAG_ADDR
    gw.ble.gap_pair(conn)
    w.run_until(lambda: any(e == _IRQ_ENCRYPTION_UPDATE for e, _ in gw.events), timeout=5)
    assert next(d for e, d in gw.events if e == _IRQ_ENCRYPTION_UPDATE)[1:] == (1, 0, 1, 16)
