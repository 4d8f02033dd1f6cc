"""What `bluetooth.UUID` makes of its argument and how it prints (extmod/modbluetooth.c
`bluetooth_uuid_make_new`, `bluetooth_uuid_print`), for both UUID classes of the simulator: the
firmware model's (tools/blesim/firmware/uuid.py, in the broker) and a board process's
(bluetooth.py here, on MicroPython and CPython). Written in the subset both interpreters share.
Not `_uuid`: CPython's uuid module imports a `_uuid` of its own, and this folder comes first on a
CPython board's path."""

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
