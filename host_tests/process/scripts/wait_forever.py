# Waits (asyncio) for a connection no peer will make: nothing can end the wait.
import asyncio

import bluetooth

ev = asyncio.Event()


def irq(event, data):
    if event == 1:  # _IRQ_CENTRAL_CONNECT
        ev.set()


ble = bluetooth.BLE()
ble.irq(irq)
ble.active(True)
print("waiting")
asyncio.run(ev.wait())
print("connected")
