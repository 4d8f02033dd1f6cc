import time

import bluetooth

ble = bluetooth.BLE()
print(ble.ping(1, b"ab", (2, 3), k="v"))
print(hasattr(bluetooth.BLE, "secret"), hasattr(bluetooth.BLE, "gap_nothing"), bluetooth.BLE() is ble)
saved = None
def irq(event, data):
    global saved
    if event == 29:
        saved = data[2]
        print("get_secret", data[0], data[1], bytes(data[2]))
        try:
            data[2][0] = 1
        except TypeError:
            print("read-only")
        print("nested", ble.ping(5))
        return b"\x11" * 4
    if event == 5:
        print("later", data[0], bytes(data[1]), time.ticks_ms())
        return None
    if event == 6:
        raise ValueError("boom")
ble.irq(irq)
print(ble.secret())
try:
    v = bytes(saved) == bytes(range(7))
except ValueError:
    v = False
print("stale", v)
t0 = time.ticks_ms()
ble.later(500, 5, b"xy")
time.sleep_ms(1000)
print("slept", time.ticks_diff(time.ticks_ms(), t0))
try:
    ble.fail(128)
except OSError as e:
    print("oserror", e.args[0])
ble.later(10, 6, b"")
time.sleep_ms(20)
print("handler kept", ble.had_handler())
