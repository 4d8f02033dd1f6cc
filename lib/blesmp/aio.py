"""asyncio front end: `result = await sm.pair(conn)`, awaitable prompts, beside aioble.

    import asyncio, bluetooth
    from blesmp.aio import SecurityManager
    sm = SecurityManager(bluetooth.BLE(), io=IO_DISPLAY_YESNO, mitm=True)
    sm.start()                                 # the poll task (prompt timeouts, watchdogs)
    result = await sm.pair(conn)               # conn: a handle or an aioble DeviceConnection
    prompt = await sm.prompt()                 # Prompt(kind=NC_REQ_EVT/PASSKEY_REQ_EVT/PASSKEY_NOTIF_EVT)
    prompt.reply(True)                         # or prompt.reply(True, 123456)

The IRQ side never touches asyncio objects (the BLE IRQ runs on another FreeRTOS task on ESP32):
results and prompts are plain fields the coroutines poll every `poll_ms` (default 50 ms). If
aioble is imported first, its IRQ handler is chained automatically (it sees connections and
encryption changes; the secret store, passkey actions and AUTH_CMPL stay with the manager).
"""

import asyncio
import sys

from micropython import const

from . import const as C
from .manager import SecurityManager as _Base

# Copies of the blesmp.const values used here: const() folds them into the bytecode.
_AUTH_CMPL_EVT = const(5)
_NC_REQ_EVT = const(4)
_PASSKEY_NOTIF_EVT = const(2)
_PASSKEY_REQ_EVT = const(3)
_PROMPT_CANCEL_EVT = const(8)


async def _sleep_ms(ms):
    f = getattr(asyncio, "sleep_ms", None)
    if f is not None:
        await f(ms)
    else:
        await asyncio.sleep(ms / 1000)


class Prompt:
    """Something for the user: kind NC_REQ_EVT (compare `number`: reply(True/False)),
    PASSKEY_REQ_EVT (reply(True, passkey)) or PASSKEY_NOTIF_EVT (show `number`; nothing to
    answer); conn. SEC_REQ is not queued: NimBLE does not wait for it (see the README); refuse
    from the callback with security_rsp()."""

    __slots__ = ("sm", "kind", "conn", "number")

    def __init__(self, sm, kind, conn, number):
        self.sm = sm
        self.kind = kind
        self.conn = conn
        self.number = number

    def reply(self, accept, passkey=0):
        k = self.kind
        if k == _NC_REQ_EVT:
            return self.sm.confirm_reply(self.conn, accept)
        if k == _PASSKEY_REQ_EVT:
            return self.sm.passkey_reply(self.conn, accept, passkey)
        return False

    def __repr__(self):
        return "<Prompt %s conn=%s number=%s>" % (C.event_name(self.kind), self.conn, self.number)


class SecurityManager(_Base):
    """blesmp.manager.SecurityManager with coroutines. timer defaults to None: start() runs
    poll() in a task instead."""

    def __init__(self, ble, callback=None, poll_ms=50, **kw):
        kw.setdefault("timer", None)
        if kw.get("handler") is None and "aioble.core" in sys.modules:
            kw["handler"] = sys.modules["aioble.core"].ble_irq
        self.user_callback = callback
        self.poll_ms = poll_ms
        self._prompts = []
        self._task = None
        _Base.__init__(self, ble, callback=self._on_event, **kw)

    def register_callback(self, callback):
        self.user_callback = callback

    def _on_event(self, event, conn, value):
        if event in (_NC_REQ_EVT, _PASSKEY_REQ_EVT, _PASSKEY_NOTIF_EVT):
            if len(self._prompts) < 8:
                self._prompts.append(Prompt(self, event, conn, value if isinstance(value, int) else None))
        elif event == _PROMPT_CANCEL_EVT or event == _AUTH_CMPL_EVT:
            self._prompts = [p for p in self._prompts if p.conn != conn]
        cb = self.user_callback
        if cb is not None:
            cb(event, conn, value)

    def start(self):
        """Starts the poll task (call from inside the running event loop)."""
        if self._task is None:
            self._task = asyncio.create_task(self._poller())
        return self._task

    async def _poller(self):
        while True:
            self.poll()
            await _sleep_ms(self.poll_ms)

    async def pair(self, conn, level=None, timeout_ms=None):  # type: ignore[override]
        """Pairs or re-encrypts and returns the AUTH_CMPL AuthResult. The manager's watchdogs end
        every procedure (30 s SMP timeout at most); timeout_ms adds a limit of your own
        (asyncio.TimeoutError)."""
        c = self.state(conn)
        if c is None:
            raise ValueError("not connected")
        before = c.result
        _Base.pair(self, c.handle, level)
        waited = 0
        while c.result is before:
            if timeout_ms is not None and waited >= timeout_ms:
                raise asyncio.TimeoutError
            self.poll()
            await _sleep_ms(self.poll_ms)
            waited += self.poll_ms
        return c.result

    async def require(self, conn, level, min_key_size=None):  # type: ignore[override]
        """Reaches `level` on the link (pairing if needed); returns the AuthResult, or None if
        the link already had it."""
        c = self.state(conn)
        if c is None:
            raise ValueError("not connected")
        before = c.result
        _Base.require(self, c.handle, level, min_key_size, start=True)
        if c.result is before and not c.busy:
            return None
        while c.result is before:
            self.poll()
            await _sleep_ms(self.poll_ms)
        return c.result

    async def prompt(self, conn=None):
        """Waits for the next prompt (for `conn`, or any) and returns it."""
        while True:
            for p in self._prompts:
                if conn is None or p.conn == self._handle(conn):
                    self._prompts.remove(p)
                    return p
            await _sleep_ms(self.poll_ms)
