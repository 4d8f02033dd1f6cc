"""Lists (and removes) the bonds of a blesmp bond store file.

    python tools/board/bonds.py [FILE]                        # default bonds.db
    python tools/board/bonds.py --port /dev/ttyUSB0 [--path bonds.db]
    python tools/board/bonds.py --port /dev/ttyUSB0 --nvs blesmp   # store kept in esp32.NVS
    python tools/board/bonds.py FILE --remove C0:11:22:33:44:55 [--type 1]
    python tools/board/bonds.py --port /dev/ttyUSB0 --remove C0:11:22:33:44:55

Prints one row per bond: address, type, keys present, security level (L4 =
authenticated LE Secure Connections with a 16-byte key, L3 = authenticated, L2 =
encrypted only), key size, pinned, added, last used; then our IRK's presence,
the format version and any problem found (corrupt records, truncation).

With --port the file is fetched with mpremote; --remove then writes the new
store to `<path>.new` on the board and renames it over the old one (atomic on
LittleFS). Reset the board afterwards: a running BondStore keeps its own copy in
RAM and would write it back at its next change. Keys are never printed.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for _p in (os.path.join(_ROOT, "lib"), os.path.join(_ROOT, "tools", "blesim", "modules")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from blesmp import blob  # noqa: E402
from blesmp import bondload as L  # noqa: E402
from blesmp import store as S  # noqa: E402

if _ROOT not in sys.path:
    sys.path.append(_ROOT)
from tools.board import ports  # noqa: E402

_Y2K = 946684800  # MicroPython ports with the 2000 epoch


def fmt_time(t):
    if not t:
        return "-"
    if t < _Y2K:
        t += _Y2K
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(t))


def fmt_addr(a):
    return ":".join("%02X" % x for x in a)


def parse_addr(s):
    parts = s.replace("-", ":").split(":")
    if len(parts) != 6 or not all(1 <= len(p) <= 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts):
        raise ValueError("%r is not an address: give 6 hex octets, e.g. C0:11:22:33:44:55 (the first column of"
                         " the table)" % s)
    return bytes(int(p, 16) for p in parts)


def level(b):
    if b.ltk is None:
        return "-"
    if b.authenticated and b.sc and b.key_size == 16:
        return "L4"
    return "L3" if b.authenticated else "L2"


def stored_layout(data):
    """The layout the file was written in (from its meta record), or None."""
    recs = L.parse(data)[0]
    for tag, p in recs:
        if tag == 77 and len(p) >= 1 and (p[0] & 0x7F) < len(blob.LAYOUTS):
            return blob.LAYOUTS[p[0] & 0x7F]
    return None


class _MemFS:
    """The file's bytes in memory, so that listing never writes anything."""

    def __init__(self, data):
        self.files = {"bonds.db": data}

    def open(self, p, mode):
        import io

        if "r" in mode:
            if p not in self.files:
                raise OSError(2, "ENOENT")
            return io.BytesIO(self.files[p])
        fs = self

        class W(io.BytesIO):
            def close(self):
                fs.files[p] = self.getvalue()
                super().close()

        return W()

    def rename(self, a, b):
        self.files[b] = self.files.pop(a)

    def remove(self, p):
        if p not in self.files:
            raise OSError(2, "ENOENT")
        del self.files[p]


def load(data):
    """A BondStore over a copy of `data` in memory (layout as stored: nothing is converted)."""
    fs = _MemFS(data)
    st = S.BondStore("bonds.db", fs=fs, layout=stored_layout(data) or blob.ESP88, max_bonds=1 << 16,
                     migrate=False)
    return st, fs


