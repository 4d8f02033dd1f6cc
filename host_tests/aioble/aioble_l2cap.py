# ruff: noqa: F821 (multitest and the SET globals are injected by the runner)
# aioble, unchanged, asks for an L2CAP connection-oriented channel on ESP32 firmware: ESP32 builds
# leave MICROPY_PY_BLUETOOTH_ENABLE_L2CAP_CHANNELS at its default 0 (extmod/modbluetooth.h; only
# the unix, stm32 and rp2 ports turn it on), so BLE has no l2cap_* methods and aioble's
# l2cap_accept / l2cap_connect fail with AttributeError naming the missing method. The GATT
# connection itself is unaffected.

import asyncio

import aioble
import bluetooth

TIMEOUT_MS = 5000
PSM = 0x0080


async def instance0_task():
    multitest.globals(BDADDR=aioble.config("mac"))
    multitest.next()
    print("has l2cap_listen", hasattr(bluetooth.BLE(), "l2cap_listen"))
    conn = await aioble.advertise(20_000, adv_data=b"\x02\x01\x06\x04\xffMPY", timeout_ms=TIMEOUT_MS)
    try:
        await conn.l2cap_accept(PSM, 128, timeout_ms=TIMEOUT_MS)
    except AttributeError as e:
        print("l2cap_accept:", type(e).__name__, e)
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
    await asyncio.sleep_ms(200)
    try:
        await conn.l2cap_connect(PSM, 128, timeout_ms=TIMEOUT_MS)
    except AttributeError as e:
        print("l2cap_connect:", type(e).__name__, e)
    print("still connected", conn.is_connected())
    await conn.disconnect(timeout_ms=TIMEOUT_MS)
    print("disconnected")


def instance1():
    try:
        asyncio.run(instance1_task())
    finally:
        aioble.stop()
