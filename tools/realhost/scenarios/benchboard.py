# The peripheral of `make bench`'s real-host figure (tools/bench/realhost.py): blesmp on the
# real NimBLE host with N bonds already stored, one Just Works pairing from a central; prints
# how long blesmp's IRQ handler ran for each IRQ from the connection to the disconnection (on an
# ESP32 the handler runs inside the NimBLE host task: while it runs, the stack waits).
#
#   benchboard.py N LAYOUT SELF_HEX PEER_HEX       (LAYOUT: 88 or 80, the host's secret size)
import sys
import time

import bluetooth
from fakebond import secret  # tools/bench (tools/bench/realhost.py puts it on the path)

from blesmp import blob
from blesmp.manager import SecurityManager
from blesmp.store import BondStore

N = int(sys.argv[1])
LAYOUT = blob.ESP88 if sys.argv[2] == "88" else blob.NIMBLE80
times = []
st = {"on": False, "done": False}


store = BondStore("bonds.db", layout=LAYOUT, max_bonds=N + 1)
for i in range(N):
    k, v = secret(i, LAYOUT)
    store.set_secret(1, memoryview(k), memoryview(v))
    store.set_secret(2, memoryview(k), memoryview(v))
store.flush()


class TimedBLE:
    def __init__(self, ble):
        self._ble = ble

    def __getattr__(self, name):
        return getattr(self._ble, name)

    def irq(self, handler):
        def timed(event, data):
            if event == 1:
                st["on"] = True
            t0 = time.ticks_us()
            r = handler(event, data)
            if st["on"]:
                times.append((event, time.ticks_diff(time.ticks_us(), t0)))
            if event == 2:
                st["on"] = False
                st["done"] = True
            return r

        self._ble.irq(timed)


raw = bluetooth.BLE()
sm = SecurityManager(TimedBLE(raw), store=store, bond=True, max_bonds=N + 1, timer=None)
assert len(sm.get_bond_device_list()) == N
raw.gap_advertise(50000, adv_data=b"\x02\x01\x06")
t0 = time.ticks_ms()
while not st["done"] and time.ticks_diff(time.ticks_ms(), t0) < 30000:
    time.sleep_ms(10)
    sm.poll()
us = [t for _, t in times]
print("BENCH", {"bonds": len(sm.get_bond_device_list()), "irqs": len(us), "sum_us": sum(us),
                "max_us": max(us) if us else 0, "max_event": max(times, key=lambda x: x[1])[0] if times else 0})
