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
