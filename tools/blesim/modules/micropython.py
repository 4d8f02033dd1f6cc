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


def _board():
    try:
        from tools.blesim.world import current_board
    except ImportError:  # pragma: no cover
        return None
    return current_board()


def schedule(func, arg):
    b = _board()
    if sum(1 for e in _scheduled if e[0] is b) >= _SCHEDULE_DEPTH:
        raise RuntimeError("schedule queue full")
    _scheduled.append((b, func, arg))


def run_scheduled(board=None):
    """Runs the queued calls (the simulator calls this between events, per board: each call
    runs with the board that scheduled it made current). board=None runs every queue."""
    i = 0
    while i < len(_scheduled):
        b, func, arg = _scheduled[i]
        if board is not None and b is not board:
            i += 1
            continue
        _scheduled.pop(i)
        if b is not None:
            with b:
                func(arg)
        else:
            func(arg)


def heap_lock():
    return 0


def heap_unlock():
    return 0
