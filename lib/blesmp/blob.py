"""NimBLE's `struct ble_store_value_sec` as MicroPython's firmware hands it over.

`_IRQ_SET_SECRET` gives, for sec types 1 (our keys) and 2 (peer keys), the raw
memory of that C struct; `_IRQ_GET_SECRET` must return a buffer of exactly the
struct's size or NimBLE treats it as "not found".  Three layouts exist (all
little-endian, padding zero because NimBLE memsets the struct):

``ESP88`` (88 bytes, esp-nimble with `bond_count` and `sign_counter`: ESP-IDF
5.4/5.5, MicroPython >= 1.26)::

    0 addr type | 1..6 addr (LSB first) | 8 u16 bond_count | 10 key_size
    12 u16 ediv | 16 u64 rand | 24 ltk[16] | 40 ltk_present | 41 irk[16]
    57 irk_present | 58 csrk[16] | 74 csrk_present | 76 u32 sign_counter
    80 bit0 authenticated, bit1 sc

``ESP80`` (80 bytes, esp-nimble 1.4 after Mar 2024: `bond_count`, no
`sign_counter`): offsets as ESP88 up to 74, where bit0 = csrk_present,
bit1 = authenticated, bit2 = sc.

``NIMBLE80`` (80 bytes, upstream NimBLE: MicroPython on STM32/rp2/unix and
older ESP32 builds such as v1.23): 7 key_size | 8 u16 ediv | 16 u64 rand |
24 ltk | 40 ltk_present | 41 irk | 57 irk_present | 58 csrk | 74 bit0
csrk_present, bit1 authenticated, bit2 sc.

`detect(blob)` tells them apart: 88 bytes is ESP88; of the 80-byte ones,
NIMBLE80 has key_size (7..16) at byte 7, where ESP80 has padding (0).  A blob
without an LTK has zeros in bytes 7..15 in both 80-byte layouts, so the two
readings agree.

`Sec` is a decoded value with the package's byte-order convention: `addr`,
`ltk`, `irk`, `csrk` MSB first (addresses as the IRQs show them, keys in the
specification's printed order, ready for `blesmp.crypto`), `None` for a key
that is not present.  `encode(sec, layout)` builds the raw blob again;
`convert(blob, layout)` re-lays a stored blob for another firmware.
"""

import struct

from .secinfo import ESP80, ESP88, NIMBLE80, addr_key, detect, info  # noqa: F401 (part of this API)

LAYOUTS = (ESP88, ESP80, NIMBLE80)
SIZES = {ESP88: 88, ESP80: 80, NIMBLE80: 80}

# One struct format per layout, all with the same 14 fields in this order:
# type, addr, bond_count, key_size, ediv, rand, ltk, ltk_p, irk, irk_p,
# csrk, csrk_p(+flags), sign_counter, flags80
_FMT = {
    ESP88: "<B6sxHBxH2xQ16sB16sB16sBxIB7x",
    ESP80: "<B6sxHBxH2xQ16sB16sB16sB5x",
    NIMBLE80: "<B6sBH6xQ16sB16sB16sB5x",
}


def _rev(b):
    return bytes(reversed(bytes(b)))


class Sec:
    """One decoded `ble_store_value_sec` (see the module docstring)."""

    def __init__(self):
        self.addr_type = 0
        self.addr = bytes(6)
        self.bond_count = 0
        self.key_size = 0
        self.ediv = 0
        self.rand = 0
        self.ltk = None
        self.irk = None
        self.csrk = None
        self.sign_counter = 0
        self.authenticated = 0
        self.sc = 0

    def __repr__(self):
        from .text import repr_of

        return repr_of(self)


def decode(blob, layout=None):
    """Decodes a raw blob (layout detected from its size unless given) into a `Sec`."""
    layout = layout or detect(blob)
    if layout not in _FMT or len(blob) != SIZES[layout]:
        raise ValueError("blob size")
    if layout == NIMBLE80:
        t, a, ks, ediv, rand, ltk, lp, irk, ip, csrk, cp = struct.unpack(_FMT[layout], blob)
        bc = sc_cnt = 0
        flags = cp >> 1
    elif layout == ESP80:
        t, a, bc, ks, ediv, rand, ltk, lp, irk, ip, csrk, cp = struct.unpack(_FMT[layout], blob)
        sc_cnt = 0
        flags = cp >> 1
    else:
        t, a, bc, ks, ediv, rand, ltk, lp, irk, ip, csrk, cp, sc_cnt, flags = struct.unpack(_FMT[layout], blob)
    s = Sec()
    s.addr_type = t
    s.addr = _rev(a)
    s.bond_count = bc
    s.key_size = ks
    s.ediv = ediv
    s.rand = rand
    s.ltk = _rev(ltk) if lp & 1 else None
    s.irk = _rev(irk) if ip & 1 else None
    s.csrk = _rev(csrk) if cp & 1 else None
    s.sign_counter = sc_cnt
    s.authenticated = flags & 1
    s.sc = (flags >> 1) & 1
    return s


def _key(k):
    return bytes(16) if k is None else _rev(k)


def encode(s, layout):
    """The raw blob of `Sec` s in the given layout."""
    if layout not in _FMT:
        raise ValueError("layout")
    flags = (1 if s.authenticated else 0) | (2 if s.sc else 0)
    cp = 1 if s.csrk is not None else 0
    a = (s.addr_type, _rev(s.addr))
    if layout != NIMBLE80:
        a += (s.bond_count,)
    a += (s.key_size, s.ediv, s.rand, _key(s.ltk), 1 if s.ltk is not None else 0,
          _key(s.irk), 1 if s.irk is not None else 0, _key(s.csrk))
    if layout == ESP88:
        a += (cp, s.sign_counter, flags)
    else:
        a += (cp | (flags << 1),)
    return struct.pack(_FMT[layout], *a)


def fits(blob, layout):
    """True if `blob` can be served as `layout` unchanged (an 80-byte blob without an LTK
    reads the same in both 80-byte layouts)."""
    return len(blob) == SIZES[layout] and (layout == ESP88 or not blob[40] & 1 or detect(blob) == layout)


def convert(blob, layout):
    """`blob` re-laid for `layout` (the same object if it already fits)."""
    if blob is None or fits(blob, layout):
        return blob
    return encode(decode(blob), layout)


_ALIAS = {"88": ESP88, "80i": ESP80, "80": NIMBLE80}  # the simulator's profile names


def layout_arg(layout):
    """The layout name of a `layout=` argument (also the simulator's names); ValueError if unknown."""
    layout = _ALIAS.get(layout, layout)
    if layout is not None and layout not in LAYOUTS:
        raise ValueError("layout")
    return layout
