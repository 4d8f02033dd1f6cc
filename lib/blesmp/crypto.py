# The SMP crypto toolbox (Bluetooth Core Vol 3 Part H 2.2).
#
# Every byte string is in the specification's printed order, most significant
# octet first; values from the air (LSB first) are reversed by the caller, once.
# AES comes from cryptolib: one ECB and one CBC object per key, built once and
# kept in a small cache, encrypting into preallocated buffers.
import cryptolib
from micropython import const

try:
    from ._viper import cmac_pad, ct_eq, shl1, xor16

    BACKEND = "viper"
except (SyntaxError, ImportError, ValueError):  # ValueError: .mpy of another arch / no native emitter
    from ._pure import cmac_pad, ct_eq, shl1, xor16

    BACKEND = "python"

__all__ = ("e", "aes_cmac", "ah", "c1", "s1", "f4", "f5", "f6", "g2", "h6", "h7", "ct_eq", "BACKEND")

_ECB = const(1)
_CBC = const(2)
_CACHE_MAX = const(8)
_BUF = const(96)  # the longest toolbox message is g2's 80 bytes

_ZERO16 = bytes(16)
_SALT_F5 = b"\x6c\x88\x83\x91\xaa\xf5\xa5\x38\x60\x37\x0b\xdb\x5a\x60\x83\xbe"
_KEYID_F5 = b"btle"

_buf = bytearray(_BUF)  # message assembly, shared by every CMAC call
_out = bytearray(16)


def _need(name, v, n):
    if not isinstance(v, (bytes, bytearray, memoryview)):
        raise ValueError(name + " must be bytes, not " + type(v).__name__)
    if n is not None and len(v) != n:
        raise ValueError("%s must be %d bytes, got %d" % (name, n, len(v)))


def _int(name, v, top):
    if not isinstance(v, int) or not 0 <= v <= top:
        raise ValueError("%s must be an int 0..%d" % (name, top))


class _Key:
    # One AES key: an ECB object for single blocks, a CBC object for CMAC, and
    # the CMAC subkeys. cryptolib keeps the CBC chaining value across calls;
    # `iv` tracks it so each CMAC cancels it out instead of building an object.
    __slots__ = ("ecb", "cbc", "iv", "k1", "k2")

    def __init__(self, key):
        self.ecb = cryptolib.aes(key, _ECB)
        self.cbc = cryptolib.aes(key, _CBC, _ZERO16)
        self.iv = _ZERO16
        # RFC 4493 2.3: L = E(K, 0); K1 = L << 1 (^ Rb); K2 = K1 << 1 (^ Rb).
        lk = bytearray(16)
        self.ecb.encrypt(_ZERO16, lk)
        self.k1 = bytearray(16)
        if shl1(self.k1, lk):
            self.k1[15] ^= 0x87
        self.k2 = bytearray(16)
        if shl1(self.k2, self.k1):
            self.k2[15] ^= 0x87


_cache = {}  # type: dict
_last_key = None  # the last bytes key looked up, and its entry: callers that
_last_entry = None  # repeat one key (the resolver, a pairing) skip hashing it


def _key(key):
    global _last_key, _last_entry
    if key is _last_key:
        return _last_entry
    k = bytes(key)
    entry = _cache.get(k)
    if entry is None:
        if len(_cache) >= _CACHE_MAX:
            del _cache[next(iter(_cache))]
        entry = _cache[k] = _Key(k)
    if type(key) is bytes:  # immutable, so identity means same key
        _last_key = key
        _last_entry = entry
    return entry


