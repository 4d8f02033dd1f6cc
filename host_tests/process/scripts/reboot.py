# machine.reset(): the board boots again (same board, same filesystem directory, RAM lost);
# the virtual clock and the peer carry on. Second boot: the file written before the reset is
# there, the BLE object is fresh (inactive).
import time

import bluetooth
import machine

ble = bluetooth.BLE()
try:
    with open("boots") as f:
        boots = int(f.read())
except OSError:
    boots = 0
with open("boots", "w") as f:
    f.write(str(boots + 1))
print("boot", boots + 1, "active", ble.active(), "t>=500", time.ticks_ms() >= 500)
if boots == 0:
    ble.active(True)
    time.sleep_ms(500)
    machine.reset()
print("done")
