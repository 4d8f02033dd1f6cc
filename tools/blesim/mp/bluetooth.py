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
from _blesim_uuid import UUID

MP = sys.implementation.name == "micropython"

# The firmware module exports only these five flags (the others are documented as
# constants for users to define themselves).
FLAG_READ = 0x0002
FLAG_WRITE_NO_RESPONSE = 0x0004
FLAG_WRITE = 0x0008
FLAG_NOTIFY = 0x0010
FLAG_INDICATE = 0x0020


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
