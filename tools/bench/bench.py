# make bench: speed and memory figures, measured in one run and printed as
# ratios against the floor (one AES block). Runs under MicroPython (the figures
# that count) and under CPython for comparison:
#   MICROPYPATH=lib:tools/bench:.frozen micropython tools/bench/bench.py [--json]
# Each module of PARTS (beside this file in tools/bench/) exposing run(timeit, record) adds figures.
import gc
import os
import sys
import time

try:
    from time import ticks_diff, ticks_us
except ImportError:  # CPython: the board modules come from the simulator's stand-ins
    _root = __file__.rsplit("/", 3)[0] if __file__.count("/") >= 3 else "."
    sys.path[:0] = [_root + "/lib", _root + "/tools/blesim/modules", _root + "/tools/bench"]

    def ticks_us():
        return time.perf_counter_ns() // 1000

    def ticks_diff(a, b):
        return a - b


import cryptolib

from blesmp import _pure, crypto

try:
    from blesmp import _viper
except (SyntaxError, ImportError):
    _viper = None

RESULTS = {}
ORDER = []
PARTS = ("store", "resolver", "heap")


def timeit(fn, n=200, runs=7):
    """Microseconds per call of fn(): the best of `runs` runs of n calls, each
    started on a freshly collected heap. The best run is the one least
    disturbed by other load on the machine, so ratios stay comparable."""
    fn()
    per = []
    for _ in range(runs):
        gc.collect()
        t0 = ticks_us()
        for _ in range(n):
            fn()
        per.append(ticks_diff(ticks_us(), t0) / n)
    return min(per)


def record(name, value):
    if name not in RESULTS:
        ORDER.append(name)
    RESULTS[name] = value


_RB = bytes(15) + b"\x87"


def naive_cmac(key, msg):
    # RFC 4493 the way most MicroPython code would write it: a new cipher
    # object per block, XOR by a generator, the shift through a big int.
    def enc(block):
        return cryptolib.aes(key, 1).encrypt(block)

    def xor(a, b):
        return bytes(x ^ y for x, y in zip(a, b))

    def shl(b):
        return ((int.from_bytes(b, "big") << 1) & ((1 << 128) - 1)).to_bytes(16, "big")

    lk = enc(bytes(16))
    k1 = xor(shl(lk), _RB) if lk[0] & 0x80 else shl(lk)
    k2 = xor(shl(k1), _RB) if k1[0] & 0x80 else shl(k1)
    n = (len(msg) + 15) // 16 or 1
    last = msg[(n - 1) * 16 :]
    if len(msg) and len(msg) % 16 == 0:
        last = xor(last, k1)
    else:
        last = xor(last + b"\x80" + bytes(15 - len(last)), k2)
    x = bytes(16)
    for i in range(n - 1):
        x = enc(xor(x, msg[i * 16 : i * 16 + 16]))
    return enc(xor(x, last))


def crypto_figures():
    key = bytes(range(16))
    ecb = cryptolib.aes(key, 1)
    blk = bytes(range(16, 32))
    out = bytearray(16)
    record("aes_block_us", timeit(lambda: ecb.encrypt(blk, out), 1000))
    irk = os.urandom(16)
    r3 = b"\x70\x81\x94"
    record("ah_us", timeit(lambda: crypto.ah(irk, r3), 500))
    m16 = os.urandom(16)
    m64 = os.urandom(64)
    assert naive_cmac(key, m64) == crypto.aes_cmac(key, m64)
    record("cmac16_us", timeit(lambda: crypto.aes_cmac(key, m16), 500))
    record("cmac64_us", timeit(lambda: crypto.aes_cmac(key, m64), 500))
    record("naive_cmac64_us", timeit(lambda: naive_cmac(key, m64), 50))
    a7 = os.urandom(7)
    a6 = os.urandom(6)
    r = os.urandom(16)
    u = os.urandom(32)
    record("c1_us", timeit(lambda: crypto.c1(key, r, a7, a7, 1, 0, a6, a6), 300))
    record("s1_us", timeit(lambda: crypto.s1(key, r, r), 300))
    record("f4_us", timeit(lambda: crypto.f4(u, u, key, 0), 300))
    record("f5_us", timeit(lambda: crypto.f5(u, r, r, a7, a7), 100))
    record("f6_us", timeit(lambda: crypto.f6(key, r, r, r, a7[:3], a7, a7), 300))
    record("g2_us", timeit(lambda: crypto.g2(u, u, key, r), 300))
    a = bytearray(os.urandom(16))
    b = bytearray(os.urandom(16))
    o = bytearray(16)
    record("xor16_python_us", timeit(lambda: _pure.xor16(o, a, b), 500))
    if _viper is not None:
        record("xor16_viper_us", timeit(lambda: _viper.xor16(o, a, b), 1000))
    record("backend", crypto.BACKEND)


GOALS = (
    # (label, numerator, denominator, limit, "max" = ratio must be <= limit, "min" >=)
    ("ah / aes_block", "ah_us", "aes_block_us", 1.5, "max"),
    ("cmac64 / aes_block", "cmac64_us", "aes_block_us", 8.0, "max"),
    ("naive_cmac64 / cmac64", "naive_cmac64_us", "cmac64_us", 20.0, "min"),
    ("xor16 python / viper", "xor16_python_us", "xor16_viper_us", 8.0, "min"),
    ("resolve per IRK / aes_block", "resolve_per_irk_us", "aes_block_us", 1.5, "max"),
    ("resolve cached hit / aes_block", "resolve_hit_cached_us", "aes_block_us", 0.5, "max"),
)


def main(argv):
    impl = sys.implementation.name
    crypto_figures()
    for name in PARTS:
        try:
            mod = __import__(name)
        except ImportError as e:
            print("(bench part %s not available: %s)" % (name, e))
            continue
        mod.run(timeit, record)
    print("blesmp bench on %s, crypto backend %s" % (impl, crypto.BACKEND))
    for name in ORDER:
        v = RESULTS[name]
        print("  %-28s %s" % (name, ("%.2f" % v) if isinstance(v, float) else v))
    print("goals (ratios measured in this run):")
    for label, num, den, limit, kind in GOALS:
        if num not in RESULTS or den not in RESULTS:
            continue
        ratio = RESULTS[num] / RESULTS[den]
        ok = ratio <= limit if kind == "max" else ratio >= limit
        print("  %-32s %7.2fx  (goal %s %.1fx)  %s" % (label, ratio, "<=" if kind == "max" else ">=", limit,
                                                      "met" if ok else "NOT MET"))
    if "--json" in argv:
        import json

        RESULTS["interpreter"] = impl
        print(json.dumps(RESULTS))


main(sys.argv[1:])
