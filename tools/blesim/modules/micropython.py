"""Stand-in for MicroPython's `micropython` module on a simulated board.

`const` is the identity, as on the board. `native` and `viper` are identity
decorators so that board scripts import; CPython runs their bodies as plain
Python (blesmp itself never relies on that: see lib/blesmp/_viper.py).
`schedule` queues a call that the simulator runs once the IRQ handler returns.
"""

_scheduled = []
_SCHEDULE_DEPTH = 8  # MICROPY_SCHEDULER_DEPTH on ESP32


def const(x):
    return x


def native(f):
    return f


def viper(f):
    return f


def schedule(func, arg):
    if len(_scheduled) >= _SCHEDULE_DEPTH:
        raise RuntimeError("schedule queue full")
    _scheduled.append((func, arg))


def run_scheduled():
    """Runs the queued calls (the simulator calls this between events)."""
    while _scheduled:
        func, arg = _scheduled.pop(0)
        func(arg)


def heap_lock():
    return 0


def heap_unlock():
    return 0