# Views of _buf for 1.._BUF/16 blocks and of each last block, made once so
# that a CMAC allocates nothing but its result.
_views = [memoryview(_buf)[: 16 * i] for i in range(_BUF // 16 + 1)]
_tails = [memoryview(_buf)[16 * i - 16 : 16 * i] for i in range(1, _BUF // 16 + 1)]


def _cmac(entry, n, buf=_buf):
    # AES-CMAC of buf[0:n] (RFC 4493) in one CBC call. cryptolib chains CBC
    # across calls, so the first block is XORed with the previous tag (entry.iv)
    # to start from a zero IV again.
    blocks = cmac_pad(buf, n, entry.k1, entry.k2, entry.iv)
    if buf is _buf:
        mv = _views[blocks]
        entry.cbc.encrypt(mv, mv)
        tag = bytes(_tails[blocks - 1])
    else:
        mv = memoryview(buf)[: blocks << 4]
        entry.cbc.encrypt(mv, mv)
        tag = bytes(mv[(blocks - 1) << 4 :])
    entry.iv = tag
    return tag


def _put(off, v):
    _buf[off : off + len(v)] = v
    return off + len(v)


def e(key, block):
    """Security function e: AES-128 of one 16-byte block."""
    _need("key", key, 16)
    _need("block", block, 16)
    _key(key).ecb.encrypt(block, _out)
    return bytes(_out)


def aes_cmac(key, msg):
    """AES-CMAC (RFC 4493) of msg under a 16-byte key."""
    if key is not _last_key:
        _need("key", key, 16)
    try:
        n = len(msg)
        buf = _buf if n + 16 <= _BUF else bytearray(n + 16)
        buf[0:n] = msg
    except TypeError:
        _need("msg", msg, None)
        raise
    return _cmac(_last_entry if key is _last_key else _key(key), n, buf)


_ah_in = bytearray(16)  # 13 zero bytes of padding, then r
_ah_out = bytearray(16)
_ah_hash = memoryview(_ah_out)[13:16]


def ah(irk, r3):
    """Random address hash: ah(k, r) = e(k, padding || r) mod 2^24 (3 bytes)."""
    if irk is not _last_key:
        _need("irk", irk, 16)
    try:
        if len(r3) != 3:
            raise TypeError
        _ah_in[13:16] = r3
    except TypeError:
        _need("r3", r3, 3)
        raise
    (_last_entry if irk is _last_key else _key(irk)).ecb.encrypt(_ah_in, _ah_out)
    return bytes(_ah_hash)


def c1(k, r, preq, pres, iat, rat, ia, ra):
    """Legacy confirm value: e(k, e(k, r ^ p1) ^ p2)."""
    _need("k", k, 16)
    _need("r", r, 16)
    _need("preq", preq, 7)
    _need("pres", pres, 7)
    _int("iat", iat, 1)
    _int("rat", rat, 1)
    _need("ia", ia, 6)
    _need("ra", ra, 6)
    p = bytearray(16)
    p[0:7] = pres
    p[7:14] = preq
    p[14] = rat
    p[15] = iat
    entry = _key(k)
    xor16(p, p, r)
    entry.ecb.encrypt(p, p)
    for i in range(4):
        _out[i] = 0
    _out[4:10] = ia
    _out[10:16] = ra
    xor16(p, p, _out)
    entry.ecb.encrypt(p, p)
    return bytes(p)


def s1(k, r1, r2):
    """Legacy STK: e(k, r1[8:] || r2[8:])."""
    _need("k", k, 16)
    _need("r1", r1, 16)
    _need("r2", r2, 16)
    p = bytearray(16)
    p[0:8] = r1[8:16]
    p[8:16] = r2[8:16]
    _key(k).ecb.encrypt(p, p)
    return bytes(p)


def f4(u, v, x, z):
    """LE SC confirm value: AES-CMAC_x(u || v || z)."""
    _need("u", u, 32)
    _need("v", v, 32)
    _need("x", x, 16)
    _int("z", z, 255)
    _put(0, u)
    _put(32, v)
    _buf[64] = z
    return _cmac(_key(x), 65)


def f5(w, n1, n2, a1, a2):
    """LE SC key generation: returns (MacKey, LTK)."""
    _need("w", w, 32)
    _need("n1", n1, 16)
    _need("n2", n2, 16)
    _need("a1", a1, 7)
    _need("a2", a2, 7)
    _put(0, w)
    t = _cmac(_key(_SALT_F5), 32)
    entry = _key(t)
    out = []
    for counter in (0, 1):
        _buf[0] = counter
        off = _put(1, _KEYID_F5)
        off = _put(off, n1)
        off = _put(off, n2)
        off = _put(off, a1)
        off = _put(off, a2)
        _buf[off] = 0x01
        _buf[off + 1] = 0x00
        out.append(_cmac(entry, off + 2))
    return out[0], out[1]


def f6(w, n1, n2, r, io_cap, a1, a2):
    """LE SC DHKey check: AES-CMAC_w(n1 || n2 || r || io_cap || a1 || a2)."""
    _need("w", w, 16)
    _need("n1", n1, 16)
    _need("n2", n2, 16)
    _need("r", r, 16)
    _need("io_cap", io_cap, 3)
    _need("a1", a1, 7)
    _need("a2", a2, 7)
    off = _put(0, n1)
    off = _put(off, n2)
    off = _put(off, r)
    off = _put(off, io_cap)
    off = _put(off, a1)
    off = _put(off, a2)
    return _cmac(_key(w), off)


def g2(u, v, x, y):
    """LE SC numeric comparison value: AES-CMAC_x(u || v || y) mod 2^32.
    The number shown to the user is g2(...) % 1000000."""
    _need("u", u, 32)
    _need("v", v, 32)
    _need("x", x, 16)
    _need("y", y, 16)
    _put(0, u)
    _put(32, v)
    _put(64, y)
    t = _cmac(_key(x), 80)
    return (t[12] << 24) | (t[13] << 16) | (t[14] << 8) | t[15]


def h6(w, key_id):
    """Link key conversion: AES-CMAC_w(key_id)."""
    _need("w", w, 16)
    _need("key_id", key_id, 4)
    _put(0, key_id)
    return _cmac(_key(w), 4)


def h7(salt, w):
    """Link key conversion with a salt: AES-CMAC_salt(w)."""
    _need("salt", salt, 16)
    _need("w", w, 16)
    _put(0, w)
    return _cmac(_key(salt), 16)
