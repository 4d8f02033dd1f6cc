"""`bluetooth.UUID` as MicroPython implements it (extmod/modbluetooth.c `bluetooth_uuid_*`).

What the firmware's type does, and so this one:
- `UUID(int)`: always a 16-bit UUID; a value above 65535 is `ValueError("invalid UUID")`
  (a 32-bit UUID is made from 4 bytes, never from an int); a negative one keeps its low 16 bits.
- `UUID(buffer)` (bytes, bytearray, memoryview, str, another UUID: anything with the buffer
  protocol) of 2, 4 or 16 bytes: those bytes, little-endian, as they are, so a 4-character str
  is a 32-bit UUID of its characters;
- any other length: a UUID string, hex digits with `-` anywhere, exactly 32 digits
  ("invalid char in UUID", "UUID too long", "UUID too short");
- anything else: `TypeError("object with buffer protocol required")`.
- It has the buffer protocol (`bytes(u)`, `bytearray(b) + u`, `b.extend(u)`): the bytes above.
- `==` and ordering only between UUIDs, of the same size first (UUID(0x2902) is not equal to
  its 128-bit form), no len(), no iteration, printed `UUID(0x2902)` / `UUID('6e400001-...')`.

CPython has no buffer protocol for Python classes before 3.12, so the type is a `bytes`
subclass (its value is the UUID's bytes) with bytes' own behaviours taken away.
ATT compares 16- and 128-bit forms as equal: the model uses `att_equal` for that.
The argument's parsing and the printed form are the board process's too
(tools/blesim/mp/_blesim_uuid.py).
"""

from tools.blesim.mp._blesim_uuid import parse, text

__all__ = ["UUID", "parse"]

_BASE = bytes.fromhex("0000000000001000800000805f9b34fb")  # 00000000-0000-1000-8000-00805f9b34fb


class UUID(bytes):
    __slots__ = ()

    def __new__(cls, value):
        return bytes.__new__(cls, parse(value))

    @property
    def _b(self):
        return bytes(self)

    def __bytes__(self):
        return bytes.__getitem__(self, slice(None))

    def full(self):
        """128-bit little-endian form (for comparisons across sizes)."""
        b = bytes(self)
        if len(b) == 16:
            return b
        return _BASE[::-1][:12] + b.ljust(4, b"\0")

    def att_equal(self, other):
        """Equal as ATT compares attribute types (16/32-bit the same as their 128-bit form)."""
        return self.full() == UUID(other).full()

    # modbluetooth.c bluetooth_uuid_binary_op: UUIDs only; a different size compares by size
    def _cmp(self, other):
        if not isinstance(other, UUID):
            return NotImplemented
        a, b = bytes(self), bytes(other)
        if len(a) != len(b):
            return (len(a) > len(b)) - (len(a) < len(b))
        return (a > b) - (a < b)

    # not NotImplemented for other types: bytes' own == would then say UUID(0x2902) == b"\x02\x29"
    def __eq__(self, other):
        return isinstance(other, UUID) and self._cmp(other) == 0

    def __ne__(self, other):
        return not self.__eq__(other)

    def __lt__(self, other):
        c = self._cmp(other)
        return c if c is NotImplemented else c < 0

    def __le__(self, other):
        c = self._cmp(other)
        return c if c is NotImplemented else c <= 0

    def __gt__(self, other):
        c = self._cmp(other)
        return c if c is NotImplemented else c > 0

    def __ge__(self, other):
        c = self._cmp(other)
        return c if c is NotImplemented else c >= 0

    def __hash__(self):
        return hash((UUID, bytes(self)))

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

    __str__ = __repr__

    def __reduce__(self):
        return (UUID, (bytes(self),))
