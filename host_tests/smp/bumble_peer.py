"""Bumble's SMP (bumble.smp.Manager, PyPI bumble 0.0.236) as an independent peer, driven at the
PDU level without a controller (see /work/shared/reference/bumble-peer.md), joined to our engine
or to another Bumble by an asyncio Air with a PDU trace and a tap.

    run_pair(central, peripheral, tap=None) -> Air     central/peripheral: OurEnd(...) | BumbleEnd(...)

Bumble works LSB-first; every value this module reports is MSB-first, like our engine.
"""

import asyncio
import logging

import tracelog
from bumble import hci, smp, utils
from bumble.core import PhysicalTransport
from bumble.pairing import PairingConfig, PairingDelegate

from tools.smp import (
    DisplayPasskey,
    Failed,
    LtkReply,
    NumericComparison,
    Paired,
    PasskeyRequest,
    Send,
    SmpEngine,
    StartEncryption,
)

logging.getLogger("bumble").setLevel(logging.CRITICAL)

INIT_ADDR = (1, bytes.fromhex("C01122334455"))
RESP_ADDR = (1, bytes.fromhex("D066778899AA"))
_SPIN = 20000  # loop turns without progress before the Air gives up (no wall clock)


def _addr(a):
    t, b = a
    return hci.Address(
        ":".join("%02X" % x for x in b),
        hci.Address.RANDOM_DEVICE_ADDRESS if t else hci.Address.PUBLIC_DEVICE_ADDRESS)


class _User:
    def __init__(self, passkey, typo, accept_nc):
        self.passkey = passkey
        self.typo = typo
        self.accept_nc = accept_nc
        self.displayed = None
        self.compared = None
        self.asked = []


# ------------------------------------------------------------------ Bumble side


class _Connection(utils.EventEmitter):
    EVENT_DISCONNECTION = "disconnection"
    EVENT_CONNECTION_ENCRYPTION_CHANGE = "connection_encryption_change"
    EVENT_CONNECTION_ENCRYPTION_KEY_REFRESH = "connection_encryption_key_refresh"
    EVENT_SECURITY_REQUEST = "security_request"

    def __init__(self, end, role, self_addr, peer_addr):
        super().__init__()
        self.end = end
        self.handle = 0x0040
        self.role = hci.Role.CENTRAL if role == "central" else hci.Role.PERIPHERAL
        self.transport = PhysicalTransport.LE
        self.self_address = _addr(self_addr)
        self.peer_address = _addr(peer_addr)
        self.self_resolvable_address = None
        self.peer_resolvable_address = None
        self.encryption = 0

    @property
    def is_encrypted(self):
        return self.encryption != 0

    def send_l2cap_pdu(self, cid, data):
        self.end.air.transmit(self.end, bytes(data))

    def cancel_on_disconnection(self, awaitable):
        return utils.cancel_on_event(self, self.EVENT_DISCONNECTION, awaitable)

    async def drain(self):
        await self.end.air.drain(self.end)


class _Host:
    def __init__(self, end):
        self.end = end

    async def send_async_command(self, cmd):
        self.send_command_sync(cmd)

    def send_command_sync(self, cmd):
        if isinstance(cmd, hci.HCI_LE_Enable_Encryption_Command):
            key = bytes(cmd.long_term_key)[::-1]
            rand = int.from_bytes(bytes(cmd.random_number), "little")
            self.end.air.request_encryption(self.end, key, cmd.encrypted_diversifier, rand)


class _Device:
    def __init__(self, end, irk, identity):
        self.end = end
        self.host = _Host(end)
        self.irk = irk[::-1]  # Bumble keeps it LSB-first
        self.public_address = hci.Address.ANY
        self.static_address = _addr(identity)
        self.keystore = None

    def on_pairing_start(self, connection):
        pass

    def on_pairing(self, connection, identity_address, keys, sc):
        self.end.on_paired(identity_address, keys, sc)

    def on_pairing_failure(self, connection, reason):
        self.end.on_failed(int(reason))

    async def get_link_key(self, address):
        return None