def table(st, data):
    rows = [("address", "type", "keys", "level", "ks", "pin", "added", "last used")]
    for b in st.bonds():
        keys = ",".join(n for n, v in (("ltk", b.ltk), ("irk", b.irk), ("csrk", b.csrk)) if v is not None)
        rows.append((fmt_addr(b.addr), "random" if b.addr_type else "public", keys or "-", level(b),
                     str(b.key_size), "yes" if b.pinned else "", fmt_time(b.added), fmt_time(b.last_used)))
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = ["  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip() for r in rows]
    ver = data[4] if len(data) > 4 and data[:4] == b"BSMP" else None
    out.append("%d bond(s); our IRK %s; format version %s; blob layout %s"
               % (len(st), "stored" if st.irk() else "not stored", ver, stored_layout(data) or "?"))
    for p in st.problems:  # nothing was moved or copied here: the file is read into memory only
        out.append("problem: " + p.replace("quarantined", "found (the board's store would copy them to .bad)"))
    return "\n".join(out)


def _mpremote(port, *args, run=subprocess.run):
    cmd = [sys.executable, "-m", "mpremote", "connect", port] + list(args)
    r = run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit("mpremote failed: %s" % (r.stderr or r.stdout).strip())
    return r.stdout


def fetch(port, path, nvs=None, run=subprocess.run):
    if nvs:
        src = ("import esp32,binascii\nn=esp32.NVS(%r)\nb=bytearray(65536)\n"
               "print(binascii.hexlify(b[:n.get_blob('bonds',b)]).decode())" % nvs)
        out = _mpremote(port, "exec", src, run=run).strip().splitlines()
        return bytes.fromhex(out[-1])
    with tempfile.TemporaryDirectory() as d:
        local = os.path.join(d, "bonds.db")
        _mpremote(port, "cp", ":" + path, local, run=run)
        with open(local, "rb") as f:
            return f.read()


def push(port, path, data, run=subprocess.run):
    with tempfile.TemporaryDirectory() as d:
        local = os.path.join(d, "bonds.db")
        with open(local, "wb") as f:
            f.write(data)
        _mpremote(port, "cp", local, ":" + path + ".new", run=run)
        _mpremote(port, "exec", "import os\nos.rename(%r, %r)" % (path + ".new", path), run=run)


def main(argv=None, run=subprocess.run, out=None):
    out = out or sys.stdout
    ap = argparse.ArgumentParser(description="List or remove the bonds of a blesmp bond store.")
    ap.add_argument("file", nargs="?", default="bonds.db", help="local store file (default bonds.db)")
    ap.add_argument("--port", help="fetch from a board with mpremote (serial port)")
    ap.add_argument("--path", default="bonds.db", help="the store's path on the board")
    ap.add_argument("--nvs", help="the store lives in esp32.NVS(NAMESPACE) on the board (list only)")
    ap.add_argument("--remove", metavar="ADDR", help="remove the bond of this identity address")
    ap.add_argument("--type", type=int, choices=(0, 1), help="address type for --remove (default: any)")
    a = ap.parse_args(argv)
    addr = None
    if a.remove is not None:
        try:
            addr = parse_addr(a.remove)
        except ValueError as e:
            print("bonds: --remove: %s" % e, file=sys.stderr)
            return 2
    if a.port is not None:
        bad = ports.problem(a.port, "bonds")
        if bad:
            print("bonds: " + bad, file=sys.stderr)
            return 2
        data = fetch(a.port, a.path, a.nvs, run=run)
    else:
        try:
            with open(a.file, "rb") as f:
                data = f.read()
        except OSError as e:
            print("cannot read %s: %s" % (a.file, e), file=sys.stderr)
            return 2
    where = "on the board" if a.port else a.file
    if not data:
        print("bonds: %s is empty: no bonds stored" % where, file=out)
        return 1 if addr is not None else 0
    if data[:4] != b"BSMP":
        # The store on a board would move such a file to .bad; this tool changes nothing.
        print("bonds: %s is not a blesmp bond store (it starts with %r, not b'BSMP'): nothing read, nothing"
              " changed" % (where, data[:8]), file=sys.stderr)
        return 1
    st, fs = load(data)
    if addr is not None:
        types = (a.type,) if a.type is not None else (0, 1)
        if st.readonly:
            print("the store has a newer format version: not modified", file=sys.stderr)
            return 1
        if not any(st.remove(t, addr) for t in types):
            print("no bond for %s" % a.remove, file=sys.stderr)
            return 1
        new = fs.files["bonds.db"]
        if a.port:
            if a.nvs:
                print("--remove with --nvs is not supported: use BondStore.remove() on the board", file=sys.stderr)
                return 1
            push(a.port, a.path, new, run=run)
            print("removed %s on the board; reset the board so that its running store reloads" % a.remove,
                  file=out)
        else:
            tmp = a.file + ".new"
            with open(tmp, "wb") as f:
                f.write(new)
            os.replace(tmp, a.file)
            print("removed %s" % a.remove, file=out)
        data = new
    print(table(st, data), file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
