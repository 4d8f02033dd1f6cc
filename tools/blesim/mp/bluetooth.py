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

import _blesim

# The firmware module exports only these five flags (the others are documented as
# constants for users to define themselves).
FLAG_READ = 0x0002
FLAG_WRITE_NO_RESPONSE = 0x0004
FLAG_WRITE = 0x0008
FLAG_NOTIFY = 0x0010
FLAG_INDICATE = 0x0020


def _hexval(s):
    return int(s, 16)


class UUID:
    """bluetooth.UUID: 16-, 32- or 128-bit, printed as MicroPython prints it."""

    def __init__(self, value):
        if isinstance(value, UUID):
            self._value = value._value
            return
        if isinstance(value, int):
            if value < 0 or value > 0xFFFFFFFF:
                raise ValueError("invalid UUID")
            self._value = value
            return
        if isinstance(value, str):
            h = value.replace("-", "")
            if len(h) != 32:
                raise ValueError("invalid UUID")
            _hexval(h)
            self._value = value.lower() if len(value) == 36 else _dashed(h.lower())
            return
        b = bytes(value)  # 2, 4 or 16 bytes, little-endian as on the board
        if len(b) in (2, 4):
            self._value = int.from_bytes(b, "little")
        elif len(b) == 16:
            h = ""
            for i in range(15, -1, -1):
                h += "%02x" % b[i]
            self._value = _dashed(h)
        else:
            raise ValueError("invalid UUID")

    def __repr__(self):
        if isinstance(self._value, int):
            return ("UUID(0x%04x)" if self._value <= 0xFFFF else "UUID(0x%08x)") % self._value
        return "UUID('%s')" % self._value

    def __str__(self):
        return self.__repr__()

    def __eq__(self, other):
        return isinstance(other, UUID) and other._value == self._value

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash(self._value)

    def __bytes__(self):  # CPython only (MicroPython classes can't offer the buffer protocol)
        v = self._value
        if isinstance(v, int):
            return v.to_bytes(2 if v <= 0xFFFF else 4, "little")
        b = bytearray(16)
        h = v.replace("-", "")
        for i in range(16):
            b[15 - i] = int(h[2 * i : 2 * i + 2], 16)
        return bytes(b)


def _dashed(h):
    return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]


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
