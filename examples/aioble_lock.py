# A lock written with aioble for GATT and blesmp for security. aioble is micropython-lib's
# asyncio BLE library (on a board: mpremote mip install aioble); blesmp adds what aioble lacks:
# the bond store in flash, passkey prompts, failure reasons and per-characteristic levels.
#   BLESIM_PATH=<micropython-lib>/micropython/bluetooth/aioble \
#       python -m tools.blesim.run examples/aioble_lock.py phone:examples/aioble_phone.py
import asyncio

import aioble
import bluetooth

from blesmp.aio import SecurityManager
from blesmp.const import AUTH_CMPL_EVT, IO_DISPLAY_ONLY, LEVEL_MITM, PASSKEY_NOTIF_EVT, reason_name

LOCK_SERVICE = bluetooth.UUID("5ec0c000-b1e5-4d50-9000-00000000c000")
LOCK_STATE = bluetooth.UUID("5ec0c001-b1e5-4d50-9000-00000000c000")


def on_event(event, conn, value):
    if event == PASSKEY_NOTIF_EVT:
        print("PASSKEY %06d" % value)
    elif event == AUTH_CMPL_EVT:
        print("PAIRED level=%d" % value.level if value.success else "PAIRING FAILED " + reason_name(value.reason))


async def serve(state):
    # Writes below level 3 never get here (stock firmware has stored the value already: the
    # manager keeps the write from the app, which resets it): the lock acts on paired users only.
    while True:
        _, data = await state.written()
        if data in (b"locked", b"unlocked"):
            print("LOCK STATE " + data.decode())
        else:
            state.write(b"locked")


async def advertise():
    while True:
        # name as bytes: aioble appends it to bytes, which a str does only on MicroPython
        conn = await aioble.advertise(100_000, name=b"blesmp-lock")
        print("CONNECTED")
        await conn.disconnected(timeout_ms=None)
        print("DISCONNECTED")


async def main():
    # blesmp first: it installs the bond store, chains aioble's IRQ handler (aioble was imported
    # first) and activates the radio, so NimBLE reloads the bonded peers' keys.
    sm = SecurityManager(aioble.core.ble, io=IO_DISPLAY_ONLY, mitm=True, callback=on_event)
    sm.start()
    service = aioble.Service(LOCK_SERVICE)
    state = aioble.Characteristic(service, LOCK_STATE, read=True, write=True, capture=True)
    aioble.register_services(service)
    state.write(b"locked")
    sm.protect(state, LEVEL_MITM)  # the aioble Characteristic itself: reads below level 3 refused
    print("READY")
    await asyncio.gather(serve(state), advertise())


asyncio.run(main())
