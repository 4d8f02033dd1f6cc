# Byte kernels of the crypto hot path, compiled by MicroPython's viper emitter.
# Viper ints are machine words (32-bit on ESP32, 64-bit on the x64 host), so
# every result stored or returned is masked to give identical answers on both.
import sys

import micropython

if sys.implementation.name != "micropython":
    # CPython cannot run viper code; crypto.py then uses _pure.
    raise ImportError("viper needs MicroPython's native emitter")


@micropython.viper
def xor16(out: ptr8, a: ptr8, b: ptr8):  # noqa: F821
    i = 0
    while i < 16:
        out[i] = (a[i] ^ b[i]) & 0xFF
        i += 1


@micropython.viper
def xor_at(dst: ptr8, off: int, src: ptr8):  # noqa: F821
    i = 0
    while i < 16:
        dst[off + i] = (dst[off + i] ^ src[i]) & 0xFF
        i += 1


@micropython.viper
def shl1(out: ptr8, a: ptr8) -> int:  # noqa: F821
    carry = 0
    i = 15
    while i >= 0:
        v = a[i]
        out[i] = ((v << 1) | carry) & 0xFF
        carry = (v >> 7) & 1
        i -= 1
    return carry


@micropython.viper
def ct_eq(a: ptr8, b: ptr8, n: int) -> bool:  # noqa: F821
    d = 0
    i = 0
    while i < n:
        d = d | (a[i] ^ b[i])
        i += 1
    return (d & 0xFF) == 0
