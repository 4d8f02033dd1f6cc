# Byte kernels of the crypto hot path, compiled by MicroPython's viper emitter.
# ruff: noqa: F821  (ptr8, ptr32, uint are viper built-ins)
# Viper ints are machine words (32-bit on ESP32, 64-bit on the x64 host), so
# every result stored or returned is masked to give identical answers on both.
import sys

import micropython

if sys.implementation.name != "micropython":
    # CPython cannot run viper code; crypto.py then uses _pure.
    raise ImportError("viper needs MicroPython's native emitter")


@micropython.viper
def xor16(out: ptr8, a: ptr8, b: ptr8):
    # Word-wise when all three buffers are 4-byte aligned (Xtensa faults on
    # unaligned ptr32 access; memoryview slices can be at any offset).
    if ((uint(out) | uint(a) | uint(b)) & 3) == uint(0):
        o = ptr32(out)
        x = ptr32(a)
        y = ptr32(b)
        o[0] = x[0] ^ y[0]
        o[1] = x[1] ^ y[1]
        o[2] = x[2] ^ y[2]
        o[3] = x[3] ^ y[3]
        return
    i = 0
    while i < 16:
        out[i] = (a[i] ^ b[i]) & 0xFF
        i += 1


@micropython.viper
def xor_at(dst: ptr8, off: int, src: ptr8):
    i = 0
    while i < 16:
        dst[off + i] = (dst[off + i] ^ src[i]) & 0xFF
        i += 1


@micropython.viper
def shl1(out: ptr8, a: ptr8) -> int:
    carry = 0
    i = 15
    while i >= 0:
        v = a[i]
        out[i] = ((v << 1) | carry) & 0xFF
        carry = (v >> 7) & 1
        i -= 1
    return carry


@micropython.viper
def ct_eq(a: ptr8, b: ptr8, n: int) -> bool:
    d = 0
    i = 0
    while i < n:
        d = d | (a[i] ^ b[i])
        i += 1
    return (d & 0xFF) == 0


# --- Resolvable private addresses (resolver.py) ---------------------------
# addr is 6 bytes MSB-first: prand = addr[0:3], hash = addr[3:6]. Every value
# is built from ptr8 loads (0..255) and stays below 2**24, so 32-bit and
# 64-bit viper give the same answers.


@micropython.viper
def rpa_find(encs, blk, out, addr: ptr8) -> int:  # noqa: F821
    # Index of the first IRK (encs[i] = a bound cryptolib ECB `encrypt`) whose
    # ah(irk, prand) equals the address hash, or -1. blk and out are 16-byte
    # bytearrays reused on every call: blk = 13 zero octets || prand.
    b = ptr8(blk)  # noqa: F821
    o = ptr8(out)  # noqa: F821
    i = 0
    while i < 13:
        b[i] = 0
        i += 1
    b[13] = addr[0]
    b[14] = addr[1]
    b[15] = addr[2]
    h = ((addr[3] << 16) | (addr[4] << 8) | addr[5]) & 0xFFFFFF
    n = int(len(encs))
    i = 0
    while i < n:
        encs[i](blk, out)
        if (((o[13] << 16) | (o[14] << 8) | o[15]) & 0xFFFFFF) == h:
            return i
        i += 1
    return -1


@micropython.viper
def rpa_cache_get(tab: ptr8, mask: int, addr: ptr8) -> int:  # noqa: F821
    # Looks addr up in a 4-way set-associative cache: set = addr[5] & mask,
    # entries of 8 octets (1 = valid, then the 6 address octets, then 0).
    # Returns the slot number or -1.
    s = (addr[5] & mask) << 2
    j = 0
    while j < 4:
        e = (s + j) << 3
        if (tab[e] == 1 and tab[e + 6] == addr[5] and tab[e + 5] == addr[4] and tab[e + 4] == addr[3]
                and tab[e + 1] == addr[0] and tab[e + 2] == addr[1] and tab[e + 3] == addr[2]):
            return s + j
        j += 1
    return -1


