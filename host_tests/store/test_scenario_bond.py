"""Scenario on simulated boards (tools/blesim World): BondStore in a raw IRQ handler.

Two boards pair and bond (central calls gap_pair); both are reset; after the reboot
the central's gap_pair must re-encrypt with the stored LTK (no new pairing, no
SET_SECRET) and both sides report an encrypted, bonded link. Then the same after a
simulated firmware update that changes NimBLE's struct layout (profile
"esp32-v1.23", 80 bytes, ENCRYPTION_UPDATE before the SETs -> "esp32", 88 bytes),
once with the layout given to the store and once learned automatically (the
firmware id changes with the update, as `os.uname()` does on a board).
"""

from contextlib import contextmanager

import pytest

world_mod = pytest.importorskip("tools.blesim.world")

from blesmp import blob, bond  # noqa: E402
from blesmp import store as store_mod  # noqa: E402
from blesmp.store import BondStore  # noqa: E402

_IRQ_CENTRAL_CONNECT = 1
_IRQ_PERIPHERAL_CONNECT = 7
_IRQ_ENCRYPTION_UPDATE = 28
_IRQ_GET_SECRET = 29
_IRQ_SET_SECRET = 30


class Node:
    """A board's application: a raw IRQ handler answering secrets from a BondStore."""

    def __init__(self, board, layout=None):
        self.board = board
        self.ble = board.ble
        self.store = BondStore("bonds.db", fs=board.fs, layout=layout)
        self.events = []
        self.sets = 0
        self.peer = None
        self.reports = []  # (pairing_done result, bonds on flash at that moment)
        self.store.subscribe(self.on_bond)
        self.ble.irq(self.irq)  # before active(True): the store sees NimBLE's start-up lookups
        self.ble.config(bond=True, le_secure=True)
        self.ble.active(True)

    def irq(self, event, data):
        if event == _IRQ_GET_SECRET:
            return self.store.get_secret(*data)
        if event == _IRQ_SET_SECRET:
            self.sets += 1
            return self.store.set_secret(*data)
        data = tuple(bytes(x) if isinstance(x, memoryview) else x for x in data)
        self.events.append((event, data))
        if event in (_IRQ_CENTRAL_CONNECT, _IRQ_PERIPHERAL_CONNECT):
            self.peer = data[1:3]
        elif event == _IRQ_ENCRYPTION_UPDATE and data[3] and self.peer is not None:
            # what a manager does: report the pairing only once the bond is on flash
            r = self.store.pairing_done(self.peer[0], self.peer[1], data[1], data[3])
            self.reports.append((r, self.bonds_on_flash()))
        return None

    def on_bond(self, event, bond):
        if event in ("added", "replaced"):
            self.reports.append((event, self.bonds_on_flash()))

    def bonds_on_flash(self):
        from blesmp import bondload

        recs = bondload.parse(self.board.fs.read_bytes("bonds.db"))[0]
        return sum(1 for tag, _p in recs if tag == 66)

    def last(self, event):
        for e, d in reversed(self.events):
            if e == event:
                return d
        return None


def connect_and_pair(w, p, c):
    p.ble.gap_advertise(100000, b"\x02\x01\x06")
    c.ble.gap_connect(*p.ble.config("mac"))
    assert w.run_until(lambda: p.last(_IRQ_CENTRAL_CONNECT) and c.last(_IRQ_PERIPHERAL_CONNECT), 5)
    ch = c.last(_IRQ_PERIPHERAL_CONNECT)[0]
    c.ble.gap_pair(ch)
    assert w.run_until(lambda: p.last(_IRQ_ENCRYPTION_UPDATE) and c.last(_IRQ_ENCRYPTION_UPDATE), 35)
    return p.last(_IRQ_ENCRYPTION_UPDATE), c.last(_IRQ_ENCRYPTION_UPDATE)


def reboot(w, board, layout=None):
    board.reset()
    return Node(board, layout)


def check_bonded(p, c):
    """Each side holds exactly one bond, for the other's identity, with matching keys."""
    (bp,) = p.store.bonds()
    (bc,) = c.store.bonds()
    assert (bp.addr_type, bp.addr) == tuple(c.ble.config("mac"))
    assert (bc.addr_type, bc.addr) == tuple(p.ble.config("mac"))
    assert bp.ltk is not None and bp.ltk == bc.peer_ltk  # SC: one LTK, both sides
    assert bp.key_size == 16 and bc.sc == 1


