# Bench part for `make bench` (tools/bench/bench.py): resolvable private addresses.
#   MICROPYPATH=lib:tools/bench:.frozen micropython tools/bench/bench.py
#   MICROPYPATH=lib:tools/bench:.frozen micropython tools/bench/resolver.py   (this part alone)
# Figures: resolve_miss_{1,8,32,64}_us (an RPA that matches no IRK and is not
# cached: the full AES loop), resolve_per_irk_us (slope 1 -> 64 IRKs),
# resolve_hit_cached_us, the same as ratios to one AES block measured here
# (resolve_aes_block_us: one encrypt on a reused ECB object into a buffer),
# advertisements per second that 32 bonds allow, bytes allocated per call,
# the cost of calling an empty method (call_floor_us, for scale) and the
# pure-Python fallback's figures for comparison.
import gc
import os
import sys

if __name__ == "__main__" and sys.implementation.name != "micropython":
    _root = __file__.rsplit("/", 3)[0] if __file__.count("/") >= 3 else "."
    sys.path[:0] = [_root + "/lib", _root + "/tools/blesim/modules"]

from blesmp import _pure, resolver  # noqa: E402
from blesmp.resolver import Resolver  # noqa: E402

_POOL = 512  # distinct unknown RPAs cycled through: far more than the cache holds


class _Bond:
    def __init__(self, i, irk):
        self.addr_type = 1
        self.addr = bytes((0xC0 | (i & 0x3F), 0, 0, 0, i >> 8, i & 0xFF))
        self.irk = irk


class _Nop:
    def resolve(self, addr_type, addr):
        return None


def _unknown_rpas(r, n):
    out = []
    while len(out) < n:
        a = bytearray(os.urandom(6))
        a[0] = (a[0] & 0x3F) | 0x40
        a = bytes(a)
        if r.resolve(1, a) is None:
            out.append(a)
    r.invalidate()
    return out


def _miss_fn(r, pool):
    state = [0]
    n = len(pool) - 1

    def miss():
        i = state[0]
        state[0] = (i + 1) & n
        r.resolve(1, pool[i])

    return miss


def _alloc_per_call(fn, n=200):
    mem_alloc = getattr(gc, "mem_alloc", None)
    if mem_alloc is None:
        return None  # CPython
    fn()
    gc.collect()
    a = mem_alloc()
    for _ in range(n):
        fn()
    return (mem_alloc() - a) / n


def _misses(timeit, bonds, pool, sizes, reps):
    res = {}
    for n in sizes:
        r = Resolver(cache_size=32)
        r.set_bonds(bonds[:n])
        res[n] = timeit(_miss_fn(r, pool), max(20, reps // n))
    return res


def run(timeit, record):
    import cryptolib

    bonds = [_Bond(i, os.urandom(16)) for i in range(64)]
    probe = Resolver(cache_size=0)
    probe.set_bonds(bonds)
    pool = _unknown_rpas(probe, _POOL)

    ecb = cryptolib.aes(os.urandom(16), 1)
    blk = bytes(range(16))
    out = bytearray(16)
    aes = timeit(lambda: ecb.encrypt(blk, out), 1000)
    record("resolve_aes_block_us", aes)

    sizes = (1, 8, 32, 64)
    miss = _misses(timeit, bonds, pool, sizes, 2000)
    for n in sizes:
        record("resolve_miss_%d_us" % n, miss[n])
    slope = (miss[64] - miss[1]) / 63
    record("resolve_per_irk_us", slope)
    record("resolve_per_irk_x_aes", slope / aes)

    r = Resolver(cache_size=32)
    r.set_bonds(bonds[:32])
    hit = resolver.generate(bonds[20].irk)
    assert r.resolve(1, hit) is bonds[20]
    cached = timeit(lambda: r.resolve(1, hit), 2000)
    record("resolve_hit_cached_us", cached)
    record("resolve_hit_cached_x_aes", cached / aes)
    # For scale: calling a method that does nothing, with the same arguments
    # (no resolve() can cost less than this).
    nop = _Nop()
    floor = timeit(lambda: nop.resolve(1, hit), 2000)
    record("call_floor_us", floor)
    record("call_floor_x_aes", floor / aes)
    static = bonds[31].addr
    record("identify_static_32_us", timeit(lambda: r.identify(1, static), 2000))
    record("resolve_public_us", timeit(lambda: r.resolve(0, static), 2000))

    # Advertisements per second with 32 bonds, every one an unknown uncached RPA
    # (the worst case; repeats of an address are cache hits).
    record("ads_per_s_32_bonds", int(1e6 / miss[32]))
    record("ads_per_s_32_bonds_cached", int(1e6 / cached))

    a = _alloc_per_call(_miss_fn(r, pool))
    if a is not None:
        record("resolve_miss_alloc_bytes", a)
        record("resolve_hit_alloc_bytes", _alloc_per_call(lambda: r.resolve(1, hit)))

    # The pure-Python fallback (ports without viper), same run for comparison.
    if resolver.BACKEND != "python":
        saved = (Resolver.resolve, Resolver.identify)
        try:
            Resolver.resolve = _pure.rpa_resolve
            Resolver.identify = _pure.rpa_identify
            pm = _misses(timeit, bonds, pool, (1, 64), 1000)
            record("resolve_miss_32_python_us", _misses(timeit, bonds, pool, (32,), 1000)[32])
            record("resolve_per_irk_python_x_aes", (pm[64] - pm[1]) / 63 / aes)
            r.invalidate()
            r.resolve(1, hit)
            record("resolve_hit_cached_python_x_aes", timeit(lambda: r.resolve(1, hit), 2000) / aes)
        finally:
            Resolver.resolve, Resolver.identify = saved


def _main():
    import time

    if hasattr(time, "ticks_us"):
        ticks_us = time.ticks_us
        ticks_diff = time.ticks_diff
    else:  # CPython

        def ticks_us():
            return time.perf_counter_ns() // 1000

        def ticks_diff(a, b):
            return a - b

    def timeit(fn, n=200, runs=7):
        fn()
        best = None
        for _ in range(runs):
            gc.collect()
            t0 = ticks_us()
            for _ in range(n):
                fn()
            t = ticks_diff(ticks_us(), t0) / n
            best = t if best is None or t < best else best
        return best

    def record(name, value):
        print("  %-32s %s" % (name, ("%.3f" % value) if isinstance(value, float) else value))

    print("resolver backend:", resolver.BACKEND)
    run(timeit, record)


if __name__ == "__main__":
    _main()