@micropython.viper
def rpa_cache_put(tab: ptr8, mask: int, addr: ptr8) -> int:  # noqa: F821
    # Stores addr in its set (an invalid way first, else round robin; the
    # per-set counters follow the entries) and returns the slot number.
    st = addr[5] & mask
    s = st << 2
    w = -1
    j = 0
    while j < 4:
        if tab[(s + j) << 3] != 1:
            w = j
            break
        j += 1
    if w < 0:
        c = ((mask + 1) << 5) + st
        w = tab[c] & 3
        tab[c] = (w + 1) & 3
    e = (s + w) << 3
    tab[e] = 1
    j = 0
    while j < 6:
        tab[e + 1 + j] = addr[j]
        j += 1
    tab[e + 7] = 0
    return s + w


@micropython.viper
def addr_find(ids: ptr8, n: int, t: int, addr: ptr8) -> int:  # noqa: F821
    # Index of (t, addr) in ids = n records of 7 octets (type, 6 address
    # octets), or -1.
    i = 0
    while i < n:
        r = i * 7
        if (ids[r] == (t & 0xFF) and ids[r + 6] == addr[5] and ids[r + 5] == addr[4] and ids[r + 4] == addr[3]
                and ids[r + 3] == addr[2] and ids[r + 2] == addr[1] and ids[r + 1] == addr[0]):
            return i
        i += 1
    return -1


_NONE = None  # viper types a literal None apart from objects; a global is an object
_len = len  # a module global is found faster than the builtin


@micropython.viper
def rpa_resolve(self, addr_type: int, addr):  # noqa: F821
    # The body of resolver.Resolver.resolve: RPA check, cache lookup (inline),
    # then the AES loop. self._st = (encs, ibonds, ids, n, bonds, tab, cres,
    # mask, blk, out); mask < 0 means no cache.
    if int(_len(addr)) != 6:
        raise ValueError("addr must be 6 bytes")
    a = ptr8(addr)  # noqa: F821
    if addr_type != 1 or (a[0] & 0xC0) != 0x40:
        return _NONE
    st = self._st
    mask = int(st[7])
    if mask >= 0:
        t = ptr8(st[5])  # noqa: F821
        s = (a[5] & mask) << 2
        j = 0
        while j < 4:
            e = (s + j) << 3
            if (t[e] == 1 and t[e + 6] == a[5] and t[e + 5] == a[4] and t[e + 4] == a[3]
                    and t[e + 1] == a[0] and t[e + 2] == a[1] and t[e + 3] == a[2]):
                return st[6][s + j]
            j += 1
    i = int(rpa_find(st[0], st[8], st[9], addr))
    b = _NONE
    if i >= 0:
        b = st[1][i]
    if mask >= 0:
        st[6][int(rpa_cache_put(st[5], mask, addr))] = b
    return b


@micropython.viper
def rpa_identify(self, addr_type: int, addr):  # noqa: F821
    # The body of resolver.Resolver.identify: an RPA is resolved, a public or
    # static address is looked up among the bonds' identity addresses.
    if int(_len(addr)) != 6:
        raise ValueError("addr must be 6 bytes")
    a = ptr8(addr)  # noqa: F821
    if addr_type == 1:
        top = a[0] & 0xC0
        if top == 0x40:
            return rpa_resolve(self, 1, addr)
        if top != 0xC0:
            return _NONE  # NRPA or reserved: never an identity
    elif addr_type != 0:
        return _NONE
    st = self._st
    i = int(addr_find(st[2], st[3], addr_type, addr))
    if i < 0:
        return _NONE
    return st[4][i]


@micropython.viper
def cmac_pad(buf: ptr8, n: int, k1: ptr8, k2: ptr8, iv: ptr8) -> int:
    blocks = (n + 15) >> 4
    if blocks == 0:
        blocks = 1
    last = (blocks - 1) << 4
    sub = k1
    if n == 0 or (n & 15) != 0:
        sub = k2
        buf[n] = 0x80
        i = n + 1
        while i < last + 16:
            buf[i] = 0
            i += 1
    i = 0
    while i < 16:
        buf[last + i] = (buf[last + i] ^ sub[i]) & 0xFF
        i += 1
    i = 0
    while i < 16:
        buf[i] = (buf[i] ^ iv[i]) & 0xFF
        i += 1
    return blocks
