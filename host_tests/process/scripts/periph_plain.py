# A board script as written for an ESP32: advertise, accept a connection, answer the secret
# IRQs from a dict, serve an encrypted characteristic, stop after the central has gone.
import time

import bluetooth
import machine
from micropython import const

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_ENCRYPTION_UPDATE = const(28)
_IRQ_GET_SECRET = const(29)
_IRQ_SET_SECRET = const(30)

secrets = {}
done = []


def irq(event, data):
    if event == _IRQ_GET_SECRET:
        sec_type, index, key = data
        if key is None:
            vals = [v for (t, _), v in secrets.items() if t == sec_type]
            return vals[index] if index < len(vals) else None
        return secrets.get((sec_type, bytes(key)))
    if event == _IRQ_SET_SECRET:
        sec_type, key, value = data
        if value is None:
            return secrets.pop((sec_type, bytes(key)), None) is not None
        secrets[(sec_type, bytes(key))] = bytes(value)
        return True
    if event == _IRQ_CENTRAL_CONNECT:
        print("connected")
    elif event == _IRQ_ENCRYPTION_UPDATE:
        print("encrypted", data[1], "bonded", data[3], "key_size", data[4])
    elif event == _IRQ_CENTRAL_DISCONNECT:
        print("disconnected")
        done.append(1)


ble = bluetooth.BLE()
ble.config(bond=True, le_secure=True, mitm=False)
ble.irq(irq)
ble.active(True)
((h,),) = ble.gatts_register_services(
    ((bluetooth.UUID(0x180F), ((bluetooth.UUID(0x2A19), bluetooth.FLAG_READ | 0x0200),)),))
ble.gatts_write(h, b"\x64")
ble.gap_advertise(100_000, b"\x02\x01\x06\x05\x09lock")
t0 = time.ticks_ms()
while not done and time.ticks_diff(time.ticks_ms(), t0) < 20_000:
    machine.idle()
print("stored types", sorted(t for t, _ in secrets))
