# ruff: noqa: F821 (multitest and the SET globals are injected by the runner)
# A lock written with aioble for GATT and blesmp for security (blesmp.aio, unchanged), against
# a central written only with aioble, which pairs with aioble's own pair(). The lock's secret
# characteristic is protected with sm.protect(): read before pairing -> refused with an ATT
# error; after pairing -> served; the bond is in the lock's BondStore; a reconnection
# re-encrypts with it (no new pairing on either side).

import asyncio
import json

import aioble
import bluetooth

SVC = bluetooth.UUID("A5A5A5A5-FFFF-9999-1111-5A5A5A5A5A5A")
SECRET = bluetooth.UUID("A5A5A5A5-EEEE-9999-1111-5A5A5A5A5A5A")
TIMEOUT_MS = 5000


async def instance0_task():
    from blesmp import const as C
    from blesmp.aio import SecurityManager
    from blesmp.store import BondStore

    results = []
    # aioble is imported first: blesmp takes the IRQ and chains aioble's handler; the secret
    # store, passkey actions and AUTH_CMPL stay with blesmp
    sm = SecurityManager(bluetooth.BLE(), store=BondStore("bonds.db"),
                         callback=lambda ev, conn, v: results.append(v) if ev == C.AUTH_CMPL_EVT else None)
    sm.start()
    service = aioble.Service(SVC)
    secret = aioble.Characteristic(service, SECRET, read=True, initial=b"open sesame")
    aioble.register_services(service)
    sm.protect(secret._value_handle, C.LEVEL_ENCRYPT)
    multitest.globals(BDADDR=aioble.config("mac"))
    multitest.next()
    for i in range(2):
        conn = await aioble.advertise(20_000, adv_data=b"\x02\x01\x06\x05\x09lock", timeout_ms=TIMEOUT_MS)
        central = (conn.device.addr_type, bytes(conn.device.addr))
        await conn.disconnected(timeout_ms=TIMEOUT_MS)
        r = results[-1]
        print("auth", i, "success", r.success, "reencrypt", r.reencrypt, "level", r.level, "bonded", r.bonded)
        bonds = sm.store.bonds()
        print("bonds", len(bonds), "of the central", (bonds[0].addr_type, bytes(bonds[0].addr)) == central)
    print("auth results", len(results))


def instance0():
    try:
        asyncio.run(instance0_task())
    finally:
        aioble.stop()


def central_secrets():
    with open("ble_secrets.json") as f:
        return sorted(t for t, _k, _v in json.load(f))


async def instance1_task():
    multitest.next()
    for i in range(2):
        conn = await aioble.Device(*BDADDR).connect(timeout_ms=TIMEOUT_MS)
        svc = await conn.service(SVC)
        ch = await svc.characteristic(SECRET)
        if i == 0:
            try:
                print("read before pairing", await ch.read(timeout_ms=TIMEOUT_MS))
            except aioble.GattError as e:
                print("read before pairing refused, status 0x%x" % e._status)  # 0x100 + ATT error
        await conn.pair(bond=True, le_secure=True, mitm=False, timeout_ms=TIMEOUT_MS)
        print("paired", i, "encrypted", conn.encrypted, "bonded", conn.bonded)
        print("read", await ch.read(timeout_ms=TIMEOUT_MS))
        await asyncio.sleep_ms(200)  # the lock has the keys before the link goes
        await conn.disconnect(timeout_ms=TIMEOUT_MS)
        await asyncio.sleep_ms(100)  # aioble saves its store from micropython.schedule
        print("central stored", central_secrets())


def instance1():
    try:
        asyncio.run(instance1_task())
    finally:
        aioble.stop()
