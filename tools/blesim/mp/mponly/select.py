"""`select` for a MicroPython board process (on MICROPYPATH only for MicroPython).

MicroPython's asyncio waits in `select.poll().ipoll(timeout)`. Here that wait happens on the
broker's virtual clock: `ipoll` first looks at the registered objects without waiting; if
none is ready it waits in virtual time (running IRQ handlers, which may set a
ThreadSafeFlag, and machine.Timer callbacks) until the timeout or an IRQ, then looks again.
Objects with a real file descriptor (sockets, stdin) are watched meanwhile too. Without a
broker it is the built-in module unchanged.
"""

import sys

import _blesim

_s = _blesim.builtin("select")

POLLIN = _s.POLLIN
POLLOUT = _s.POLLOUT
POLLERR = _s.POLLERR
POLLHUP = _s.POLLHUP
try:
    select = _s.select
except AttributeError:
    pass


class _Poll:
    def __init__(self):
        self._p = _s.poll()
        self._fds = {}  # id -> obj, for objects with a real file descriptor

    def register(self, obj, eventmask=POLLIN | POLLOUT):
        self._p.register(obj, eventmask)
        if type(obj) is int or hasattr(obj, "fileno"):
            self._fds[id(obj)] = obj

    def modify(self, obj, eventmask):
        self._p.modify(obj, eventmask)

    def unregister(self, obj):
        self._p.unregister(obj)
        self._fds.pop(id(obj), None)

    def poll(self, timeout=-1):
        return list(self.ipoll(timeout))

    def ipoll(self, timeout=-1, flags=0):
        r = self._p.poll(0)
        if r or timeout == 0:
            return r
        if not _blesim.connect_if_configured():
            return self._p.ipoll(timeout, flags)
        until = None if timeout < 0 else _blesim.now_us() + int(timeout) * 1000
        ext = self._p if self._fds else None
        while True:
            _blesim.wait(until, True, ext_poll=ext)
            r = self._p.poll(0)
            # without a timeout, return only with something ready, as poll does: asyncio
            # then pops a task without looking (an IRQ that readied nothing would make it
            # pop from an empty queue)
            if r or until is not None:
                return r


def _virtual_asyncio():
    """MicroPython's C TaskQueue (_asyncio) stamps tasks with the real ticks_ms when no key
    is given, while asyncio's sleeps use `time.ticks_ms` (virtual here): mixing both would
    make a freshly created task look due in half an hour. So a board process joined to the
    broker uses asyncio's pure-Python Task/TaskQueue, which read the clock through `time`.
    Called when asyncio's core makes its poller (`new_event_loop()`, once its classes exist)."""
    core = sys.modules.get("asyncio.core")
    if core is None or getattr(core, "_blesim_virtual", False):
        return
    if not _blesim.connect_if_configured():
        return
    import _blesim_task as _task

    core.TaskQueue = _task.TaskQueue
    core.Task = _task.Task
    core._task_queue = _task.TaskQueue()
    core._blesim_virtual = True


def poll():
    _virtual_asyncio()
    return _Poll()
