# Bench part for `make bench` (tools/bench/bench.py): the bond store.
#   MICROPYPATH=lib:tools/bench:.frozen micropython tools/bench/bench.py
#   MICROPYPATH=lib:tools/bench:.frozen micropython tools/bench/store.py   (this part alone)
# Figures: store_load_32_us (a BondStore over a file of 32 bonds, on the
# interpreter's real filesystem), store_get_us (one keyed GET_SECRET, the
# re-encryption lookup), store_writes_per_pairing (file replacements per
# pairing: SET(1)+SET(2)), store_file_bytes_32, store_import_heap (bytes the
# store modules take when imported from .py), store_heap_8 (a store object
# holding 8 bonds), store_heap_per_bond, store_pkg_heap_8 (import + 8 bonds).
# Heap figures come from gc.mem_alloc() (MicroPython only; CPython prints none).
import gc
import os
import sys

if __name__ == "__main__" and sys.implementation.name != "micropython":
    _root = __file__.rsplit("/", 3)[0] if __file__.count("/") >= 3 else "."
    sys.path[:0] = [_root + "/lib", _root + "/tools/blesim/modules"]


def _mem():
    gc.collect()
    f = getattr(gc, "mem_alloc", None)
    return f() if f is not None else 0


class _CountFS:
    def __init__(self):
        self.renames = 0

    def open(self, p, mode):
        return open(p, mode)

    def rename(self, a, b):
        self.renames += 1
        os.rename(a, b)

    def remove(self, p):
        os.remove(p)


def _tmp():
    d = "/tmp/blesmp_bench_store_%d" % (os.getpid() if hasattr(os, "getpid") else 0)
    try:
        os.mkdir(d)
    except OSError:
        pass
    for n in ("bonds.db", "bonds.db.new", "b8.db", "b8.db.new"):
        try:
            os.remove(d + "/" + n)
        except OSError:
            pass
    return d


def run(timeit, record):
    heap = hasattr(gc, "mem_alloc")  # heap figures only mean something under MicroPython
    fresh = "blesmp.store" not in sys.modules
    m0 = _mem()
    from blesmp import blob
    from blesmp.store import BondStore, addr_key

    imp = _mem() - m0
    from fakebond import sec  # after the measured import: it imports blob and store too

    def blobs(i):
        # addr_key stays named in this file: else the measured import above interns its name
        # (+64 B of qstr pool in store_import_heap when run from .py)
        s = sec(i)
        return addr_key(1, s.addr), blob.encode(s, blob.ESP88)

    def pair(st, i):
        k, v = blobs(i)
        st.get_secret(1, 0, bytes(7))
        st.set_secret(1, memoryview(k), memoryview(v))
        st.set_secret(2, memoryview(k), memoryview(v))

    d = _tmp()
    fs = _CountFS()
    st = BondStore(d + "/bonds.db", fs=fs, layout=blob.ESP88, max_bonds=32)
    w0, r0 = st.writes, fs.renames
    for i in range(32):
        pair(st, i)
    record("store_writes_per_pairing", (st.writes - w0) / 32)
    record("store_renames_per_pairing", (fs.renames - r0) / 32)
    record("store_file_bytes_32", os.stat(d + "/bonds.db")[6])
    record("store_load_32_us", timeit(lambda: BondStore(d + "/bonds.db", layout=blob.ESP88, max_bonds=32), 20, 5))
    key = blobs(17)[0]
    mv = memoryview(key)
    record("store_get_us", timeit(lambda: st.get_secret(1, 0, mv), 500))
    st = None

    if not heap:
        return
    # heap: an empty store vs one holding 8 bonds (loaded from flash, as after a reboot)
    st8 = BondStore(d + "/b8.db", layout=blob.ESP88, max_bonds=8)
    for i in range(8):
        pair(st8, i)
    st8 = None
    _mem()

    def held(n):
        # bytes a store object holding n bonds keeps alive (median of 3 loads; the GC is conservative)
        out = []
        for _ in range(3):
            m = _mem()
            s = BondStore(d + ("/b8.db" if n else "/empty.db"), layout=blob.ESP88, max_bonds=8, migrate=False)
            out.append(_mem() - m)
            assert len(s) == n
            s = None
        out.sort()
        return out[1]

    e = held(0)
    f = held(8)
    record("store_heap_empty", e)
    record("store_heap_8", f)
    record("store_heap_per_bond", (f - e) / 8)
    if fresh:
        record("store_import_heap", imp)
        record("store_pkg_heap_8", imp + f)


if __name__ == "__main__":
    def _timeit(fn, n=200, runs=3):
        import time

        best = None
        for _ in range(runs):
            t0 = time.ticks_us() if hasattr(time, "ticks_us") else int(time.perf_counter() * 1e6)
            for _ in range(n):
                fn()
            t1 = time.ticks_us() if hasattr(time, "ticks_us") else int(time.perf_counter() * 1e6)
            per = (t1 - t0) / n
            best = per if best is None or per < best else best
        return best

    def _record(name, value):
        print("%-28s %s" % (name, value))

    run(_timeit, _record)
