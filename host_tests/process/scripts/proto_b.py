import time

import bluetooth

ble = bluetooth.BLE()
while not ble.has("a"):  # the clock stands still until the announced board "a" has joined
    time.sleep_ms(1)
print("b got", ble.poke("a", 40))
