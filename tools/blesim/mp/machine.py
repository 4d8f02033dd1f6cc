"""`machine` for a board process joined to the blesim air broker.

What the blesmp apps use of the ESP32 `machine` module: `Pin` (a simulated
GPIO: outputs keep their value, inputs read what `Pin.set_input` or the pull
says; `irq` is accepted and fires on `Pin.set_input` changes), `Timer` (on the virtual
clock), `idle()` (waits
in virtual time until an IRQ or a short while), `reset()`/`soft_reset()`/`deepsleep()` (end
the script: the board process exits with code 99 so its launcher can restart
it), `unique_id()` (from the board's address), `freq()`.
"""

import sys

import _blesim

_freq = 160000000


def idle():
    if _blesim.connected() or _blesim.connect_if_configured():
        _blesim.idle()


def reset():
    _blesim.bye(99)
    sys.exit(99)


def soft_reset():
    reset()


def deepsleep(time_ms=None):
    # ESP32: the chip powers down (links drop without a word; peers see a supervision
    # timeout) and boots again: the process ends as for reset(). The time asleep is not
    # modelled: the clock waits for the new process as after a reset.
    reset()


def lightsleep(time_ms=None):
    # the CPU pauses; the BLE controller keeps its links: time passes as in sleep_ms
    if time_ms:
        _blesim.sleep_us(int(time_ms) * 1000)


def unique_id():
    info = _blesim.connect()
    return bytes(bytearray(int(info["addr"][i : i + 2], 16) for i in range(0, 12, 2)))


def freq(hz=None):
    global _freq
    if hz is None:
        return _freq
    _freq = hz


class Timer:
    """machine.Timer on the virtual clock: callbacks run (scheduled, as on ESP32) when due,
    while the script waits (sleep, idle, multitest.wait)."""

    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id=-1, mode=PERIODIC, period=-1, callback=None, freq=None):  # noqa: A002
        self.id = id
        if period != -1 or freq is not None:
            self.init(mode=mode, period=period, callback=callback, freq=freq)

    def init(self, mode=PERIODIC, period=-1, callback=None, freq=None):
        if freq is not None:
            period_us = int(1000000 / freq)
        else:
            period_us = int(period) * 1000
        if period_us <= 0:
            raise ValueError("period")
        _blesim.connect_if_configured()
        _blesim.timer_start(self, period_us, mode == Timer.PERIODIC, callback)

    def deinit(self):
        _blesim.timer_stop(self)

    def value(self):
        return 0


def reset_cause():
    return 1  # PWRON_RESET


PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_RISING = 1
    IRQ_FALLING = 2

    _inputs = {}

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self._mode = mode
        self._pull = pull
        self._value = 0
        self._handler = None
        self._trigger = 0
        if value is not None:
            self._value = 1 if value else 0

    def init(self, mode=-1, pull=-1, value=None):
        self.__init__(self.id, mode, pull, value)

    def value(self, v=None):
        if v is None:
            if self._mode == Pin.OUT:
                return self._value
            if self.id in Pin._inputs:
                return Pin._inputs[self.id][0]
            return 1 if self._pull == Pin.PULL_UP else 0
        self._value = 1 if v else 0
        return None

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self._value = 1

    def off(self):
        self._value = 0

    def irq(self, handler=None, trigger=3):
        self._handler = handler
        self._trigger = trigger
        Pin._inputs.setdefault(self.id, [self.value(), []])[1].append(self)

    @staticmethod
    def set_input(id, level):
        """Simulation only: drive input pin `id` to `level` (a button press)."""
        ent = Pin._inputs.setdefault(id, [0, []])
        old = ent[0]
        ent[0] = 1 if level else 0
        for p in ent[1]:
            if p._handler is None:
                continue
            if (old == 0 and ent[0] == 1 and p._trigger & Pin.IRQ_RISING) or (
                old == 1 and ent[0] == 0 and p._trigger & Pin.IRQ_FALLING
            ):
                p._handler(p)
