"""Simulated boards for the end-to-end hardening tests: our ESP32 (a peripheral running
SecurityManager over a BondStore on its simulated flash) that already holds an authenticated
bond with a "friend" device, and a phone (a central whose firmware forwards prompts, see
host_tests/manager/simkit.py) pairing with it by a chosen method. Faults (link loss, board
reset, flash power loss) can be injected at any SMP PDU or flash operation.

CPython only; used by test_hardening_boards.py and tools/fuzz.py.
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_MANAGER = os.path.join(os.path.dirname(_HERE), "manager")
if _MANAGER not in sys.path:
    sys.path.append(_MANAGER)

from simkit import Dev, Phone, both_done, connect, done  # noqa: E402

from blesmp import const as C  # noqa: E402
from blesmp.store import BondStore  # noqa: E402
from tools.blesim import World  # noqa: E402
from tools.blesim.flash import PowerLoss  # noqa: E402

SMP_CID = 6

# method -> (our ESP32's SecurityManager kwargs, the phone's kwargs)
METHODS = {
    "just_works": ({"io": C.IO_NO_INPUT_OUTPUT, "min_key_size": 16}, {"io": C.IO_NO_INPUT_OUTPUT}),
    "passkey_esp32_displays": ({"io": C.IO_DISPLAY_ONLY, "mitm": True}, {"io": C.IO_KEYBOARD_ONLY, "mitm": True}),
    "passkey_esp32_types": ({"io": C.IO_KEYBOARD_ONLY, "mitm": True}, {"io": C.IO_DISPLAY_ONLY, "mitm": True}),
    "numeric_comparison": ({"io": C.IO_DISPLAY_YESNO, "mitm": True}, {"io": C.IO_DISPLAY_YESNO, "mitm": True}),
    "legacy_just_works": ({"io": C.IO_NO_INPUT_OUTPUT, "sc": False}, {"io": C.IO_NO_INPUT_OUTPUT, "sc": False}),
}


class EspDev(Dev):
    """Our ESP32. Finding F3 (SECURITY.md): SecurityManager._irq catches BaseException, so the
    simulated flash's PowerLoss (a BaseException meaning "the CPU stopped") is swallowed and the
    simulated board runs on with its flash off. A real power cut stops the CPU whatever Python
    does, so this rig restores that: after each IRQ, if the board's flash lost power, the
    power cut propagates to the firmware model (which powers the board off)."""

    def boot(self):
        Dev.boot(self)
        ble = self.board.ble
        inner = ble._handler
        fs = self.board.fs
        if inner is None or getattr(inner, "_power_model", False):
            return

        def handler(event, data):
            r = inner(event, data)
            if not fs.powered:
                raise PowerLoss("power cut during IRQ %r (swallowed by the handler)" % (event,))
            return r

        handler._power_model = True
        ble._handler = handler


def bond_tuple(b):
    return (b.addr_type, bytes(b.addr), b.ltk, b.irk, b.key_size, bool(b.authenticated), b.sc)


class Rig:
    """One world: `esp` (ours), `friend` (bonded before, then switched off), `phone`."""

    def __init__(self, seed, method="numeric_comparison", esp_kw=None, phone_kw=None, friend=True):
        self.w = World(seed=seed, trace=False)
        self.method = method
        ekw, pkw = METHODS[method]
        ekw = dict(ekw, **(esp_kw or {}))
        pkw = dict(pkw, **(phone_kw or {}))
        self.esp = EspDev(self.w, "esp32", **ekw)
        self.shown = {}
        self.asymmetric = 0  # recoveries that needed "forget the device" on the phone
        self._answer(self.esp)
        self.friend_bond = None
        if friend:
            f = Phone(self.w, "friend", io=C.IO_DISPLAY_YESNO, mitm=True)
            self._answer(f)
            hc, _hp = connect(self.w, f, self.esp)
            f.call(f.sm.pair, hc)
            assert both_done(self.w, f, self.esp), "friend bonding did not finish"
            bonds = self.esp.store.bonds()
            assert len(bonds) == 1, bonds
            self.friend_bond = bond_tuple(bonds[0])
            f.call(f.ble.gap_disconnect, hc)
            self.w.run(1.0)
            f.board.power_off()
            self.friend = f
            self.esp.events.clear()
        self.phone = Phone(self.w, "phone", **pkw)
        self._answer(self.phone)

    def close(self):
        self.w.close()

    # -------------------------------------------------------------- prompts
    def _answer(self, dev):
        rig = self

        def notif(d, conn, v):
            rig.shown[d.board.name] = v

        def req(d, conn, v):
            rig._type(d, conn, d.gen)

        def nc(d, conn, v):
            d.sm.confirm_reply(conn, True)

        dev.answers["PASSKEY_NOTIF"] = notif
        dev.answers["PASSKEY_REQ"] = req
        dev.answers["NC_REQ"] = nc

    def _type(self, d, conn, gen):
        if gen != d.gen or not d.board.powered:
            return
        other = [v for k, v in self.shown.items() if k != d.board.name]
        if not other:
            self.w.schedule(0.2, self._type, d, conn, gen)
            return
        d.call(d.sm.passkey_reply, conn, True, other[-1])

    # -------------------------------------------------------------- actions
    def connect(self):
        self.shown = {}
        self.hc, self.hp = connect(self.w, self.phone, self.esp)
        return self.hc

    def pair(self):
        self.phone.events.clear()
        self.esp.events.clear()
        self.phone.call(self.phone.sm.pair, self.hc)

    def settle(self, seconds=45.0):
        both_done(self.w, self.esp, self.phone, seconds)

    def pair_and_settle(self):
        self.connect()
        self.pair()
        self.settle()

    def pair_under_injection(self, plan, from_phone):
        """A pairing while plan [(seconds, raw SMP PDU)] is sent into its link (L2CAP CID 6) from
        the phone's radio (from_phone) or the esp's, then settled."""
        self.connect()
        link = self.link()
        sender = self.phone.board if from_phone else self.esp.board
        for t, data in plan:
            self.w.schedule(t, self.w.air.send, link, sender, 6, data)
        self.pair()
        self.settle()

    def disconnect_all(self):
        for d in (self.phone, self.esp):
            if d.board.powered:
                for link in list(d.sm.connections()):
                    d.call(d.ble.gap_disconnect, link.handle)
        self.w.run(2.0)

    def link(self):
        for link in self.w.air.links:
            names = {link.central.name, link.peripheral.name}
            if names == {"phone", "esp32"}:
                return link
        return None

    # -------------------------------------------------------------- checks
    def handler_alive(self, dev):
        """The manager's IRQ handler is still installed (an escaped exception removes it)."""
        return (not dev.board.powered) or dev.board.ble._handler is not None

    def reload_bonds(self):
        """The bonds a freshly booted store reads from the ESP32's flash."""
        st = BondStore(fs=self.esp.board.fs)
        return st, [bond_tuple(b) for b in st.bonds()]

    def friend_intact(self):
        if self.friend_bond is None:
            return True
        _st, bonds = self.reload_bonds()
        live = [bond_tuple(b) for b in self.esp.store.bonds()] if self.esp.board.powered else bonds
        return self.friend_bond in bonds and self.friend_bond in live

    def phone_key_consistent(self):
        """LE SC: if both sides hold a bond for each other, the LTKs agree (no half-replaced
        bond). Legacy bonds hold each side's own distributed LTK: checked by reconnecting."""
        mine = [b for b in self.esp.store.bonds() if b.addr == self.phone.board.public_addr]
        theirs = [b for b in self.phone.store.bonds() if b.addr == self.esp.board.public_addr]
        if mine and theirs and mine[0].sc and theirs[0].sc:
            return mine[0].ltk == theirs[0].ltk
        return True

    def reconnect_encrypts(self):
        """The phone reconnects and asks for security: the esp's AuthResult (re-encryption with
        the stored bond if both kept it, else a new pairing)."""
        self.disconnect_all()
        self.w.run(1.0)
        self.connect()
        self.pair()
        self.settle()
        res = [e[2] for e in self.esp.events if e[0] == "AUTH_CMPL"]
        return res[-1] if res else None

    def friend_returns(self):
        """The bonded friend (powered off during an attack) comes back, reconnects and asks for
        security: the esp's AuthResult (a re-encryption if the attack left its bond working)."""
        self.friend.board.power_on()
        self.friend.boot()
        self.esp.events.clear()
        hc, _hp = connect(self.w, self.friend, self.esp)
        self.friend.call(self.friend.sm.pair, hc)
        self.w.run_until(lambda: done(self.esp)(), 45)
        return self.esp.result()

    def revive(self):
        """Power back / re-boot whichever board is down; reboots re-create the manager."""
        for d in (self.esp, self.phone):
            if not d.board.powered:
                d.board.power_on()
                d.boot()
            elif d.board.ble._handler is None:
                d.boot()

    def recover(self):
        """After a fault: wait out timers and back-off, then the phone pairs again. Returns the
        esp's AuthResult of that pairing."""
        self.revive()
        self.disconnect_all()
        self.w.run(140.0)
        self.revive()
        self.connect()
        self.pair()
        self.settle()
        res = [e[2] for e in self.esp.events if e[0] == "AUTH_CMPL"]
        res = res[-1] if res else None
        if res is not None and not res.success and res.reason == C.KEY_MISSING:
            # SMP has no final acknowledgement: when the link drops right after the central sent
            # its last keys, the central keeps a bond the peripheral never completed. The esp
            # reports KEY_MISSING (and keeps its other bonds); the user forgets the device on
            # the phone and pairs again, which must work.
            self.asymmetric += 1
            self.disconnect_all()
            self.phone.call(self.phone.sm.remove_bond_device, self.esp.board.addr_type, self.esp.board.public_addr)
            self.connect()
            self.pair()
            self.settle()
            res = [e[2] for e in self.esp.events if e[0] == "AUTH_CMPL"]
            res = res[-1] if res else None
        return res


def count_smp(rig, action, phase_pdus=None):
    """Wraps the air so every SMP PDU delivery is counted; `action(n, link, sender, payload)`
    runs before the n-th delivery and returns True to drop that PDU."""
    air = rig.w.air
    orig = air._deliver
    state = {"n": 0}

    def deliver(link, sender, cid, payload):
        if cid == SMP_CID:
            state["n"] += 1
            if phase_pdus is not None:
                phase_pdus.append(bytes(payload))
            if action is not None and action(state["n"], link, sender, payload):
                return None
        return orig(link, sender, cid, payload)

    air._deliver = deliver
    return state
