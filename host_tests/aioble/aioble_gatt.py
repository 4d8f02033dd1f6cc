# ruff: noqa: F821 (multitest and the SET globals are injected by the runner)
# aioble, unchanged, GATT in both roles: read, write (with and without response), notify,
# indicate (with the confirmation), a descriptor (read and write), a buffered characteristic
# that appends writes, and an MTU exchange. instance0 = aioble server, instance1 = aioble client.

import asyncio

import aioble
import bluetooth

SVC = bluetooth.UUID("A5A5A5A5-FFFF-9999-1111-5A5A5A5A5A5A")
CHR = bluetooth.UUID("A5A5A5A5-EEEE-9999-1111-5A5A5A5A5A5A")
BUF = bluetooth.UUID("A5A5A5A5-DDDD-9999-1111-5A5A5A5A5A5A")
DSC = bluetooth.UUID("A5A5A5A5-CCCC-9999-1111-5A5A5A5A5A5A")
TIMEOUT_MS = 5000


async def instance0_task():
    service = aioble.Service(SVC)
    ch = aioble.Characteristic(service, CHR, read=True, write=True, write_no_response=True, notify=True,
                               indicate=True, initial=b"initial")
    dsc = aioble.Descriptor(ch, DSC, read=True, write=True, initial=b"dsc0")
    buf = aioble.BufferedCharacteristic(service, BUF, read=True, write=True, max_len=40, append=True)
    aioble.register_services(service)
    multitest.globals(BDADDR=aioble.config("mac"))
    multitest.next()
    conn = await aioble.advertise(20_000, adv_data=b"\x02\x01\x06\x04\xffMPY", timeout_ms=TIMEOUT_MS)
    print("connected")
    await ch.written(timeout_ms=TIMEOUT_MS)
    print("written", ch.read())
    await ch.written(timeout_ms=TIMEOUT_MS)
    print("written without response", ch.read())
    ch.notify(conn, b"notify-1")
    ch.write(b"from-write", send_update=True)
    await ch.indicate(conn, b"indicate-1", timeout_ms=TIMEOUT_MS)
    print("indication confirmed")
    await dsc.written(timeout_ms=TIMEOUT_MS)
    print("descriptor written", dsc.read())
    for _ in range(3):
        await buf.written(timeout_ms=TIMEOUT_MS)
    print("buffered", buf.read())
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
    print("mtu", await conn.exchange_mtu(100, timeout_ms=TIMEOUT_MS))
    svc = await conn.service(SVC)
    ch = await svc.characteristic(CHR)
    buf = await svc.characteristic(BUF)
    print("characteristics", ch.uuid, buf.uuid)
    print("read", await ch.read(timeout_ms=TIMEOUT_MS))
    await ch.subscribe(notify=True)
    await ch.write(b"with-response", response=True, timeout_ms=TIMEOUT_MS)
    await asyncio.sleep_ms(100)
    await ch.write(b"no-response", response=False)
    print("notified", await ch.notified(timeout_ms=TIMEOUT_MS))
    print("notified", await ch.notified(timeout_ms=TIMEOUT_MS))
    await ch.subscribe(notify=False, indicate=True)
    print("indicated", await ch.indicated(timeout_ms=TIMEOUT_MS))
    dsc = await ch.descriptor(DSC)
    print("descriptor", dsc.uuid, await dsc.read(timeout_ms=TIMEOUT_MS))
    await dsc.write(b"dsc1", response=True, timeout_ms=TIMEOUT_MS)
    for part in (b"one,", b"two,", b"three"):
        await buf.write(part, response=True, timeout_ms=TIMEOUT_MS)
    print("buffered read", await buf.read(timeout_ms=TIMEOUT_MS))
    await conn.disconnect(timeout_ms=TIMEOUT_MS)
    print("disconnected")


def instance1():
    try:
        asyncio.run(instance1_task())
    finally:
        aioble.stop()
