"""A phone on the radios' link: a Bumble `Device` (Bumble's own host and SMP, not NimBLE) for
flows where an ESP32 cannot be the central that gets prompts (stock firmware never hands a
central passkey prompts, micropython#17805). Its IO capability, bonding, SC and MITM are
settable: KeyboardOnly, DisplayYesNo, legacy-only, bonding on or off.

It runs on the radios' asyncio loop. `visit()` does what the demo's phone does on the
simulator (tools/demo_phone.py): connect to the lock, read the public battery level, pair
(the user types the passkey the lock shows), read the level-3 lock state, leave; it reports
in the same lines (PROMPT, TYPED, LOCK STATE, DONE).
"""

import asyncio

from bumble import hci
from bumble.att import ATT_Error
from bumble.core import UUID
from bumble.device import Device, Peer
from bumble.pairing import PairingConfig, PairingDelegate

LOCK_STATE = UUID("5ec0a001-b1e5-4d50-9000-00000000a000")
BATTERY_LEVEL = UUID.from_16_bits(0x2A19)
IO = {"keyboard": PairingDelegate.KEYBOARD_INPUT_ONLY, "display_yesno": PairingDelegate.DISPLAY_OUTPUT_AND_YES_NO_INPUT,
      "noio": PairingDelegate.NO_OUTPUT_NO_INPUT, "display": PairingDelegate.DISPLAY_OUTPUT_ONLY,
      "keyboard_display": PairingDelegate.DISPLAY_OUTPUT_AND_KEYBOARD_INPUT}
ATT_ERRORS = {0x05: "insufficient authentication (the lock wants level 3: a passkey pairing)",
              0x0F: "insufficient encryption", 0x08: "insufficient authorization", 0x0C: "encryption key too short"}


def _public(addr):
    h = addr.replace(":", "")
    return hci.Address(":".join(h[i:i + 2] for i in range(0, 12, 2)).upper(), hci.Address.PUBLIC_DEVICE_ADDRESS)


class _User(PairingDelegate):
    def __init__(self, phone, io):
        super().__init__(io_capability=IO[io])
        self.phone = phone

    async def get_number(self):
        self.phone.say("PROMPT enter passkey shown on the lock")
        line = (await self.phone.typed.get()).strip()
        if not line.isdigit():
            self.phone.say("TYPED nothing (cancel)")
            return None
        self.phone.say("TYPED %06d" % int(line))
        return int(line)

    async def compare_numbers(self, number, digits):
        self.phone.say("PROMPT confirm %06d" % number)
        line = (await self.phone.typed.get()).strip().lower()
        self.phone.say("ANSWERED %s" % line)
        return line in ("y", "yes", "1")

    async def display_number(self, number, digits):
        self.phone.say("PASSKEY %06d  (type it on the lock)" % number)


class Phone:
    """Create and use on the radios' loop (Radios.call / asyncio.run_coroutine_threadsafe)."""

    def __init__(self, radios, name="phone", address="5c0a0b0c0d0e", io="keyboard", bonding=True, sc=True,
                 mitm=True, say=print):
        self.name = name
        self.say = say
        self.address = _public(address)
        self.config = dict(io=io, bonding=bonding, sc=sc, mitm=mitm)
        self.radio = radios.controller(name, address)
        self.typed = None
        self.device = None

    async def power_on(self):
        self.typed = asyncio.Queue()
        self.device = Device.with_hci(self.name, self.address, self.radio, self.radio)
        c = self.config
        self.device.pairing_config_factory = lambda conn: PairingConfig(
            sc=c["sc"], mitm=c["mitm"], bonding=c["bonding"], delegate=_User(self, c["io"]))
        await self.device.power_on()

    def type(self, text):
        """The user types a line (thread-safe through Radios.call)."""
        self.typed.put_nowait(text)

    async def visit(self, lock_address, timeout=20):
        """One visit; returns True if the lock state could be read."""
        conn = await asyncio.wait_for(self.device.connect(_public(lock_address),
                                                          own_address_type=hci.OwnAddressType.PUBLIC), timeout)
        self.say("CONNECTED conn=%d lock=%s" % (conn.handle, conn.peer_address))
        peer = Peer(conn)
        await peer.discover_services()
        await peer.discover_characteristics()
        battery = peer.get_characteristics_by_uuid(BATTERY_LEVEL)
        if battery:
            v = await peer.read_value(battery[0])
            self.say("BATTERY %d%%" % v[0])
        try:
            await conn.pair()
            self.say("SECURED encrypted=%d key_size=%d authenticated=%d" % (
                conn.is_encrypted, conn.encryption_key_size, int(conn.authenticated)))
        except Exception as e:
            self.say("PAIRING FAILED %s" % (getattr(e, "error_name", None) or e))
        ok = False
        state = peer.get_characteristics_by_uuid(LOCK_STATE)
        try:
            v = await peer.read_value(state[0])
            self.say("LOCK STATE %s" % bytes(v).decode())
            ok = True
        except ATT_Error as e:
            self.say("LOCK STATE refused: %s" % ATT_ERRORS.get(e.error_code, e.error_code))
        except Exception as e:  # the lock dropped the link after a failed pairing
            self.say("LOCK STATE refused: %s" % (type(e).__name__,))
        if conn.handle in self.device.connections:
            await conn.disconnect()
        self.say("DISCONNECTED")
        self.say("DONE")
        return ok
