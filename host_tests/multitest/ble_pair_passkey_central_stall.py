# ruff: noqa: F821 (multitest and the SET globals are injected by the runner)
# Passkey Entry with an ESP32 as central: the peripheral (DisplayOnly, MITM) gets
# _IRQ_PASSKEY_ACTION (action 3 = display, passkey 0: the application picks the number) and
# answers with gap_passkey; the central (KeyboardOnly) never gets a passkey prompt, because
# MicroPython's NimBLE binding does not forward PASSKEY_ACTION on links it opened with
# gap_connect (reference §1 note E). The pairing stalls until the 30 s SMP timeout; then both
# sides get _IRQ_ENCRYPTION_UPDATE with the link's current state: not encrypted. The 30 s are
# virtual: the test takes about a second. instance0 = peripheral, instance1 = central.

import time

import bluetooth
from micropython import const

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_PERIPHERAL_CONNECT = const(7)
_IRQ_PERIPHERAL_DISCONNECT = const(8)
_IRQ_ENCRYPTION_UPDATE = const(28)
_IRQ_GET_SECRET = const(29)
_IRQ_SET_SECRET = const(30)
_IRQ_PASSKEY_ACTION = const(31)

_IO_DISPLAY_ONLY = const(0)
_IO_KEYBOARD_ONLY = const(2)
_PASSKEY_ACTION_DISPLAY = const(3)

waiting_events = {}


def irq(event, data):
    if event == _IRQ_GET_SECRET:
        return None
    if event == _IRQ_SET_SECRET:
        return False
    if event == _IRQ_CENTRAL_CONNECT:
        print("_IRQ_CENTRAL_CONNECT")
        waiting_events[event] = data[0]
    elif event == _IRQ_CENTRAL_DISCONNECT:
        print("_IRQ_CENTRAL_DISCONNECT")
    elif event == _IRQ_PERIPHERAL_CONNECT:
        print("_IRQ_PERIPHERAL_CONNECT")
        waiting_events[event] = data[0]
    elif event == _IRQ_PERIPHERAL_DISCONNECT:
        print("_IRQ_PERIPHERAL_DISCONNECT")
    elif event == _IRQ_PASSKEY_ACTION:
        conn, action, passkey = data
        print("_IRQ_PASSKEY_ACTION", action, passkey)
        if action == _PASSKEY_ACTION_DISPLAY:
            ble.gap_passkey(conn, action, 123456)
            print("displayed 123456")
    elif event == _IRQ_ENCRYPTION_UPDATE:
        print("_IRQ_ENCRYPTION_UPDATE", data[1], data[2], data[3], data[4])
    if event not in waiting_events:
        waiting_events[event] = None


waited_ms = [0]


def wait_for_event(event, timeout_ms):
    t0 = time.ticks_ms()
    while time.ticks_diff(time.ticks_ms(), t0) < timeout_ms:
        if event in waiting_events:
            waited_ms[0] = time.ticks_diff(time.ticks_ms(), t0)
            return waiting_events.pop(event)
        machine.idle()
    raise ValueError("Timeout waiting for {}".format(event))


# Peripheral.
def instance0():
    multitest.globals(BDADDR=ble.config("mac"))
    ble.config(io=_IO_DISPLAY_ONLY)
    print("gap_advertise")
    ble.gap_advertise(20_000, b"\x02\x01\x06\x04\xffMPY")
    multitest.next()
    try:
        wait_for_event(_IRQ_CENTRAL_CONNECT, 10_000)
        wait_for_event(_IRQ_PASSKEY_ACTION, 10_000)
        wait_for_event(_IRQ_ENCRYPTION_UPDATE, 40_000)
        ble.gap_advertise(None)
        multitest.broadcast("stalled")
        wait_for_event(_IRQ_CENTRAL_DISCONNECT, 10_000)
    finally:
        ble.active(0)


# Central.
def instance1():
    ble.config(io=_IO_KEYBOARD_ONLY)
    multitest.next()
    try:
        print("gap_connect")
        ble.gap_connect(*BDADDR)
        conn_handle = wait_for_event(_IRQ_PERIPHERAL_CONNECT, 10_000)
        print("gap_pair")
        ble.gap_pair(conn_handle)
        wait_for_event(_IRQ_ENCRYPTION_UPDATE, 40_000)
        print("no prompt; gave up after the SMP timeout:", 29_000 <= waited_ms[0] <= 31_000)
        print("passkey prompt seen:", _IRQ_PASSKEY_ACTION in waiting_events)
        multitest.wait("stalled")
        print("gap_disconnect:", ble.gap_disconnect(conn_handle))
        wait_for_event(_IRQ_PERIPHERAL_DISCONNECT, 10_000)
    finally:
        ble.active(0)


import machine  # noqa: E402

ble = bluetooth.BLE()
ble.config(mitm=True, le_secure=True, bond=False)
ble.active(1)
ble.irq(irq)
