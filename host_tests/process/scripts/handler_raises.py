# The application handler behind lib's SecurityManager raises: lib logs it with sys.print_exception.
import time

import bluetooth

from blesmp.manager import SecurityManager


def helper(x):
    return 1 / x


def irq(event, data):
    helper(0)


ble = bluetooth.BLE()
sm = SecurityManager(ble, handler=irq)
ble.gap_scan(100)
time.sleep_ms(300)
print("done")
