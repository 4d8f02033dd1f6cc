"""`bluetooth.UUID` as the firmware has it (extmod/modbluetooth.c `bluetooth_uuid_*`): a board
process's class (bluetooth.py here, on MicroPython and CPython) and the base of the firmware
model's (tools/blesim/firmware/uuid.py, in the broker, which documents the behaviours). Written
in the subset both interpreters share. Not `_uuid`: CPython's uuid module imports a `_uuid` of
its own, and this folder comes first on a CPython board's path."""

import sys

MP = sys.implementation.name == "micropython"

_HEX = "0123456789abcdefABCDEF"


def parse(value):
    """The UUID's little-endian bytes for a constructor argument, or the firmware's error."""
    if isinstance(value, int) and not isinstance(value, bool):  # mp_obj_is_int: bool is not
        if value > 65535:
            raise ValueError("invalid UUID")
        if value < -(1 << 31):
            raise OverflowError("overflow converting long int to machine word")
        return bytes((value & 0xFF, (value >> 8) & 0xFF))
    if isinstance(value, str):
        buf = value.encode()
    elif isinstance(value, (bytes, bytearray, memoryview)):
        buf = bytes(value)
    else:
        raise TypeError("object with buffer protocol required")
    if len(buf) in (2, 4, 16):
        return buf
    data = bytearray(16)
    i = 32
    for c in buf:
        c = chr(c)
        if c == "-":
            continue
        if c not in _HEX:
            raise ValueError("invalid char in UUID")
        i -= 1
        if i < 0:
            raise ValueError("UUID too long")
        if i % 2 == 0:
            data[i // 2] |= int(c, 16)
        else:
            data[i // 2] = int(c, 16) << 4
    if i > 0:
        raise ValueError("UUID too short")
    return bytes(data)


def text(b):
    """How the firmware prints a UUID of bytes `b`: UUID(0x2902), UUID('6e400001-...')."""
    h = ""
    for i in range(len(b) - 1, -1, -1):
        h += "%02x" % b[i]
    if len(b) <= 4:
        return "UUID(0x%s)" % h
    return "UUID('%s-%s-%s-%s-%s')" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


class UUID(bytes):
    """bluetooth.UUID: 16-, 32- or 128-bit, with the buffer protocol (its little-endian
    bytes), compared and printed as MicroPython does. A bytes subclass is the one way a
    Python class gets the buffer protocol (MicroPython, CPython < 3.12); bytes' other
    behaviours are taken away."""

    __slots__ = ()  # CPython: no __dict__ (MicroPython ignores it)

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

    def __contains__(self, x):
        raise TypeError("'UUID' object isn't iterable")

    def __add__(self, other):
        raise TypeError("unsupported types for __add__: 'UUID', '%s'" % type(other).__name__)

    def __mul__(self, other):
        raise TypeError("unsupported types for __mul__: 'UUID', '%s'" % type(other).__name__)

    __rmul__ = __mul__

    def __repr__(self):
        return text(bytes(self))

    def __str__(self):
        return self.__repr__()


def _need_uuid(other):
    if not isinstance(other, UUID):
        raise TypeError("unsupported types for comparison: 'UUID', '%s'" % type(other).__name__)
    return other
