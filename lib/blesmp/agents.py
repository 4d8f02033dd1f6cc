"""Agents: where passkeys and confirmations come from (Bumble's PairingDelegate, in small).

SecurityManager(agent=...) calls, when present (every call is guarded: an agent that raises
is logged, never stops the pairing):

    accept(sm, conn, addr_type, addr) -> True / False / None   an incoming pairing (SEC_REQ);
                                          None = let the policy (window, allow-list) decide
    display(sm, conn, passkey)            show this passkey; the user types it on the peer
    enter(sm, conn) -> int or None        the user types the passkey the peer shows; None = the
                                          answer comes later through sm.passkey_reply()
    confirm(sm, conn, number) -> bool or None   numeric comparison; None = sm.confirm_reply() later
    cancel(sm, conn)                      the open prompt is void (timed out, link lost, answered)
    done(sm, result)                      AUTH_CMPL (an AuthResult)

Prompt wording is fixed per association model (method confusion: "type this code on the
other device" is never worded like "does the other device show this code?").

ConsoleAgent   REPL experiments: prints prompts, answers with agent.yes()/no()/pin(n) typed at
               the REPL (nothing blocks), or from lines on stdin when the app loops and calls
               agent.poll_stdin().
ButtonAgent    two buttons on machine.Pin (yes / no) and a show(text) callback (display, LEDs).
               "yes" while nothing is asked opens the pairing window. It cannot enter digits:
               passkey entry is refused (use io=IO_DISPLAY_YESNO or IO_DISPLAY_ONLY with it).
CallbackAgent  plain functions: CallbackAgent(display=f, enter=f, confirm=f, accept=f, done=f,
               cancel=f), each called without the sm argument.
"""

import sys
import time

import micropython
from micropython import const

from . import const as C

# Copies of the blesmp.const values used here: const() folds them into the bytecode.
_PASSKEY_ACTION_INPUT = const(2)
_PASSKEY_ACTION_NUMERIC_COMPARISON = const(4)
_SEC_REQ_EVT = const(1)


def _fmt(addr):
    return ":".join("%02x" % b for b in addr)


class CallbackAgent:
    """Wraps plain functions: display(conn, passkey), enter(conn), confirm(conn, number),
    accept(conn, addr_type, addr), done(result), cancel(conn). Missing ones are skipped."""

    def __init__(self, display=None, enter=None, confirm=None, accept=None, done=None, cancel=None):
        self._f = (display, enter, confirm, accept, done, cancel)

    def display(self, sm, conn, passkey):
        f = self._f[0]
        if f is not None:
            f(conn, passkey)

    def enter(self, sm, conn):
        f = self._f[1]
        return f(conn) if f is not None else None

    def confirm(self, sm, conn, number):
        f = self._f[2]
        return f(conn, number) if f is not None else None

    def accept(self, sm, conn, addr_type, addr):
        f = self._f[3]
        return f(conn, addr_type, addr) if f is not None else None

    def done(self, sm, result):
        f = self._f[4]
        if f is not None:
            f(result)

    def cancel(self, sm, conn):
        f = self._f[5]
        if f is not None:
            f(conn)


