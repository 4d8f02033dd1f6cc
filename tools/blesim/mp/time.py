"""`time` for a MicroPython board process joined to the blesim air broker.

Shadows the unix port's built-in `time` (MicroPython lets a module on the path
extend a built-in). The ticks functions read the broker's virtual clock and
wrap like the ESP32 firmware's (period 2**30); `sleep*` wait in virtual time,
running IRQs meanwhile. Without a broker (BLESIM_BROKER unset) they behave as
the built-ins. `time()`, `gmtime()` and friends are the built-ins.
"""

import _blesim

_t = _blesim.builtin("time")

_MASK = (1 << 30) - 1
_HALF = 1 << 29

gmtime = _t.gmtime
localtime = _t.localtime
mktime = _t.mktime
time = _t.time
try:
    time_ns = _t.time_ns
except AttributeError:
    pass


def _live():
    return _blesim.connected() or _blesim.connect_if_configured()


def ticks_us():
    if not _live():
        return _t.ticks_us() & _MASK
    return _blesim.now_us() & _MASK


def ticks_ms():
    if not _live():
        return _t.ticks_ms() & _MASK
    return (_blesim.now_us() // 1000) & _MASK


def ticks_cpu():
    return ticks_us()


def ticks_diff(a, b):
    return ((a - b + _HALF) & _MASK) - _HALF


def ticks_add(t, d):
    return (t + d) & _MASK


def sleep_us(n):
    if not _live():
        return _t.sleep_us(n)
    _blesim.sleep_us(n)


def sleep_ms(n):
    if not _live():
        return _t.sleep_ms(n)
    _blesim.sleep_us(int(n) * 1000)


def sleep(s):
    if not _live():
        return _t.sleep(s)
    _blesim.sleep_us(int(s * 1000000))
