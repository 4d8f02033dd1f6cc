# asyncio on the virtual clock: gather, Event, cancel, Lock, wait_for (MicroPython board process)
import asyncio
import time

ev = asyncio.Event()
order = []
async def a(n, d):
    await asyncio.sleep_ms(d)
    order.append(n)
    return n * 10
async def setter():
    await asyncio.sleep_ms(500)
    ev.set()
async def waiter():
    await ev.wait()
    return time.ticks_ms()
async def forever():
    try:
        await asyncio.sleep_ms(100000)
    except asyncio.CancelledError:
        order.append("cancelled")
        raise
async def main():
    t0 = time.ticks_ms()
    r = await asyncio.gather(a(1, 300), a(2, 100), a(3, 200))
    print(r, order, time.ticks_diff(time.ticks_ms(), t0))
    asyncio.create_task(setter())
    t = await waiter()
    print("event at", time.ticks_diff(t, t0))
    f = asyncio.create_task(forever())
    await asyncio.sleep_ms(50)
    f.cancel()
    await asyncio.sleep_ms(0)
    print(order[-1], f.done())
    lock = asyncio.Lock()
    async with lock:
        print("locked", lock.locked())
    try:
        await asyncio.wait_for(a(9, 1000), 0.5)
    except asyncio.TimeoutError:
        print("wait_for timeout at", time.ticks_diff(time.ticks_ms(), t0))
asyncio.run(main())
