# ruff: noqa: F821 (multitest and the SET globals are injected by the runner)
# aioble, unchanged: its own pair() (Just Works, LE Secure Connections, bonding) between two
# boards, with aioble's JSON secret store (ble_secrets.json) answering the firmware's secret
# IRQs on both sides; then a second connection re-encrypts with the stored keys (pair() again:
# the central's firmware finds the bond and encrypts without a new pairing).

import asyncio
import json

import aioble
import bluetooth

SVC = bluetooth.UUID("A5A5A5A5-FFFF-9999-1111-5A5A5A5A5A5A")
CHR = bluetooth.UUID("A5A5A5A5-EEEE-9999-1111-5A5A5A5A5A5A")
TIMEOUT_MS = 5000


def stored():
    """The secret types aioble saved (1 = our keys, 2 = the peer's, 10 = our IRK), and whether
    the keys are the first round's (a re-encryption keeps them, a new pairing replaces them)."""
    with open("ble_secrets.json") as f:
        entries = json.load(f)
    keys = sorted((t, k, v) for t, k, v in entries)
    if not FIRST:
        FIRST.append(keys)
    return sorted(t for t, _k, _v in entries), keys == FIRST[0]


FIRST = []


def state(conn):
    return "encrypted=%d authenticated=%d bonded=%d key_size=%d" % (
        conn.encrypted, conn.authenticated, conn.bonded, conn.key_size)


async def instance0_task():
    service = aioble.Service(SVC)
    aioble.Characteristic(service, CHR, read=True, initial=b"hello")
    aioble.register_services(service)
    multitest.globals(BDADDR=aioble.config("mac"))
    multitest.next()
    for i in range(2):
        conn = await aioble.advertise(20_000, adv_data=b"\x02\x01\x06\x04\xffMPY", timeout_ms=TIMEOUT_MS)
        while not conn.encrypted:
            await asyncio.sleep_ms(10)
        print("secured", i, state(conn))
        await conn.disconnected(timeout_ms=TIMEOUT_MS)
        await asyncio.sleep_ms(100)  # aioble saves the store from micropython.schedule
        print("stored", stored())


def instance0():
    try:
        asyncio.run(instance0_task())
    finally:
        aioble.stop()


async def instance1_task():
    multitest.next()
    for i in range(2):
        conn = await aioble.Device(*BDADDR).connect(timeout_ms=TIMEOUT_MS)
        await conn.pair(bond=True, le_secure=True, mitm=False, timeout_ms=TIMEOUT_MS)
        print("paired", i, state(conn))
        svc = await conn.service(SVC)
        ch = await svc.characteristic(CHR)
        print("read", await ch.read(timeout_ms=TIMEOUT_MS))
        await conn.disconnect(timeout_ms=TIMEOUT_MS)
        await asyncio.sleep_ms(100)
        print("stored", stored())


def instance1():
    try:
        asyncio.run(instance1_task())
    finally:
        aioble.stop()
