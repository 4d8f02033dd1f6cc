# A protected peripheral: passkey pairing, bonds kept in flash. Copy it to a board with
# lib/blesmp, or run it on a simulated board: python -m tools.blesim.run examples/peripheral.py
import time

import bluetooth
from micropython import const

from blesmp.agents import CallbackAgent
from blesmp.const import AUTH_CMPL_EVT, IO_DISPLAY_ONLY, LEVEL_MITM, reason_name
from blesmp.manager import SecurityManager

_FLAG_READ = const(0x0002)
SERVICE = bluetooth.UUID("5ec0b000-b1e5-4d50-9000-00000000b000")
SECRET = bluetooth.UUID("5ec0b001-b1e5-4d50-9000-00000000b000")


def show_passkey(conn, passkey):  # the user types this number on the phone
    print("PASSKEY %06d" % passkey)


def on_event(event, conn, value):  # ESP-IDF's GAP callback, in small
    if event == AUTH_CMPL_EVT:
        if value.success:
            print("PAIRED level=%d bonded=%d" % (value.level, value.bonded))
        else:
            print("PAIRING FAILED", reason_name(value.reason))


ble = bluetooth.BLE()
# The constructor installs the bond store (bonds.db) and its IRQ handler, then calls
# ble.active(True): in that order, NimBLE reloads the bonded peers' keys at start-up.
sm = SecurityManager(ble, io=IO_DISPLAY_ONLY, mitm=True, bond=True, callback=on_event,
                     agent=CallbackAgent(display=show_passkey))
((h_secret,),) = ble.gatts_register_services(((SERVICE, ((SECRET, _FLAG_READ),)),))
ble.gatts_write(h_secret, b"the secret")
sm.protect(h_secret, LEVEL_MITM)  # reads below level 3 get ATT 0x05 / 0x0F: the phone pairs
ble.gap_advertise(100_000, b"\x02\x01\x06\x0b\x09blesmp-demo")
print("READY bonds=%d" % sm.get_bond_device_num())
while True:
    time.sleep_ms(100)