class _Delegate(PairingDelegate):
    def __init__(self, end, io_cap, init_kd, resp_kd, max_ks):
        super().__init__(io_cap, smp.KeyDistribution(init_kd), smp.KeyDistribution(resp_kd), max_ks)
        self.end = end

    async def generate_passkey(self):
        return self.end.user.passkey

    async def display_number(self, number, digits):
        if self.end.user.compared is None:
            self.end.user.displayed = number
            self.end.air.log("%s displays %06d" % (self.end.name, number))

    async def get_number(self):
        u = self.end.user
        u.asked.append("input")
        other = self.end.air.peer(self.end).user
        for _ in range(_SPIN):
            if other.displayed is not None:
                return (other.displayed + u.typo) % 1000000
            if self.end.io_cap == 2 and self.end.air.peer(self.end).io_cap == 2:
                return (self.end.air.c.user.passkey + u.typo) % 1000000  # both input: agreed number
            await asyncio.sleep(0)
        return None

    async def compare_numbers(self, number, digits):
        u = self.end.user
        u.compared = number
        self.end.air.log("%s compares %06d" % (self.end.name, number))
        if u.accept_nc is not None:
            return u.accept_nc
        other = self.end.air.peer(self.end).user
        for _ in range(_SPIN):
            if other.compared is not None:
                return other.compared == number
            await asyncio.sleep(0)
        return False


class BumbleEnd:
    """One Bumble SMP Manager on a fake connection. Results are MSB-first:
    .keys = {"ltk", "ltk_central", "ltk_peripheral", "ediv_central", "rand_central", "irk", "csrk",
    "identity"} as the peer distributed them, .failure = the reason (int) or None."""

    kind = "bumble"

    def __init__(self, name, role, io_cap=3, sc=True, mitm=False, bonding=True, kd=7, max_ks=16,
                 irk=None, identity=None, passkey=123456, typo=0, accept_nc=None, ecc_private=None):
        self.name = name
        self.role = role
        self.user = _User(passkey, typo, accept_nc)
        self.cfg = (io_cap, sc, mitm, bonding, kd, max_ks)
        self.io_cap = io_cap
        self.irk = irk or bytes.fromhex("00112233445566778899aabbccddeeff")
        self.identity = identity or (1, bytes.fromhex("F0B1B2B3B4B5"))
        self.ecc_private = ecc_private
        self.paired = None
        self.failure = None
        self.air = None

    def attach(self, air, self_addr, peer_addr):
        self.air = air
        self.device = _Device(self, self.irk, self.identity)
        io_cap, sc, mitm, bonding, kd, max_ks = self.cfg
        delegate = _Delegate(self, io_cap, kd, kd, max_ks)
        config = PairingConfig(sc=sc, mitm=mitm, bonding=bonding, delegate=delegate)
        self.manager = smp.Manager(self.device, lambda conn: config)
        if self.ecc_private is not None:
            from bumble.crypto import EccKey

            self.manager._ecc_key = EccKey.from_private_key_bytes(self.ecc_private)
        self.connection = _Connection(self, self.role, self_addr, peer_addr)

    @property
    def done(self):
        return self.paired is not None or self.failure is not None

    def start(self):
        if self.role == "central":
            self.pair_task = asyncio.ensure_future(self._pair())
        else:
            self.manager.request_pairing(self.connection)

    async def _pair(self):
        try:
            await self.manager.pair(self.connection)
        except Exception:  # noqa: BLE001 (the failure is recorded by on_failed)
            pass

    def deliver(self, data):
        try:
            self.manager.on_smp_pdu(self.connection, data)
        except Exception as e:  # noqa: BLE001 (Bumble raises on malformed PDUs; quirk 5)
            self.air.log("%s raised %s: %s" % (self.name, type(e).__name__, e))

    def long_term_key(self, ediv, rand):
        key = self.manager.get_long_term_key(self.connection, rand.to_bytes(8, "little"), ediv)
        return None if key is None else bytes(key)[::-1]

    def encryption_changed(self, ok, key_size):
        self.connection.encryption = 1 if ok else 0
        self.connection.emit(self.connection.EVENT_CONNECTION_ENCRYPTION_CHANGE)

    def security_request(self):
        pass

    def on_paired(self, identity_address, keys, sc):
        def v(k):
            return None if k is None else bytes(k.value)[::-1]

        self.paired = {
            "sc": sc,
            "ltk": v(keys.ltk),
            "ltk_central": v(keys.ltk_central),
            "ltk_peripheral": v(keys.ltk_peripheral),
            "irk": v(keys.irk),
            "csrk": v(keys.csrk),
            "identity": None if identity_address is None else (
                1 if identity_address.is_random else 0, bytes(identity_address)[::-1]),
            "keys": keys,
        }
        self.air.log("%s PAIRED (bumble) sc=%s" % (self.name, sc))

    def on_failed(self, reason):
        if self.failure is None:
            self.failure = reason
        self.air.log("%s FAILED (bumble) 0x%02x" % (self.name, reason))