class ConsoleAgent:
    """Prints prompts; answer at the REPL with agent.yes(), agent.no() or agent.pin(123456)
    (the last prompt is answered; pass conn= to pick another). `out` = print function."""

    def __init__(self, out=print):
        self.out = out
        self.sm = None
        self.conn = None  # the connection of the open prompt
        self.kind = 0  # its passkey action, 0 = none
        self._poll = None

    def accept(self, sm, conn, addr_type, addr):
        self.sm = sm
        self.out("[pair] conn %d: pairing requested by %d/%s" % (conn, addr_type, _fmt(addr)))
        return None

    def display(self, sm, conn, passkey):
        self.sm = sm
        self.out("[pair] conn %d: TYPE THIS CODE ON THE OTHER DEVICE: %06d" % (conn, passkey))

    def enter(self, sm, conn):
        self.sm, self.conn, self.kind = sm, conn, _PASSKEY_ACTION_INPUT
        self.out("[pair] conn %d: the other device shows a 6-digit code. Type it: agent.pin(123456)"
                 " (or agent.no() to refuse)" % conn)
        return None

    def confirm(self, sm, conn, number):
        self.sm, self.conn, self.kind = sm, conn, _PASSKEY_ACTION_NUMERIC_COMPARISON
        self.out("[pair] conn %d: DOES THE OTHER DEVICE SHOW %06d ? agent.yes() / agent.no()" % (conn, number))
        return None

    def cancel(self, sm, conn):
        if conn == self.conn:
            self.kind = 0
            self.out("[pair] conn %d: prompt closed" % conn)

    def done(self, sm, result):
        self.out("[pair] %r" % (result,))

    def _answer(self, ok, pk, conn):
        sm = self.sm
        if sm is None or not self.kind:
            self.out("[pair] nothing to answer")
            return False
        conn = self.conn if conn is None else conn
        kind, self.kind = self.kind, 0
        if kind == _PASSKEY_ACTION_INPUT:
            return sm.passkey_reply(conn, ok, pk if ok else 0)
        return sm.confirm_reply(conn, ok)

    def yes(self, conn=None):
        """Numeric comparison: the numbers match."""
        return self._answer(True, 0, conn)

    def no(self, conn=None):
        """Refuse the open prompt."""
        return self._answer(False, 0, conn)

    def pin(self, passkey, conn=None):
        """Passkey entry: the code the other device shows."""
        return self._answer(True, int(passkey), conn)

    def poll_stdin(self):
        """For scripts that loop instead of leaving the REPL free: reads a pending line from
        stdin without blocking ("y", "n" or the digits) and answers the open prompt."""
        if not self.kind:
            return
        if self._poll is None:
            import select

            self._poll = select.poll()
            self._poll.register(sys.stdin, select.POLLIN)
        if not self._poll.poll(0):
            return
        line = sys.stdin.readline().strip()
        if line in ("y", "yes"):
            self.yes()
        elif line in ("n", "no"):
            self.no()
        elif line.isdigit():
            self.pin(int(line))


class ButtonAgent:
    """Two buttons (machine.Pin objects or pin numbers, active low with pull-ups) and a
    show(text) callback. yes while a numeric comparison (or accept) is open: accept; no:
    refuse; yes while nothing is open: sm.open_window(window_s)."""

    def __init__(self, yes_pin, no_pin, show=print, window_s=60, debounce_ms=200):
        self.show = show
        self.window_s = window_s
        self.debounce_ms = debounce_ms
        self.sm = None
        self.conn = None
        self.kind = 0
        self._last = None
        self._press_cb = self._press
        self.pins = (self._pin(yes_pin, 1), self._pin(no_pin, 0))

    def _pin(self, p, which):
        if isinstance(p, int):
            import machine

            p = machine.Pin(p, machine.Pin.IN, machine.Pin.PULL_UP)
        trig = getattr(p, "IRQ_FALLING", 2)
        p.irq(handler=lambda _p: self._irq(which), trigger=trig)
        return p

    def attach(self, sm):
        """Lets "yes" open the pairing window before any prompt was shown."""
        self.sm = sm
        return self

    def _irq(self, which):
        try:
            micropython.schedule(self._press_cb, which)
        except RuntimeError:
            pass  # schedule queue full: the press is dropped

    def _press(self, which):
        now = time.ticks_ms()
        if self._last is not None and time.ticks_diff(now, self._last) < self.debounce_ms:
            return
        self._last = now
        sm = self.sm
        if sm is None:
            return
        kind, self.kind = self.kind, 0
        if kind == _PASSKEY_ACTION_NUMERIC_COMPARISON:
            sm.confirm_reply(self.conn, bool(which))
        elif kind == _SEC_REQ_EVT:
            sm.security_rsp(self.conn, bool(which))
        elif which:
            sm.open_window(self.window_s)
            self.show("pairing window open for %d s" % self.window_s)

    def display(self, sm, conn, passkey):
        self.sm = sm
        self.show("Code: %06d" % passkey)

    def enter(self, sm, conn):
        self.sm = sm
        self.show("cannot type a code")
        sm.passkey_reply(conn, False)
        return None

    def confirm(self, sm, conn, number):
        self.sm, self.conn, self.kind = sm, conn, _PASSKEY_ACTION_NUMERIC_COMPARISON
        self.show("%06d  yes/no?" % number)
        return None

    def cancel(self, sm, conn):
        if conn == self.conn:
            self.kind = 0

    def done(self, sm, result):
        self.show("paired" if result.success else "failed: " + C.reason_name(result.reason))
