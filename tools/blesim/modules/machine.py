"""Stand-in for MicroPython's `machine` on a simulated ESP32: Pin, idle, reset, unique_id, freq.

Pins live on the current board (`board.pins`); a test drives an input with
`board.pins[n].set_input(v)` (runs the pin's irq handler on the matching edge).
"""

__all__ = ["Pin", "Timer", "idle", "reset", "soft_reset", "unique_id", "freq", "lightsleep", "deepsleep"]


def _board():
    from tools.blesim import world as W

    return W.current_board()


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_FALLING = 2
    IRQ_RISING = 1

    def __new__(cls, id, mode=-1, pull=-1, value=None):  # noqa: A002
        b = _board()
        pins = b.pins if b is not None else _orphans
        p = pins.get(id)
        if p is None:
            p = object.__new__(cls)
            p._id = id
            p._mode = cls.IN
            p._pull = None
            p._value = 0
            p._handler = None
            p._trigger = 0
            pins[id] = p
        return p

    def __init__(self, id, mode=-1, pull=-1, value=None):  # noqa: A002
        self.init(mode, pull, value)

    def init(self, mode=-1, pull=-1, value=None):
        if mode != -1:
            self._mode = mode
        if pull != -1:
            self._pull = pull
            if self._mode == self.IN and pull == self.PULL_UP:
                self._value = 1
        if value is not None:
            self._value = 1 if value else 0

    def value(self, v=None):
        if v is None:
            return self._value
        self._value = 1 if v else 0
        return None

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self._value = 1

    def off(self):
        self._value = 0

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING):
        self._handler = handler
        self._trigger = trigger

    # simulator side
    def set_input(self, v):
        v = 1 if v else 0
        old, self._value = self._value, v
        if self._handler is not None and old != v:
            edge = self.IRQ_RISING if v else self.IRQ_FALLING
            if self._trigger & edge:
                self._handler(self)

    def __repr__(self):
        return "Pin(%s)" % self._id


_orphans = {}


class Timer:
    """Hardware timer on the virtual clock: the callback runs (with the board current) when
    the World reaches its time, like a soft timer callback on the board."""

    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id=-1, **kw):  # noqa: A002
        self._ev = None
        self._board = _board()
        if kw:
            self.init(**kw)

    def init(self, mode=PERIODIC, period=-1, callback=None, freq=None):
        from tools.blesim import world as W

        self.deinit()
        if freq is not None:
            period = 1000.0 / freq
        self._mode = mode
        self._period = max(period, 1) / 1000.0
        self._cb = callback
        self._world = W.current_world()
        if self._world is not None:
            self._ev = self._world.schedule(self._period, self._fire)

    def _fire(self):
        if self._mode == self.PERIODIC:
            self._ev = self._world.schedule(self._period, self._fire)
        else:
            self._ev = None
        b = self._board
        if b is not None and (not b.powered or b.ble._dead):
            self.deinit()
            return
        if self._cb is not None:
            if b is not None:
                with b:
                    self._cb(self)
            else:
                self._cb(self)

    def deinit(self):
        if self._ev is not None:
            self._ev.cancel()
            self._ev = None


def idle():
    """Waits for the next event (at most 1 ms of virtual time)."""
    from tools.blesim import world as W

    w = W.current_world()
    if w is None or W.irq_depth[0]:
        return
    b = _board()
    if b is not None:
        b.ble._run_scheduled()
    w.run(0.001)


def reset():
    from tools.blesim.world import BoardReset

    b = _board()
    if b is not None:
        b.reset()
    raise BoardReset()


soft_reset = reset


def unique_id():
    b = _board()
    return b.unique_id() if b is not None else b"\xa4\xcf\x12\x00\x00\x00"


def freq(hz=None):
    return 160000000 if hz is None else None


def lightsleep(ms=None):
    import time

    if ms:
        time.sleep_ms(ms)


def deepsleep(ms=None):
    reset()
