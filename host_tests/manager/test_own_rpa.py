"""Our own private address end to end on simulated boards: an ESP32 peripheral running
SecurityManager + BondStore advertises with a resolvable private address (`addr_mode=2`, set
after the manager activated the stack), a phone bonds with it, the ESP32 is power-cycled (and,
in one case, updated to a firmware with another blob layout) and comes back behind a NEW RPA:
the phone recognises it only because the store gave NimBLE our IRK back at `active(True)`, and
re-encrypts with the stored bond. The control: a store that loses our IRK makes the lock a
stranger behind its next RPA. docs/private-addresses.md "Our own private address".
"""

import errno
import io
import sys

import pytest
from simkit import Dev, World, both_done

from blesmp import bond as bond_mod
from blesmp import const as C
from blesmp import crypto
from blesmp.resolver import RPA, Resolver, kind
from blesmp.store import BondStore

_IRQ_SCAN_RESULT = 5
ADV = b"\x02\x01\x06\x05\x09lock"
FW_OLD = "v1.23.0|ESP32 module with ESP32"
FW_NEW = "v1.26.0|ESP32 module with ESP32"


class ForgetfulStore(BondStore):
    """A store that keeps the bonds but not our IRK (what a store without type 10, or one
    cleared of it, looks like to NimBLE): each boot the firmware makes a new IRK."""

    def get_secret(self, sec_type, index, key):
        if sec_type == 10:
            return None
        return BondStore.get_secret(self, sec_type, index, key)


def ltk_of(dev):
    (b,) = dev.store.bonds()
    assert b.ltk is not None
    return b.ltk


def resolves(irk, addr):
    return crypto.ah(irk, bytes(addr[:3])) == bytes(addr[3:])


def private_mode(dev):
    """What the application does after SecurityManager(...) returned (the manager called
    ble.active(True); addr_mode needs an active stack), at every boot."""
    dev.call(lambda: dev.ble.config(addr_mode=2))


def scan_for(w, phone, lock):
    """The lock advertises, the phone scans: the one address it advertised with."""
    seen = []

    def irq(event, data):
        if event == _IRQ_SCAN_RESULT and bytes(data[4]) == ADV:
            seen.append((data[0], bytes(data[1])))

    phone.sm.irq(irq)
    lock.call(lock.ble.gap_advertise, 50000, ADV)
    phone.call(phone.ble.gap_scan, 500, 30000, 30000)
    w.run(0.6)
    phone.sm.irq(phone._app_irq)
    assert seen, "the phone saw no advertisement"
    assert len(set(seen)) == 1, seen
    return seen[0]


def connect_to(w, phone, lock, addr):
    phone.call(phone.ble.gap_connect, addr[0], addr[1])
    assert w.run_until(lambda: phone.sm.connections() and lock.sm.connections(), 5), "no connection"
    return phone.sm.connections()[-1].handle, lock.sm.connections()[-1].handle


def bond_then_reboot(w, lock, phone, monkeypatch=None, update=False):
    """Bonds the phone with the lock behind its RPA, disconnects, power-cycles the lock (with a
    firmware update if `update`) and puts it back in RPA mode. Returns (rpa before, rpa after,
    our IRK before the reboot)."""
    private_mode(lock)
    with pytest.raises(OSError) as e:
        lock.call(lock.ble.config, "mac")  # the firmware's answer in RPA mode (no current address)
    assert e.value.errno == errno.EINVAL
    irk = lock.store.irk()
    assert irk is not None and len(irk) == 16  # NimBLE's load_irk stored it at the first active(True)
    rpa1 = scan_for(w, phone, lock)
    assert rpa1[0] == 1 and kind(*rpa1) == RPA and rpa1[1] != lock.board.public_addr
    assert resolves(irk, rpa1[1])  # made with the IRK the store holds
    hc, hl = connect_to(w, phone, lock, rpa1)
    assert lock.sm.state(hl).addr == phone.board.public_addr
    assert phone.call(phone.sm.pair, hc)
    assert both_done(w, phone, lock)
    for d in (phone, lock):
        r = d.result()
        assert r.success and r.bonded == 1 and not r.reencrypt, d.events
    # The phone knows the lock by its identity (public) address and keeps the IRK it was given.
    (b,) = phone.store.bonds()
    assert (b.addr_type, b.addr) == (0, lock.board.public_addr)
    assert b.irk == irk
    assert phone.sm.state(hc).addr == lock.board.public_addr
    assert ltk_of(phone) == ltk_of(lock)
    out = io.StringIO()
    old, sys.stdout = sys.stdout, out
    try:
        lock.call(lock.sm.status)  # nothing in the status asks the firmware for our address
    finally:
        sys.stdout = old
    text = out.getvalue()
    assert "1 bond(s)" in text and "bonded=1" in text, text

    phone.call(phone.ble.gap_disconnect, hc)
    lock.call(lock.ble.gap_advertise, None)
    w.run(1)
    del phone.events[:]  # the phone stays up: its next results are the reconnection's
    if update:
        from tools.blesim.firmware import get_profile

        lock.board.profile = get_profile("esp32")
        monkeypatch.setattr(bond_mod, "_fw_id", lambda: FW_NEW)
    lock.power_cycle()  # a new BondStore read from flash, a new manager: active(True) again
    private_mode(lock)  # the firmware forgot addr_mode=2 with the RAM
    rpa2 = scan_for(w, phone, lock)
    assert rpa2[0] == 1 and kind(*rpa2) == RPA and rpa2 != rpa1  # a new private address
    return rpa1, rpa2, irk


