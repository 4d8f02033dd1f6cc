# A peripheral whose SecurityManager refuses pairings outside its (closed) pairing window and
# disconnects the peer; the script must go on running afterwards.
import time

import bluetooth

from blesmp.const import AUTH_CMPL_EVT, reason_name
from blesmp.manager import SecurityManager

state = {}


def on_event(event, conn, value):
    if event == AUTH_CMPL_EVT and not value.success:
        print("refused", reason_name(value.reason))


def irq(event, data):
    if event == 2:  # _IRQ_CENTRAL_DISCONNECT
        state["gone"] = 1


ble = bluetooth.BLE()
sm = SecurityManager(ble, window=True, callback=on_event, handler=irq)
ble.gap_advertise(50_000, b"\x02\x01\x06\x05\x09lock")
while "gone" not in state:
    time.sleep_ms(50)
time.sleep_ms(200)
print("still running, bonds", sm.get_bond_device_num())
