# ruff: noqa: F821 (multitest and the SET globals are injected by the runner)
# Issue 17 item 5: a protect()ed characteristic's value never reaches a link below its level by
# notification. instance0 = peripheral with blesmp (the value protected at level 2), instance1 =
# a friend that pairs (Just Works) and subscribes, instance2 = a stranger that subscribes
# without pairing (CCCD writes need no encryption). NimBLE reads the value for a notification
# with conn 65535: refused while the stranger is connected; sm.notify() serves the friend.

import time

import bluetooth
from micropython import const

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_PERIPHERAL_CONNECT = const(7)
_IRQ_PERIPHERAL_DISCONNECT = const(8)
_IRQ_GATTC_WRITE_DONE = const(17)
_IRQ_GATTC_NOTIFY = const(18)
_IRQ_ENCRYPTION_UPDATE = const(28)
_IRQ_GET_SECRET = const(29)
_IRQ_SET_SECRET = const(30)

_FLAG_READ = const(0x0002)
_FLAG_NOTIFY = const(0x0010)

SERVICE_UUID = bluetooth.UUID("a5a5a5a5-0000-4000-8000-00000000bbbb")
CHAR_UUID = bluetooth.UUID("a5a5a5a5-0001-4000-8000-00000000bbbb")
SERVICE = (SERVICE_UUID, ((CHAR_UUID, _FLAG_READ | _FLAG_NOTIFY),))

waiting_events = {}
notified = []


def irq(event, data):
    if event == _IRQ_CENTRAL_CONNECT or event == _IRQ_PERIPHERAL_CONNECT:
        waiting_events[event] = data[0]
    elif event == _IRQ_GATTC_NOTIFY:
        notified.append(bytes(data[-1]))
    elif event == _IRQ_ENCRYPTION_UPDATE:
        print("_IRQ_ENCRYPTION_UPDATE", data[1], data[2], data[3], data[4])
    elif event == _IRQ_GET_SECRET:
        return None
    elif event == _IRQ_SET_SECRET:
        return False
    if event not in waiting_events:
        waiting_events[event] = None


def wait_for_event(event, timeout_ms):
    t0 = time.ticks_ms()
    while time.ticks_diff(time.ticks_ms(), t0) < timeout_ms:
        if event in waiting_events:
            return waiting_events.pop(event)
        machine.idle()
    raise ValueError("Timeout waiting for {}".format(event))


# Peripheral, with blesmp.
def instance0():
    from blesmp.manager import SecurityManager
    from blesmp.store import BondStore

    sm = SecurityManager(ble, store=BondStore("notify_bonds.db"), timer=None, handler=irq, bond=False)
    ((vh,),) = ble.gatts_register_services((SERVICE,))
    ble.gatts_write(vh, b"secret-0")
    sm.protect(vh, 2)
    multitest.globals(BDADDR=ble.config("mac"), VH=vh)
    ble.gap_advertise(20_000, b"\x02\x01\x06\x04\xffMPY")
    multitest.next()
    try:
        friend = wait_for_event(_IRQ_CENTRAL_CONNECT, 10_000)
        wait_for_event(_IRQ_ENCRYPTION_UPDATE, 10_000)
        multitest.wait("friend subscribed")
        ble.gap_advertise(20_000, b"\x02\x01\x06\x04\xffMPY")
        multitest.broadcast("advertising again")
        stranger = wait_for_event(_IRQ_CENTRAL_CONNECT, 10_000)
        multitest.wait("stranger subscribed")
        print("levels", sm.state(friend).level, sm.state(stranger).level)
        ble.gatts_write(vh, b"secret-1", True)  # NimBLE notifies both subscribers... or nobody
        time.sleep_ms(1000)
        try:
            ble.gatts_notify(stranger, vh)  # the database value, straight to the stranger
            print("raw notify sent")
        except OSError:
            print("raw notify refused")
        print("sm.notify stranger", sm.notify(stranger, vh))
        print("sm.notify friend", sm.notify(friend, vh))
        time.sleep_ms(1000)
        multitest.broadcast("round 1 done")
        wait_for_event(_IRQ_CENTRAL_DISCONNECT, 10_000)  # the stranger goes
        ble.gatts_write(vh, b"secret-2", True)  # every link qualifies again
        time.sleep_ms(1000)
        multitest.broadcast("round 2 done")
        wait_for_event(_IRQ_CENTRAL_DISCONNECT, 10_000)
    finally:
        ble.active(0)


# The friend: pairs, subscribes.
def instance1():
    multitest.next()
    try:
        ble.gap_connect(*BDADDR)
        conn = wait_for_event(_IRQ_PERIPHERAL_CONNECT, 10_000)
        ble.gap_pair(conn)
        wait_for_event(_IRQ_ENCRYPTION_UPDATE, 10_000)
        ble.gattc_write(conn, VH + 1, b"\x01\x00", 1)
        wait_for_event(_IRQ_GATTC_WRITE_DONE, 10_000)
        multitest.broadcast("friend subscribed")
        multitest.wait("round 1 done")
        print("friend got", notified)
        multitest.wait("round 2 done")
        print("friend got", notified)
        ble.gap_disconnect(conn)
        wait_for_event(_IRQ_PERIPHERAL_DISCONNECT, 10_000)
    finally:
        ble.active(0)


# The stranger: subscribes without pairing.
def instance2():
    multitest.next()
    try:
        multitest.wait("advertising again")
        ble.gap_connect(*BDADDR)
        conn = wait_for_event(_IRQ_PERIPHERAL_CONNECT, 10_000)
        ble.gattc_write(conn, VH + 1, b"\x01\x00", 1)
        wait_for_event(_IRQ_GATTC_WRITE_DONE, 10_000)
        multitest.broadcast("stranger subscribed")
        multitest.wait("round 1 done")
        print("stranger got", notified)
        ble.gap_disconnect(conn)
        wait_for_event(_IRQ_PERIPHERAL_DISCONNECT, 10_000)
    finally:
        ble.active(0)


import machine  # noqa: E402 (the board's module, after the test's definitions as upstream does)

ble = bluetooth.BLE()
ble.config(mitm=False, le_secure=True, bond=False)
ble.active(1)
ble.irq(irq)
