import time

import bluetooth
import machine

ev = {}


def irq(event, data):
    if event == 5 and b"lock" in bytes(data[4]) and "found" not in ev:
        ev["found"] = (data[0], bytes(data[1]))
        ble.gap_scan(None)
    elif event == 7:
        ev["conn"] = data[0]
    elif event == 11:
        ev["char"] = data[2]
    elif event == 12:
        ev["chars_done"] = 1
    elif event == 15:
        ev["value"] = bytes(data[-1])
    elif event == 28:
        ev["enc"] = data[1:]
    elif event == 8:
        ev["gone"] = 1
    elif event == 29:
        return None
    elif event == 30:
        return True


def wait(key, ms=10_000):
    t0 = time.ticks_ms()
    while key not in ev:
        if time.ticks_diff(time.ticks_ms(), t0) > ms:
            raise OSError("timeout " + key)
        machine.idle()
    return ev[key]


ble = bluetooth.BLE()
ble.irq(irq)
ble.active(True)
ble.gap_scan(5000, 30000, 30000)
addr_type, addr = wait("found")
print("found lock")
ble.gap_connect(addr_type, addr)
conn = wait("conn")
ble.gattc_discover_characteristics(conn, 1, 0xFFFF, bluetooth.UUID(0x2A19))
char = wait("char")
wait("chars_done")
ble.gap_pair(conn)
print("encryption", wait("enc"))
ble.gattc_read(conn, char)
print("battery", wait("value")[0])
ble.gap_disconnect(conn)
wait("gone")
print("bye")
