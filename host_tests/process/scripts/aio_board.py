# MicroPython asyncio on a board process: sleeps and timeouts run on the virtual clock, and
# an IRQ handler wakes a task through a ThreadSafeFlag (as aioble does).
import asyncio
import time

import bluetooth

ble = bluetooth.BLE()
flag = asyncio.ThreadSafeFlag()
got = []


def irq(event, data):
    if event == 5:
        got.append((time.ticks_ms(), bytes(data[1])))
        flag.set()


ble.irq(irq)


async def waiter():
    await flag.wait()
    return got[0]


async def main():
    t0 = time.ticks_ms()
    await asyncio.sleep_ms(2000)
    print("slept", time.ticks_diff(time.ticks_ms(), t0))
    ble.later(700, 5, b"tsf")
    t1 = time.ticks_ms()
    t, payload = await asyncio.wait_for_ms(waiter(), 5000)
    print("woken by irq after", time.ticks_diff(t, t1), payload, time.ticks_diff(time.ticks_ms(), t1))
    try:
        await asyncio.wait_for_ms(flag.wait(), 30000)
    except asyncio.TimeoutError:
        print("timeout after", time.ticks_diff(time.ticks_ms(), t1))


asyncio.run(main())
