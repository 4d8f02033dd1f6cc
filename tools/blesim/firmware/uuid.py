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
All but the model's own helpers (full, att_equal) is the board process's class too
(tools/blesim/mp/_blesim_uuid.py), which this one extends.
"""

from tools.blesim.mp import _blesim_uuid as _base
from tools.blesim.mp._blesim_uuid import parse

__all__ = ["UUID", "parse"]

_BASE = bytes.fromhex("0000000000001000800000805f9b34fb")  # 00000000-0000-1000-8000-00805f9b34fb


class UUID(_base.UUID):
    __slots__ = ()

    @property
    def _b(self):
        return bytes(self)

    def full(self):
        """128-bit little-endian form (for comparisons across sizes)."""
        b = bytes(self)
        if len(b) == 16:
            return b
        return _BASE[::-1][:12] + b.ljust(4, b"\0")

    def att_equal(self, other):
        """Equal as ATT compares attribute types (16/32-bit the same as their 128-bit form)."""
        return self.full() == UUID(other).full()

    def __reduce__(self):
        return (UUID, (bytes(self),))
