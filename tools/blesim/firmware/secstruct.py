"""NimBLE's `struct ble_store_value_sec`, packed as the firmware hands it to Python.

Layouts (reference §3.5): "88" esp-nimble with bond_count + sign_counter (current ESP32);
"80i" esp-nimble 1.4 after Mar 2024 (bond_count, no sign_counter); "80" upstream NimBLE.
Multi-byte fields little-endian; keys (ltk/irk/csrk) and the address in NimBLE's
little-endian order (the reverse of the MSB-first order used everywhere else); padding zero.

`pack(layout, **fields)` / `unpack(layout, blob)` use MSB-first keys and address (as the SMP
engine and the IRQs do); the reversal happens here, once.
"""

import struct

__all__ = ["pack", "unpack", "size", "store_key"]

_SIZES = {"88": 88, "80": 80, "80i": 80}


def size(layout):
    return _SIZES[layout]


def store_key(addr_type, addr):
    """The 7-byte key of types 1/2: type octet, then the address little-endian."""
    return bytes([addr_type & 1]) + bytes(addr)[::-1]


def _rev(v):
    return bytes(16) if v is None else bytes(v)[::-1]


def pack(layout, addr_type, addr, key_size=16, ediv=0, rand=0, ltk=None, irk=None, csrk=None, sign_counter=0,
         authenticated=False, sc=False, bond_count=0):
    b = bytearray(_SIZES[layout])
    b[0] = addr_type & 1
    b[1:7] = bytes(addr)[::-1]
    if layout == "80":
        b[7] = key_size
        struct.pack_into("<H", b, 8, ediv)
    else:
        struct.pack_into("<HB", b, 8, bond_count, key_size)
        struct.pack_into("<H", b, 12, ediv)
    struct.pack_into("<Q", b, 16, rand)
    b[24:40] = _rev(ltk)
    b[40] = 1 if ltk is not None else 0
    b[41:57] = _rev(irk)
    b[57] = 1 if irk is not None else 0
    b[58:74] = _rev(csrk)
    flags = 1 if csrk is not None else 0
    if layout == "88":
        b[74] = flags
        struct.pack_into("<I", b, 76, sign_counter)
        b[80] = (1 if authenticated else 0) | (2 if sc else 0)
    else:
        b[74] = flags | (2 if authenticated else 0) | (4 if sc else 0)
    return bytes(b)


def unpack(layout, blob):
    b = bytes(blob)
    if len(b) != _SIZES[layout]:
        raise ValueError("blob is %d bytes, layout %s needs %d" % (len(b), layout, _SIZES[layout]))
    d = {"addr_type": b[0], "addr": b[1:7][::-1]}
    if layout == "80":
        d["key_size"] = b[7]
        d["ediv"] = struct.unpack_from("<H", b, 8)[0]
        d["bond_count"] = 0
    else:
        d["bond_count"], d["key_size"] = struct.unpack_from("<HB", b, 8)
        d["ediv"] = struct.unpack_from("<H", b, 12)[0]
    d["rand"] = struct.unpack_from("<Q", b, 16)[0]
    d["ltk"] = b[24:40][::-1] if b[40] & 1 else None
    d["irk"] = b[41:57][::-1] if b[57] & 1 else None
    d["csrk"] = b[58:74][::-1] if b[74] & 1 else None
    if layout == "88":
        d["sign_counter"] = struct.unpack_from("<I", b, 76)[0]
        d["authenticated"] = b[80] & 1
        d["sc"] = (b[80] >> 1) & 1
    else:
        d["sign_counter"] = 0
        d["authenticated"] = (b[74] >> 1) & 1
        d["sc"] = (b[74] >> 2) & 1
    return d
