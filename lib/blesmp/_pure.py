# Byte kernels of the crypto hot path, in plain Python: the fallback for ports
# without the native emitter. Same names and semantics as _viper.py.


def xor16(out, a, b):
    # out[0:16] = a[0:16] XOR b[0:16]; out may alias a or b.
    for i in range(16):
        out[i] = a[i] ^ b[i]


def xor_at(dst, off, src):
    # dst[off:off+16] ^= src[0:16], in place.
    for i in range(16):
        dst[off + i] ^= src[i]


def shl1(out, a):
    # out = a << 1 as a 128-bit big-endian number; returns the bit shifted out.
    carry = 0
    for i in range(15, -1, -1):
        v = a[i]
        out[i] = ((v << 1) | carry) & 0xFF
        carry = v >> 7
    return carry


def ct_eq(a, b, n):
    # Compares a[0:n] and b[0:n] in time independent of where they differ.
    d = 0
    for i in range(n):
        d |= a[i] ^ b[i]
    return d == 0


# --- Resolvable private addresses (resolver.py); see _viper.py ------------


def rpa_find(encs, blk, out, addr):
    # Index of the first IRK whose ah(irk, prand) equals the address hash, or -1.
    for i in range(13):
        blk[i] = 0
    blk[13] = addr[0]
    blk[14] = addr[1]
    blk[15] = addr[2]
    h0 = addr[3]
    h1 = addr[4]
    h2 = addr[5]
    for i in range(len(encs)):
        encs[i](blk, out)
        if out[15] == h2 and out[14] == h1 and out[13] == h0:
            return i
    return -1


def rpa_cache_get(tab, mask, addr):
    # Slot of addr in the 4-way set-associative cache, or -1.
    s = (addr[5] & mask) << 2
    for j in range(4):
        e = (s + j) << 3
        if (tab[e] == 1 and tab[e + 6] == addr[5] and tab[e + 5] == addr[4] and tab[e + 4] == addr[3]
                and tab[e + 1] == addr[0] and tab[e + 2] == addr[1] and tab[e + 3] == addr[2]):
            return s + j
    return -1


def rpa_cache_put(tab, mask, addr):
    # Stores addr in its set (an invalid way first, else round robin); returns the slot.
    st = addr[5] & mask
    s = st << 2
    w = -1
    for j in range(4):
        if tab[(s + j) << 3] != 1:
            w = j
            break
    if w < 0:
        c = ((mask + 1) << 5) + st
        w = tab[c] & 3
        tab[c] = (w + 1) & 3
    e = (s + w) << 3
    tab[e] = 1
    for j in range(6):
        tab[e + 1 + j] = addr[j]
    tab[e + 7] = 0
    return s + w


def addr_find(ids, n, t, addr):
    # Index of (t, addr) in ids = n records of 7 octets (type, address), or -1.
    for i in range(n):
        r = i * 7
        if (ids[r] == (t & 0xFF) and ids[r + 6] == addr[5] and ids[r + 5] == addr[4] and ids[r + 4] == addr[3]
                and ids[r + 3] == addr[2] and ids[r + 2] == addr[1] and ids[r + 1] == addr[0]):
            return i
    return -1


def rpa_resolve(self, addr_type, addr):
    # The body of resolver.Resolver.resolve; see _viper.py.
    if len(addr) != 6:
        raise ValueError("addr must be 6 bytes")
    if addr_type != 1 or (addr[0] & 0xC0) != 0x40:
        return None
    encs, ibonds, _ids, _n, _bonds, tab, cres, mask, blk, out = self._st
    if mask < 0:
        i = rpa_find(encs, blk, out, addr)
        return ibonds[i] if i >= 0 else None
    s = rpa_cache_get(tab, mask, addr)
    if s >= 0:
        return cres[s]
    i = rpa_find(encs, blk, out, addr)
    b = ibonds[i] if i >= 0 else None
    cres[rpa_cache_put(tab, mask, addr)] = b
    return b


def rpa_identify(self, addr_type, addr):
    # The body of resolver.Resolver.identify; see _viper.py.
    if len(addr) != 6:
        raise ValueError("addr must be 6 bytes")
    if addr_type == 1:
        top = addr[0] & 0xC0
        if top == 0x40:
            return rpa_resolve(self, 1, addr)
        if top != 0xC0:
            return None  # NRPA or reserved: never an identity
    elif addr_type != 0:
        return None
    st = self._st
    i = addr_find(st[2], st[3], addr_type, addr)
    return st[4][i] if i >= 0 else None


def cmac_pad(buf, n, k1, k2, iv):
    # Prepares buf[0:n] for a one-call CBC-MAC (RFC 4493): pads a partial last
    # block with 0x80 0x00.., XORs the last block with K1 (complete) or K2
    # (padded), and the first block with iv. Returns the number of blocks.
    blocks = (n + 15) >> 4 or 1
    last = (blocks - 1) << 4
    sub = k1
    if n == 0 or n & 15:
        sub = k2
        buf[n] = 0x80
        for i in range(n + 1, last + 16):
            buf[i] = 0
    for i in range(16):
        buf[last + i] ^= sub[i]
    for i in range(16):
        buf[i] ^= iv[i]
    return blocks