def _pair_reset_reconnect(w, pa, ce, layout_after=None, profile_after=None, fw_after=None, monkeypatch=None):
    p, c = Node(pa), Node(ce)
    up, uc = connect_and_pair(w, p, c)
    assert up[1:4] == (1, 0, 1) and uc[1:4] == (1, 0, 1), (up, uc)
    check_bonded(p, c)
    for n in (p, c):
        if n.board.profile.set_before_enc:  # keys stored, then ENCRYPTION_UPDATE
            assert n.reports == [("added", 1), ("stored", 1)], n.reports
        else:  # ENCRYPTION_UPDATE first: "pending", then the bond lands on flash, then "added"
            assert n.reports == [("pending", 0), ("added", 1)], n.reports
    size_before = len(p.store.get_secret(1, 0, store_mod.addr_key(*c.ble.config("mac"))))
    c.ble.gap_disconnect(c.last(_IRQ_PERIPHERAL_CONNECT)[0])
    w.run(1.0)
    if profile_after is not None:  # a firmware update: the new build runs after the reset
        from tools.blesim.firmware import get_profile

        pa.profile = ce.profile = get_profile(profile_after)
    if fw_after is not None:
        monkeypatch.setattr(bond, "_fw_id", lambda: fw_after)
    p, c = reboot(w, pa, layout_after), reboot(w, ce, layout_after)
    check_bonded(p, c)
    w.trace.clear()
    up, uc = connect_and_pair(w, p, c)
    assert up[1] == 1 and up[3] == 1 and up[4] == 16, up
    assert uc[1] == 1 and uc[3] == 1 and uc[4] == 16, uc
    assert p.sets == 0 and c.sets == 0  # re-encrypted with the stored keys: nothing new stored
    assert w.trace.select(board="central", name="encrypt_with_bond")  # the stored LTK was used
    return p, c, size_before


@contextmanager
def _world(profile, seed):
    """A World with a "periph" and a "central" board: (world, periph, central), closed after."""
    w = world_mod.World(profile=profile, seed=seed)
    try:
        yield w, w.board("periph"), w.board("central")
    finally:
        w.close()


def test_bond_survives_reset_of_both_boards():
    with _world("esp32", 5) as (w, pa, ce):
        p, c, size = _pair_reset_reconnect(w, pa, ce)
        assert size == 88 and p.store.layout == blob.ESP88


def test_bond_survives_firmware_update_with_layout_given(monkeypatch):
    # Here the update goes from 88 to 80 bytes ("esp32" -> "esp32-v1.23"): a layout the
    # store would not guess; layout="80" tells it. The firmware id changes, as os.uname() does.
    with _world("esp32", 6) as (w, pa, ce):
        monkeypatch.setattr(bond, "_fw_id", lambda: "v1.26.0|ESP32 module with ESP32")
        p, c, size = _pair_reset_reconnect(w, pa, ce, layout_after="80", profile_after="esp32-v1.23",
                                           fw_after="v1.23.0|ESP32 module with ESP32", monkeypatch=monkeypatch)
        assert size == 88
        assert len(p.store.get_secret(1, 0, store_mod.addr_key(*c.ble.config("mac")))) == 80
        assert p.store.layout == blob.NIMBLE80


def test_bond_survives_firmware_update_layout_guessed(monkeypatch):
    # v1.23 (ENCRYPTION_UPDATE before the SETs, 80-byte upstream blobs: the store learns the
    # layout from NimBLE's writes) -> current firmware (88 bytes): new firmware id, layout guessed.
    with _world("esp32-v1.23", 7) as (w, pa, ce):
        monkeypatch.setattr(bond, "_fw_id", lambda: "v1.23.0|ESP32 module with ESP32")
        p, c, size = _pair_reset_reconnect(w, pa, ce, profile_after="esp32", fw_after="v1.26.0|ESP32 module with ESP32",
                                           monkeypatch=monkeypatch)
        assert size == 80 and p.store.layout == blob.ESP88  # converted at load, written once


def test_without_conversion_the_old_blobs_are_rejected(monkeypatch):
    """The control: a store that keeps serving 80-byte blobs to the 88-byte firmware (what
    aioble and the upstream example do) loses the bond after the update."""
    with _world("esp32-v1.23", 8) as (w, pa, ce):
        p, c = Node(pa), Node(ce)
        connect_and_pair(w, p, c)
        c.ble.gap_disconnect(c.last(_IRQ_PERIPHERAL_CONNECT)[0])
        w.run(1.0)
        from tools.blesim.firmware import get_profile

        pa.profile = ce.profile = get_profile("esp32")
        p, c = reboot(w, pa, "80"), reboot(w, ce, "80")  # wrong layout forced
        w.trace.clear()
        connect_and_pair(w, p, c)
        assert c.sets == 2  # the stored bond was not accepted: a new pairing happened
        assert not w.trace.select(board="central", name="encrypt_with_bond")
        assert w.trace.select(board="central", name="secret_size_mismatch")
