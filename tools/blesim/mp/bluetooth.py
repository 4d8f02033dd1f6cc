"""`bluetooth` for a board process joined to the blesim air broker.

Loaded instead of the firmware's module in a process started by
`tools/blesim/run.py` (MicroPython: from MICROPYPATH; CPython: put first on
sys.path). `BLE()` is the board's singleton; every method is forwarded to the
board's firmware model in the broker (`tools/blesim/firmware.py`), which does
exactly what NimBLE under MicroPython does. The method list is the firmware
model's: the broker sends it when this process joins, so `hasattr(BLE,
"gap_pair")` answers as the firmware would.

IRQs come back synchronously, also in the middle of a call (gap_pair raises
GET_SECRET before it returns): the handler runs here, its return value goes
back to the firmware model, the tuple's memoryviews are read-only and stop
being valid when the handler returns, and an exception in the handler is
printed ("Unhandled exception in IRQ callback handler" + traceback) and
removes the handler, as on the board.
"""

import sys

import _blesim
from _blesim_uuid import parse, text

MP = sys.implementation.name == "micropython"

# The firmware module exports only these five flags (the others are documented as
# constants for users to define themselves).
FLAG_READ = 0x0002
FLAG_WRITE_NO_RESPONSE = 0x0004
FLAG_WRITE = 0x0008
FLAG_NOTIFY = 0x0010
FLAG_INDICATE = 0x0020


class UUID(bytes):
    """bluetooth.UUID: 16-, 32- or 128-bit, with the buffer protocol (its little-endian
    bytes), compared and printed as MicroPython does. A bytes subclass is the one way a
    Python class gets the buffer protocol (MicroPython, CPython < 3.12); bytes' other
    behaviours are taken away."""

    if MP:

        def __init__(self, value):
            super().__init__(parse(value))  # MicroPython builds the native base here

    else:

        def __new__(cls, value):
            return bytes.__new__(cls, parse(value))

    def _cmp(self, other):
        a = bytes(self)
        b = bytes(other)
        if len(a) != len(b):
            return (len(a) > len(b)) - (len(a) < len(b))
        return (a > b) - (a < b)

    def __eq__(self, other):
        return isinstance(other, UUID) and self._cmp(other) == 0

    def __ne__(self, other):
        return not self.__eq__(other)

    def __lt__(self, other):
        return self._cmp(_need_uuid(other)) < 0

    def __le__(self, other):
        return self._cmp(_need_uuid(other)) <= 0

    def __gt__(self, other):
        return self._cmp(_need_uuid(other)) > 0

    def __ge__(self, other):
        return self._cmp(_need_uuid(other)) >= 0

    def __hash__(self):
        return hash(bytes(self)) ^ 0x5555

    def __len__(self):
        raise TypeError("object of type 'UUID' has no len()")

    def __iter__(self):
        raise TypeError("'UUID' object isn't iterable")

    def __getitem__(self, i):
        raise TypeError("'UUID' object isn't subscriptable")

    def __add__(self, other):
        raise TypeError("unsupported types for __add__: 'UUID', '%s'" % type(other).__name__)

    def __repr__(self):
        return text(bytes(self))

    def __str__(self):
        return self.__repr__()


def _need_uuid(other):
    if not isinstance(other, UUID):
        raise TypeError("unsupported types for comparison: 'UUID', '%s'" % type(other).__name__)
    return other


_blesim.UUID = UUID


class BLE:
    _instance = None

    def __new__(cls):
        if BLE._instance is None:
            BLE._instance = object.__new__(cls)
        return BLE._instance

    def __init__(self):
        pass

    def irq(self, handler):
        if handler is not None and not callable(handler):
            raise ValueError("invalid handler")
        _blesim.set_handler(handler)


def _method(name):
    def m(self, *args, **kwargs):
        return _blesim.call(name, args, kwargs)

    return m


for _name in _blesim.connect().get("methods", ()):
    if _name != "irq":
        setattr(BLE, _name, _method(_name))
