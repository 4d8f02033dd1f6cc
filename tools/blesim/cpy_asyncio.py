"""CPython's asyncio on the broker's virtual clock, for a CPython board process (run.py).

A board script written for MicroPython may use asyncio (aioble, blesmp.aio). Under CPython
that is CPython's asyncio, which sleeps in real time on `time.monotonic()`. `install()` makes
the event loops of this process run on the virtual clock instead: `loop.time()` is the
broker's time, and the loop's wait for I/O becomes a wait on the broker (IRQ handlers and
machine.Timer callbacks run meanwhile; the loop's own descriptors are watched too). It also
adds what MicroPython's asyncio has and CPython's lacks: `sleep_ms`, `wait_for_ms` and
`ThreadSafeFlag` (set from an IRQ handler, awaited by a task).
"""

import asyncio
import math
import selectors

__all__ = ["install"]


class _VirtualSelector(selectors.BaseSelector):
    def __init__(self, client):
        self._client = client
        self._real = selectors.DefaultSelector()

    def register(self, fileobj, events, data=None):
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj):
        return self._real.unregister(fileobj)

    def modify(self, fileobj, events, data=None):
        return self._real.modify(fileobj, events, data)

    def get_map(self):
        return self._real.get_map()

    def close(self):
        self._real.close()

    def poll(self, timeout=0):  # for the client's "watch these descriptors" loop
        return self._real.select(timeout)

    def select(self, timeout=None):
        ready = self._real.select(0)
        if ready or (timeout is not None and timeout <= 0):
            return ready
        c = self._client
        until = None if timeout is None else c.now_us() + max(1, math.ceil(timeout * 1000000))
        c.wait(until, True, ext_poll=self)
        return self._real.select(0)


class _VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self, client):
        super().__init__(_VirtualSelector(client))
        self._client = client

    def time(self):
        return self._client.now_us() / 1000000.0


class _Policy(asyncio.DefaultEventLoopPolicy):
    def __init__(self, client):
        super().__init__()
        self._client = client

    def new_event_loop(self):
        return _VirtualLoop(self._client)


class ThreadSafeFlag:
    """MicroPython's asyncio.ThreadSafeFlag: set() from an IRQ handler, `await wait()` in a task."""

    def __init__(self):
        self._ev = None
        self._set = False

    def set(self):
        self._set = True
        if self._ev is not None:
            self._ev.set()

    def clear(self):
        self._set = False
        if self._ev is not None:
            self._ev.clear()

    async def wait(self):
        if self._ev is None:
            self._ev = asyncio.Event()
            if self._set:
                self._ev.set()
        await self._ev.wait()
        self._ev.clear()
        self._set = False


async def _sleep_ms(ms):
    await asyncio.sleep(ms / 1000.0)


async def _wait_for_ms(aw, ms):
    return await asyncio.wait_for(aw, ms / 1000.0)


def install(client):
    asyncio.set_event_loop_policy(_Policy(client))
    if not hasattr(asyncio, "sleep_ms"):
        asyncio.sleep_ms = _sleep_ms
    if not hasattr(asyncio, "wait_for_ms"):
        asyncio.wait_for_ms = _wait_for_ms
    if not hasattr(asyncio, "ThreadSafeFlag"):
        asyncio.ThreadSafeFlag = ThreadSafeFlag
