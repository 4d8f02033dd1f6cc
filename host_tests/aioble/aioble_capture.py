# ruff: noqa: F821 (multitest and the SET globals are injected by the runner)
# aioble, unchanged: write capture (capture=True) keeps every write and its order, across two
# characteristics, even when the client sends them back to back without response; a plain
# characteristic only reports the last value.

import asyncio

import aioble
import bluetooth

SVC = bluetooth.UUID("A5A5A5A5-FFFF-9999-1111-5A5A5A5A5A5A")
CHR1 = bluetooth.UUID("A5A5A5A5-EEEE-9999-1111-5A5A5A5A5A5A")
CHR2 = bluetooth.UUID("A5A5A5A5-DDDD-9999-1111-5A5A5A5A5A5A")
CHR3 = bluetooth.UUID("A5A5A5A5-CCCC-9999-1111-5A5A5A5A5A5A")
TIMEOUT_MS = 5000
N = 10


async def instance0_task():
    service = aioble.Service(SVC)
    c1 = aioble.Characteristic(service, CHR1, write_no_response=True, capture=True)
    c2 = aioble.Characteristic(service, CHR2, write_no_response=True, capture=True)
    plain = aioble.Characteristic(service, CHR3, write=True, write_no_response=True)
    aioble.register_services(service)
    multitest.globals(BDADDR=aioble.config("mac"))
    multitest.next()
    conn = await aioble.advertise(20_000, adv_data=b"\x02\x01\x06\x04\xffMPY", timeout_ms=TIMEOUT_MS)
    print("connected")
    seen = []
    for _ in range(N):
        who, data = await c1.written(timeout_ms=TIMEOUT_MS)
        seen.append(data)
        who, data = await c2.written(timeout_ms=TIMEOUT_MS)
        seen.append(data)
    print("same connection", who is conn)
    print("captured", b" ".join(seen))
    while plain.read() != b"last":  # without capture, a write may overwrite an unread one
        await plain.written(timeout_ms=TIMEOUT_MS)
    print("plain", plain.read())
    await conn.disconnected(timeout_ms=TIMEOUT_MS)
    print("disconnected")


def instance0():
    try:
        asyncio.run(instance0_task())
    finally:
        aioble.stop()


async def instance1_task():
    multitest.next()
    conn = await aioble.Device(*BDADDR).connect(timeout_ms=TIMEOUT_MS)
    print("connected")
    svc = await conn.service(SVC)
    c1 = await svc.characteristic(CHR1)
    c2 = await svc.characteristic(CHR2)
    plain = await svc.characteristic(CHR3)
    for i in range(N):
        await c1.write(b"a%d" % i)
        await c2.write(b"b%d" % i)
    for i in range(3):
        await plain.write(b"p%d" % i)
    await plain.write(b"last", response=True, timeout_ms=TIMEOUT_MS)
    await asyncio.sleep_ms(500)
    await conn.disconnect(timeout_ms=TIMEOUT_MS)
    print("disconnected")


def instance1():
    try:
        asyncio.run(instance1_task())
    finally:
        aioble.stop()
