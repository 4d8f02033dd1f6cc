# A central written with asyncio and blesmp.aio (lib/ unmodified): find the lock, connect,
# `await sm.pair(conn)`, report the AUTH_CMPL result, read, disconnect. Runs as a board
# process on MicroPython or CPython.
import asyncio
import os

import bluetooth

from blesmp.aio import SecurityManager
from blesmp.store import BondStore

ev = {}


def irq(event, data):
    if event == 5 and b"lock" in bytes(data[4]) and "found" not in ev:
        ev["found"] = (data[0], bytes(data[1]))
        bluetooth.BLE().gap_scan(None)
    elif event == 7:
        ev["conn"] = data[0]
    elif event == 8:
        ev["gone"] = 1


async def until(key):
    for _ in range(1000):
        if key in ev:
            return ev[key]
        await asyncio.sleep_ms(10)
    raise OSError("timeout " + key)


async def main():
    ble = bluetooth.BLE()
    sm = SecurityManager(ble, store=BondStore("bonds.db"), handler=irq)
    sm.start()
    ble.gap_scan(5000, 30000, 30000)
    addr_type, addr = await until("found")
    ble.gap_connect(addr_type, addr)
    conn = await until("conn")
    r = await sm.pair(conn)
    print("paired", r.success, "level", r.level, "bonded", r.bonded, "key_size", r.key_size)
    print("bonds", len(sm.store.bonds()), "file", "bonds.db" in os.listdir("."))
    # The central's AUTH_CMPL comes when it has sent its keys, before the peripheral has
    # them: give the link a moment, or the peripheral loses the pairing (no bond there).
    await asyncio.sleep_ms(200)
    ble.gap_disconnect(conn)
    await until("gone")
    print("bye")


asyncio.run(main())