@pytest.mark.parametrize("update", [False, True], ids=["power-cycle", "firmware-update"])
def test_bond_survives_power_cycle_behind_a_new_rpa(monkeypatch, update):
    w = World(seed=11, profile="esp32-v1.23" if update else "esp32")
    try:
        if update:  # v1.23: 80-byte blobs; after the update: 88 (the store converts them)
            monkeypatch.setattr(bond_mod, "_fw_id", lambda: FW_OLD)
        lock = Dev(w, "lock")
        phone = Dev(w, "phone")
        rpa1, rpa2, irk = bond_then_reboot(w, lock, phone, monkeypatch, update)
        assert lock.store.irk() == irk  # read back from flash
        assert lock.store.problems == []
        assert resolves(irk, rpa2[1])  # NimBLE took our IRK back from the store
        assert [b.addr for b in lock.store.bonds()] == [phone.board.public_addr]
        # The phone recognises the lock behind the new address: in the scan (its own
        # resolver) and in the connection (the firmware's resolving list).
        bond = Resolver(phone.store).identify(*rpa2)
        assert bond is not None and bond.addr == lock.board.public_addr
        t_boot = w.now
        hc, hl = connect_to(w, phone, lock, rpa2)
        assert phone.sm.state(hc).addr == lock.board.public_addr
        assert phone.call(phone.sm.pair, hc)
        assert both_done(w, phone, lock)
        for d in (phone, lock):
            r = d.result()
            assert d.names() == ["AUTH_CMPL"], d.events  # no new bond
            assert r.success and r.reencrypt and r.bonded == 1 and r.key_size == 16 and r.sc == 1
        assert not [r for r in w.trace.records if r.kind == "pdu" and r.name == "PAIRING_REQUEST" and r.t >= t_boot]
        assert ltk_of(phone) == ltk_of(lock)
    finally:
        w.close()


def test_without_our_irk_the_phone_loses_the_lock():
    """The control: the same story with a store that drops our IRK. NimBLE makes a new one at
    the reboot, the new RPA resolves with none the phone holds, and the phone connects to a
    stranger: no re-encryption with the stored bond."""
    w = World(seed=11)
    try:
        lock = Dev(w, "lock", store_cls=ForgetfulStore)
        phone = Dev(w, "phone")
        rpa1, rpa2, irk = bond_then_reboot(w, lock, phone)
        assert not resolves(irk, rpa2[1])  # another IRK made this address
        assert lock.store.problems == ["our IRK is new: 1 bond(s) made before it"]
        assert Resolver(phone.store).identify(*rpa2) is None
        hc, hl = connect_to(w, phone, lock, rpa2)
        st = phone.sm.state(hc)
        assert (st.addr_type, st.addr) == rpa2  # not resolved to the lock's identity
        phone.call(phone.sm.pair, hc)
        w.run_until(lambda: any(e[0] == "AUTH_CMPL" for e in phone.events), 40)
        # The phone pairs afresh with the "stranger", which distributes the identity of a device
        # it has a bond with: a blesmp phone takes that for a spoofer (Just Works outside the
        # pairing window) and keeps the old bond; a real phone shows a new device or asks the
        # user to forget the old one. Either way the lock must be paired again.
        r = phone.result()
        assert not r.success and not r.reencrypt and r.reason == C.WEAKER_THAN_BOND, phone.events
        (b,) = phone.store.bonds()
        assert b.irk == irk and not resolves(b.irk, rpa2[1])
    finally:
        w.close()
