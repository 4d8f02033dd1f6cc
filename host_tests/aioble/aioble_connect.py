# ruff: noqa: F821 (multitest and the SET globals are injected by the runner)
# aioble, unchanged, on two simulated boards: the peripheral advertises with a name (aioble
# builds the advertising data; the name is bytes: CPython cannot add a str to bytes as
# MicroPython does), the central finds it with aioble.scan, connects, and disconnects; then the
# central connects again and this time the peripheral disconnects.

import asyncio

import aioble

TIMEOUT_MS = 5000


async def instance0_task():
    multitest.globals(BDADDR=aioble.config("mac"))
    multitest.next()
    for who in ("central", "peripheral"):
        conn = await aioble.advertise(20_000, name=b"MPY-aioble", timeout_ms=TIMEOUT_MS)
        print("connected", conn.is_connected())
        if who == "peripheral":
            await conn.disconnect(timeout_ms=TIMEOUT_MS)
        else:
            await conn.disconnected(timeout_ms=TIMEOUT_MS)
        print("disconnected by", who, conn.is_connected())


def instance0():
    try:
        asyncio.run(instance0_task())
    finally:
        aioble.stop()


async def instance1_task():
    multitest.next()
    found = None
    async with aioble.scan(5000, interval_us=30000, window_us=30000, active=True) as scanner:
        async for result in scanner:
            if result.name() == "MPY-aioble":
                found = result
                break
    print("found", found.name(), found.device.addr == BDADDR[1])
    for who in ("central", "peripheral"):
        conn = await found.device.connect(timeout_ms=TIMEOUT_MS)
        print("connected", conn.is_connected())
        if who == "central":
            await conn.disconnect(timeout_ms=TIMEOUT_MS)
        else:
            await conn.disconnected(timeout_ms=TIMEOUT_MS)
        print("disconnected by", who, conn.is_connected())


def instance1():
    try:
        asyncio.run(instance1_task())
    finally:
        aioble.stop()
