# Connects to the board at a4cf12000001 and pairs (Just Works); prints how it ended.
import time

import bluetooth
import machine

ev = {}


def irq(event, data):
    if event == 7:
        ev["conn"] = data[0]
    elif event == 8:
        ev["gone"] = 1
    elif event == 28:
        ev["enc"] = tuple(data[1:])
    elif event == 29:
        return None
    elif event == 30:
        return False


def wait(key, ms=10_000):
    t0 = time.ticks_ms()
    while key not in ev and time.ticks_diff(time.ticks_ms(), t0) < ms:
        machine.idle()
    return ev.get(key)


ble = bluetooth.BLE()
ble.irq(irq)
ble.active(True)
ble.gap_connect(0, bytes.fromhex("a4cf12000001"))
conn = wait("conn")
ble.gap_pair(conn)
wait("gone")
print("disconnected by the peripheral", "enc" in ev and ev["enc"][0] == 1)
