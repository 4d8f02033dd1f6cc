# Board "a": answers IRQ 40 (raised by board b's poke) with a value computed from the tuple,
# while busy in Python code (no BLE call, no sleep) when b pokes it.
import time

import bluetooth

ble = bluetooth.BLE()
seen = []


def irq(event, data):
    if event == 40:
        seen.append(data[0])
        return "hello " + data[0]


ble.irq(irq)
t = time.time()
n = 0
while time.time() - t < 0.3:  # real-time busy work: b's poke arrives meanwhile
    n += 1
print("ping", ble.ping("x")[0])
for _ in range(100):
    if seen:
        break
    time.sleep_ms(10)
print("a saw", seen)
