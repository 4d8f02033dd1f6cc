"""Scenario on simulated boards: the re-pairing transaction end to end.

A lock (ESP32 peripheral, DisplayYesNo, MITM, BondStore in a raw IRQ handler) bonds
with a phone by numeric comparison (authenticated). Then:
  * an attacker board that spoofs the phone's address pairs with Just Works: NimBLE
    on the lock deletes the phone's keys (repeat pairing) and the pairing completes
    on the air, but the store refuses the weaker keys and shows the old bond again;
    the phone, back in range, re-encrypts with its original LTK;
  * the phone forgets the lock and pairs again the same way (equally strong): the
    bond is replaced, with one flash write;
  * a re-pairing that fails (the phone rejects the comparison) leaves the bond as it was.
"""

import pytest

world_mod = pytest.importorskip("tools.blesim.world")

from blesmp import blob  # noqa: E402
from blesmp.store import REFUSED, RESTORED, STORED, BondStore  # noqa: E402

_IRQ_CENTRAL_CONNECT = 1
_IRQ_CENTRAL_DISCONNECT = 2
_IRQ_PERIPHERAL_CONNECT = 7
_IRQ_PERIPHERAL_DISCONNECT = 8
_IRQ_ENCRYPTION_UPDATE = 28
_IRQ_GET_SECRET = 29
_IRQ_SET_SECRET = 30
_IRQ_PASSKEY_ACTION = 31
PHONE = bytes.fromhex("5c0a5b000001")


class Dev:
    def __init__(self, board, io, mitm, accept=True, store=True):
        self.board = board
        self.ble = board.ble
        self.store = BondStore("bonds.db", fs=board.fs, layout=blob.ESP88) if store else None
        self.secrets = {}
        self.accept = accept
        self.events = []
        self.done = []  # store.pairing_done() results (lock side)
        self.peer = None
        self.ble.irq(self.irq)
        self.ble.config(bond=True, le_secure=True, mitm=mitm, io=io)
        self.ble.active(True)

    def irq(self, event, data):
        if event == _IRQ_GET_SECRET:
            if self.store is None:
                t, i, k = data
                return self.secrets.get((t, bytes(k))) if k is not None else None
            return self.store.get_secret(*data)
        if event == _IRQ_SET_SECRET:
            if self.store is None:
                t, k, v = data
                if v is None:
                    return self.secrets.pop((t, bytes(k)), None) is not None
                self.secrets[(t, bytes(k))] = bytes(v)
                return True
            return self.store.set_secret(*data)
        data = tuple(bytes(x) if isinstance(x, memoryview) else x for x in data)
        self.events.append((event, data))
        if event == _IRQ_CENTRAL_CONNECT:
            self.peer = (data[1], data[2])
        if event == _IRQ_PASSKEY_ACTION and data[1] == 4:
            self.ble.gap_passkey(data[0], 4, 1 if self.accept else 0)
        if event == _IRQ_ENCRYPTION_UPDATE and self.store is not None and self.peer is not None:
            _h, enc, _auth, bonded, _ks = data
            self.done.append(self.store.pairing_done(self.peer[0], self.peer[1], enc, bonded))
        return None

    def last(self, event):
        for e, d in reversed(self.events):
            if e == event:
                return d
        return None


def session(w, lock, central, pair=True):
    """central connects to the lock (and pairs); returns both ENCRYPTION_UPDATEs (or None)."""
    lock.events.clear()
    central.events.clear()
    lock.ble.gap_advertise(100000, b"\x02\x01\x06")
    central.ble.gap_connect(*lock.ble.config("mac"))
    assert w.run_until(lambda: lock.last(_IRQ_CENTRAL_CONNECT) and central.last(_IRQ_PERIPHERAL_CONNECT), 5)
    h = central.last(_IRQ_PERIPHERAL_CONNECT)[0]
    if pair:
        central.ble.gap_pair(h)
        w.run_until(lambda: lock.last(_IRQ_ENCRYPTION_UPDATE) and central.last(_IRQ_ENCRYPTION_UPDATE), 35)
    up = lock.last(_IRQ_ENCRYPTION_UPDATE)
    uc = central.last(_IRQ_ENCRYPTION_UPDATE)
    try:
        central.ble.gap_disconnect(h)
    except OSError:
        pass
    w.run(1.0)
    return up, uc


def test_spoofed_weaker_repairing_cannot_evict_the_owner():
    w = world_mod.World(profile="esp32", seed=11)
    try:
        lock = Dev(w.board("lock"), io=1, mitm=True)
        phone = Dev(w.board("phone", addr=(0, PHONE), profile="phone"), io=4, mitm=True, store=False)
        up, uc = session(w, lock, phone)
        assert up[1:4] == (1, 1, 1) and lock.done[-1] == STORED  # authenticated (numeric comparison)
        (bond,) = lock.store.bonds()
        assert bond.authenticated == 1 and bond.addr == PHONE
        ltk = bond.ltk
        writes = lock.store.writes

        phone_keys = dict(phone.secrets)  # the phone's own bond store
        assert phone_keys
        phone.board.power_off()
        thief = Dev(w.board("thief", addr=(0, PHONE)), io=3, mitm=False, store=False)  # spoofs the phone
        up, uc = session(w, lock, thief)
        assert uc is not None and uc[1] == 1  # the pairing itself completed on the air (Just Works)
        assert w.trace.select(board="lock", name="repeat_pairing")  # NimBLE deleted the phone's keys
        assert lock.done[-1] == REFUSED
        (bond,) = lock.store.bonds()
        assert bond.ltk == ltk and bond.authenticated == 1 and lock.store.writes == writes
        thief.board.power_off()

        phone.board.power_on()
        phone = Dev(phone.board, io=4, mitm=True, store=False)
        phone.secrets = phone_keys  # the phone's keys survive its reboot
        w.trace.clear()
        up, uc = session(w, lock, phone)
        assert up[1:5] == (1, 1, 1, 16) and uc[1] == 1  # encrypted, authenticated, bonded
        assert w.trace.select(board="phone", name="encrypt_with_bond")  # with the original LTK
        assert not w.trace.select(board="lock", name="repeat_pairing")
        (bond,) = lock.store.bonds()
        assert bond.ltk == ltk and lock.store.writes == writes
    finally:
        w.close()


def test_owner_repairs_equally_strong_and_failed_repairing_changes_nothing():
    w = world_mod.World(profile="esp32", seed=12)
    try:
        lock = Dev(w.board("lock"), io=1, mitm=True)
        phone = Dev(w.board("phone", addr=(0, PHONE), profile="phone"), io=4, mitm=True, store=False)
        session(w, lock, phone)
        (old,) = lock.store.bonds()
        writes = lock.store.writes

        # a failed re-pairing (the user rejects the comparison on the phone): bond unchanged
        phone.secrets.clear()
        phone.accept = False
        up, uc = session(w, lock, phone)
        assert lock.done[-1] == RESTORED, lock.done
        (b,) = lock.store.bonds()
        assert b.ltk == old.ltk and lock.store.writes == writes

        # the phone forgot the lock and pairs again, as strongly as before: replaced in one write
        phone.secrets.clear()
        phone.accept = True
        up, uc = session(w, lock, phone)
        assert up[1:4] == (1, 1, 1) and lock.done[-1] == STORED
        (b,) = lock.store.bonds()
        assert b.ltk != old.ltk and b.authenticated == 1 and lock.store.writes == writes + 1
        assert BondStore("bonds.db", fs=lock.board.fs, layout=blob.ESP88).find(0, PHONE).ltk == b.ltk
    finally:
        w.close()
