"""A minimal stand-in World for testing the broker's wire protocol on its own (calls, IRQs
in the middle of calls, nested calls, handler exceptions, the virtual clock), independent
of the firmware model. The real World is used by the other tests in this folder."""

import heapq

from tools.blesim.trace import Trace


class FakeBLE:
    def __init__(self, board):
        self.board = board
        self.h = None
        self.log = []

    # -- the handler, as the firmware calls it
    def irq(self, h):
        self.h = h

    def _fire(self, event, data):
        if self.h is None:
            return None
        try:
            return self.h(event, data)
        except Exception as e:  # noqa: BLE001 (firmware semantics: print, remove)
            print("Unhandled exception in IRQ callback handler", e)
            self.h = None
            return None

    # -- methods a script can call
    def ping(self, *args, **kwargs):
        return ("pong", args, kwargs)

    def fail(self, errno):
        raise OSError(errno)

    def secret(self):
        """Like gap_pair: asks GET_SECRET synchronously and returns what the handler gave."""
        key = memoryview(bytes(range(7)))
        r = self._fire(29, (1, 0, key))
        return None if r is None else bytes(r)

    def later(self, delay_ms, event, payload):
        self.board.world.schedule(delay_ms / 1000.0, self._fire, event, (7, memoryview(bytes(payload))))

    def poke(self, name, event):
        """Delivers an IRQ to another board right now (cross-board, synchronous)."""
        other = self.board.world.boards[name].ble
        return other._fire(event, (self.board.name,))

    def has(self, name):
        """Board `name` exists and has set its IRQ handler."""
        b = self.board.world.boards.get(name)
        return b is not None and b.ble.h is not None

    def had_handler(self):
        return self.h is not None


class FakeBoard:
    def __init__(self, world, name):
        self.world = world
        self.name = name
        self.public_addr = bytes([0xA4, 0xCF, 0x12, 0, 0, len(world.boards) + 1])
        self.addr_type = 0
        self.powered = True
        self.resets = 0
        self.ble = FakeBLE(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def reset(self):
        self.resets += 1
        self.ble = FakeBLE(self)

    def power_on(self):
        self.powered = True


class FakeWorld:
    _blesim_fake = True  # the broker exposes all public methods of FakeBLE

    def __init__(self):
        self.now = 0.0
        self._q = []
        self._seq = 0
        self.boards = {}
        self.trace = Trace(clock=lambda: self.now)

    def board(self, name, **kw):
        b = FakeBoard(self, name)
        self.boards[name] = b
        return b

    def schedule(self, delay, fn, *args):
        self._seq += 1
        heapq.heappush(self._q, (self.now + delay, self._seq, fn, args))

    def next_time(self):
        return self._q[0][0] if self._q else None

    def run_until(self, pred, timeout=10.0):
        end = self.now + timeout
        while self._q and self._q[0][0] <= end:
            t, _, fn, args = heapq.heappop(self._q)
            self.now = max(self.now, t)
            fn(*args)
            if pred():
                return True
        self.now = max(self.now, end)
        return bool(pred())