# ------------------------------------------------------------------ our side


class OurEnd:
    """Our engine on the Air, with a scripted user."""

    kind = "ours"

    def __init__(self, name, role, config, identity=None, passkey=123456, typo=0, accept_nc=None,
                 refuse_passkey=False, ecc_key=None, rng=None):
        import os

        self.name = name
        self.role = role
        self.config = config
        self.io_cap = config.io_cap
        self.identity_obj = identity
        self.user = _User(passkey, typo, accept_nc)
        self.refuse_passkey = refuse_passkey
        self.ecc_key = ecc_key
        self.rng = rng or os.urandom
        self.events = []
        self.pending = []
        self.result = None
        self.failed = None
        self.air = None

    def attach(self, air, self_addr, peer_addr):
        self.air = air
        self.engine = SmpEngine(self.role, self.config, self_addr, peer_addr, identity=self.identity_obj,
                                rng=self.rng, ecc_key=self.ecc_key)

    @property
    def done(self):
        return self.result is not None or self.failed is not None

    def start(self):
        self.handle(self.engine.pair(self.air.now))

    def handle(self, outs):
        for o in outs:
            self.events.append(o)
            t = type(o)
            if t is Send:
                self.air.transmit(self, o.pdu)
            elif t is StartEncryption:
                self.air.request_encryption(self, o.ltk, o.ediv, o.rand)
            elif t is DisplayPasskey:
                self.user.displayed = o.passkey
                self.air.log("%s displays %06d" % (self.name, o.passkey))
            elif t is PasskeyRequest:
                self.user.asked.append("display" if o.display else "input")
                self.pending.append("display" if o.display else "input")
            elif t is NumericComparison:
                self.user.compared = o.number
                self.air.log("%s compares %06d" % (self.name, o.number))
                self.pending.append("nc")
            elif t is Paired:
                self.result = o.result
                self.air.log("%s PAIRED %s sc=%s auth=%s" % (self.name, o.result.method, o.result.sc,
                                                             o.result.authenticated))
            elif t is Failed:
                self.failed = o
                self.air.log("%s FAILED %r" % (self.name, o))

    def user_step(self):
        moved = False
        other = self.air.peer(self).user
        u = self.user
        while self.pending:
            action = self.pending[0]
            if action == "display":
                self.pending.pop(0)
                self.handle(self.engine.passkey(u.passkey, self.air.now))
            elif action == "input":
                if self.refuse_passkey:
                    self.pending.pop(0)
                    self.handle(self.engine.passkey(None, self.air.now))
                    moved = True
                    continue
                shown = other.displayed
                if shown is None and self.config.io_cap == 2 and self.air.peer(self).io_cap == 2:
                    shown = self.air.c.user.passkey  # both input: the users agree on one number
                if shown is None:
                    break
                self.pending.pop(0)
                self.handle(self.engine.passkey((shown + u.typo) % 1000000, self.air.now))
            else:
                if u.accept_nc is None and other.compared is None:
                    break
                self.pending.pop(0)
                accept = u.accept_nc if u.accept_nc is not None else (u.compared == other.compared)
                self.handle(self.engine.confirm(accept, self.air.now))
            moved = True
        return moved

    def deliver(self, data):
        self.handle(self.engine.receive(data, self.air.now))

    def long_term_key(self, ediv, rand):
        reply = self.engine.ltk_request(ediv, rand, self.air.now)
        self.handle([o for o in reply if type(o) is not LtkReply])
        return next((o.ltk for o in reply if type(o) is LtkReply), None)

    def encryption_changed(self, ok, key_size):
        self.handle(self.engine.encryption_changed(ok, key_size, self.air.now))


