# ruff: noqa: F821 (multitest and the SET globals are injected by the runner)
# aioble, unchanged: aioble.stop() (BLE.active(False)) with a peer connected ends the link; both
# sides see the disconnection, and the stack starts again for the next round. Three rounds: the
# peripheral stops twice (when the central asks it to, by a write), then the central stops.

import asyncio

import aioble
import bluetooth

SVC = bluetooth.UUID("A5A5A5A5-FFFF-9999-1111-5A5A5A5A5A5A")
CHR = bluetooth.UUID("A5A5A5A5-EEEE-9999-1111-5A5A5A5A5A5A")
TIMEOUT_MS = 5000
ROUNDS = ("peripheral", "peripheral", "central")


def register():
    service = aioble.Service(SVC)
    ch = aioble.Characteristic(service, CHR, read=True, write=True)
    aioble.register_services(service)
    return ch


async def instance0_task():
    ch = register()
    multitest.globals(BDADDR=aioble.config("mac"))
    multitest.next()
    for i, who in enumerate(ROUNDS):
        ch.write(b"round %d" % i)
        conn = await aioble.advertise(20_000, adv_data=b"\x02\x01\x06\x04\xffMPY", timeout_ms=TIMEOUT_MS)
        print("connected", i)
        if who == "peripheral":
            await ch.written(timeout_ms=TIMEOUT_MS)
            await asyncio.sleep_ms(100)  # the write response on its way
            aioble.stop()  # the disconnect IRQ arrives inside (ESP32)
            await conn.disconnected(timeout_ms=TIMEOUT_MS)
            print("stopped", conn.is_connected())
            ch = register()
        else:
            await conn.disconnected(timeout_ms=TIMEOUT_MS)
            print("disconnected", conn.is_connected())


def instance0():
    try:
        asyncio.run(instance0_task())
    finally:
        aioble.stop()


async def instance1_task():
    multitest.next()
    for who in ROUNDS:
        conn = await aioble.Device(*BDADDR).connect(timeout_ms=TIMEOUT_MS)
        svc = await conn.service(SVC)
        ch = await svc.characteristic(CHR)
        print("read", await ch.read(timeout_ms=TIMEOUT_MS))
        if who == "peripheral":
            await ch.write(b"stop", response=True, timeout_ms=TIMEOUT_MS)
            await conn.disconnected(timeout_ms=TIMEOUT_MS)
            print("disconnected", conn.is_connected())
        else:
            aioble.stop()
            await conn.disconnected(timeout_ms=TIMEOUT_MS)
            print("stopped", conn.is_connected())


def instance1():
    try:
        asyncio.run(instance1_task())
    finally:
        aioble.stop()
