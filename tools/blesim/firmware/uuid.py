"""`bluetooth.UUID` as MicroPython implements it (16-, 32- and 128-bit; printed like the board)."""

__all__ = ["UUID"]

_BASE = bytes.fromhex("0000000000001000800000805f9b34fb")  # 00000000-0000-1000-8000-00805f9b34fb


class UUID:
    __slots__ = ("_b",)  # little-endian bytes, 2, 4 or 16 long

    def __init__(self, value):
        if isinstance(value, UUID):
            self._b = value._b
        elif isinstance(value, int) and not isinstance(value, bool):
            if 0 <= value <= 0xFFFF:
                self._b = value.to_bytes(2, "little")
            elif 0 <= value <= 0xFFFFFFFF:
                self._b = value.to_bytes(4, "little")
            else:
                raise ValueError("invalid UUID")
        elif isinstance(value, str):
            h = value.replace("-", "")
            if len(h) != 32:
                raise ValueError("invalid UUID")
            try:
                self._b = bytes.fromhex(h)[::-1]
            except ValueError:
                raise ValueError("invalid UUID") from None
        elif isinstance(value, (bytes, bytearray, memoryview)):
            b = bytes(value)
            if len(b) not in (2, 4, 16):
                raise ValueError("invalid UUID")
            self._b = b
        else:
            raise ValueError("invalid UUID")

    # bytes(uuid) gives the little-endian value, as on the board
    def __bytes__(self):
        return self._b

    def __buffer__(self, flags):
        return memoryview(self._b)

    def __len__(self):
        return len(self._b)

    def full(self):
        """128-bit little-endian form (for comparisons across sizes)."""
        if len(self._b) == 16:
            return self._b
        return _BASE[::-1][:12] + self._b.ljust(4, b"\0")

    def __eq__(self, other):
        if not isinstance(other, UUID):
            return NotImplemented
        return self.full() == other.full()

    def __hash__(self):
        return hash(self.full())

    def __repr__(self):
        b = self._b
        if len(b) == 2:
            return "UUID(0x%04x)" % int.from_bytes(b, "little")
        if len(b) == 4:
            return "UUID(0x%08x)" % int.from_bytes(b, "little")
        h = b[::-1].hex()
        return "UUID('%s-%s-%s-%s-%s')" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])

    __str__ = __repr__