# ------------------------------------------------------------------ the air


class Air:
    def __init__(self, central, peripheral, tap=None):
        self.c = central
        self.p = peripheral
        self.tap = tap
        self.now = 0.0
        self.queue = []
        self.trace = []
        self.encryptions = []
        tracelog.register(self)
        central.attach(self, INIT_ADDR, RESP_ADDR)
        peripheral.attach(self, RESP_ADDR, INIT_ADDR)

    def peer(self, end):
        return self.p if end is self.c else self.c

    def log(self, text):
        self.trace.append(text)

    def trace_text(self):
        return "\n".join(["PDU trace (%s central %s, %s peripheral %s):" % (
            self.c.kind, self.c.name, self.p.kind, self.p.name)] + self.trace)

    def transmit(self, src, data):
        self.queue.append((src, data))

    def request_encryption(self, central, key, ediv, rand):
        self.queue.append((central, ("enc", key, ediv, rand)))

    async def drain(self, end):
        for _ in range(_SPIN):
            if not any(src is end for src, _ in self.queue):
                return
            await asyncio.sleep(0)

    def _encrypt(self, central, key, ediv, rand):
        p = self.peer(central)
        reply = p.long_term_key(ediv, rand)
        ok = reply is not None and reply == key
        self.encryptions.append((key, reply, ok))
        self.log("link: LE_Enable_Encryption ediv=%d rand=%d key=%s; peripheral LTK reply=%s -> %s" % (
            ediv, rand, key.hex(), reply.hex() if reply else None, "encrypted" if ok else "FAILED"))
        p.encryption_changed(ok, 16)
        central.encryption_changed(ok, 16)

    def _deliver(self, src, item):
        dst = self.peer(src)
        if isinstance(item, tuple):
            self._encrypt(src, *item[1:])
            return
        data = tracelog.tap(self, src, dst, item)
        if data is not None:
            dst.deliver(data)

    async def run(self, settle=200):
        self.c.start()
        idle = 0
        spins = 0
        while spins < _SPIN:
            spins += 1
            if self.queue:
                src, item = self.queue.pop(0)
                self._deliver(src, item)
                idle = 0
                await asyncio.sleep(0)
                continue
            moved = False
            for end in (self.c, self.p):
                if end.kind == "ours" and end.user_step():
                    moved = True
            if moved:
                idle = 0
                continue
            if self.c.done and self.p.done:
                idle += 1
                if idle > settle:  # let Bumble's tasks finish, and catch late PDUs
                    break
            else:
                idle += 1
                if idle > _SPIN // 4:
                    break
            await asyncio.sleep(0)
        for end in (self.c, self.p):
            if end.kind == "bumble":
                end.connection.emit(end.connection.EVENT_DISCONNECTION, 0x13)
        await asyncio.sleep(0)
        return self


def run_pair(central, peripheral, tap=None):
    async def main():
        air = Air(central, peripheral, tap)
        return await air.run()

    return asyncio.run(main())
