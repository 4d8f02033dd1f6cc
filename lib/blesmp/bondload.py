"""The cold read half of blesmp.store: reading the image, recovery, quarantine, migration.

`BondStore` imports this module only while it loads or imports, and drops it again
(`sys.modules`), so that on a board with `lib/` as .py or .mpy files its code does not
stay on the heap. Functions take the store as `self` (they are its methods, moved out).
Writing (conversion, saving, problems) is `blesmp.bondwrite`'s, imported only when needed.
"""

import os
import struct
from binascii import crc32 as _crc32

from micropython import const

from blesmp import blob as _blob
from blesmp import bond as _bond  # (_bond._fw_id: tests stand in for a firmware update)
from blesmp.bond import _meta, _part
from blesmp.bondread import _MAGIC, VERSION, _dec, _read, limit, problem

_SYNC = const(0xB5)  # as in bondwrite.py
_PIN = const(1)
_K = const(14)  # the key in an entry (blesmp.bond)


def guess_layout():
    """The blob layout the running firmware most likely uses (see module docstring)."""
    try:
        import sys

        u = os.uname()
        if sys.implementation.name != "micropython":
            return _blob.ESP88
        v = tuple(int(x) for x in u.release.split("-")[0].split(".")[:2])
        if "ESP32" in u.machine and v >= (1, 24):
            return _blob.ESP88
        return _blob.NIMBLE80
    except Exception:
        return _blob.ESP88


def _w():
    # the writer, only when loading has to write or report (it is dropped with this module)
    from blesmp import bondwrite

    return bondwrite


# The store's backends: self._io is a file system (`open`, `rename`, `remove`) beside self.path,
# or an nvs.NvsBackend. Reading them (blesmp.bondread), quarantine and migration.
def _rm(self, p):
    try:
        self._io.remove(p)
    except OSError:
        pass


def _load(self, n):
    # -> (image or None, True if it is longer than n: only its first n bytes are here)
    if hasattr(self._io, "nvs"):
        data = self._io._get("bonds", n)  # (NVS reads a blob whole)
        if data is not None and len(data) > n:
            return data[:n], True
        return data, False
    data, more = _read(self, self.path, n)
    new = self.path + ".new"
    if data is None:
        data, more = _read(self, new, n)
        if data is not None and not more and complete(data):
            self._io.rename(new, self.path)  # finish a FAT-style replace
            return data, False
        return None, False
    _rm(self, new)  # leftover of an interrupted save: the old file stands
    return data, more


def _save_bad(self, data):
    io = self._io
    if hasattr(io, "nvs"):
        io._set("bonds_bad", data)
        return
    with io.open(self.path + ".bad", "wb") as f:
        f.write(data)


def _move_bad(self):
    io = self._io
    if hasattr(io, "nvs"):
        io._set("bonds_bad", io._get("bonds") or b"")
        io.nvs.erase_key("bonds")
        io.nvs.commit()
        return
    _rm(self, self.path + ".bad")
    io.rename(self.path, self.path + ".bad")


def _other(self, name):
    # a file next to the store (aioble's or the bonding example's), None under NVS
    if hasattr(self._io, "nvs"):
        return None
    return (self.path.rsplit("/", 1)[0] + "/" if "/" in self.path else "") + name


def complete(data):
    return parse(data)[3]


def parse(data):
    """-> (records [(tag, payload)], bad chunks [bytes], version, complete). The version is the one
    in the "E" record (under its CRC) when it has one, else the header byte; -1 = not a bond store
    (neither the magic nor a single record whose CRC holds: one flipped bit does not make a file
    foreign)."""
    recs = []
    bad = []
    n = len(data)
    pos = 5
    done = False
    bad_from = -1
    ver = -1
    while pos < n and not done:
        ok = False
        if data[pos] == _SYNC and pos + 8 <= n:
            tag, ln = struct.unpack_from("<BH", data, pos + 1)
            end = pos + 4 + ln
            if end + 4 <= n and _crc32(data[pos + 1:end]) == struct.unpack_from("<I", data, end)[0]:
                ok = True
        if not ok:
            if bad_from < 0:
                bad_from = pos
            pos = data.find(b"\xb5", pos + 1)  # the next candidate record (junk is skipped fast)
            if pos < 0:
                pos = n
            continue
        if bad_from >= 0:
            bad.append(data[bad_from:pos])
            bad_from = -1
        payload = data[pos + 4:end]
        if tag == 69:  # "E": the image is complete (count u16 informational, then the version)
            done = True
            if len(payload) > 2:
                ver = payload[2]
        else:
            recs.append((tag, payload))
        pos = end + 4
    if bad_from >= 0:
        bad.append(data[bad_from:])
    if ver < 0 and n > 4 and (data[:4] == _MAGIC or recs or done):
        ver = data[4]
    return recs, bad, ver, done


def load(self, migrate, when_full):
    self._fixed = self.layout = _blob.layout_arg(self.layout)
    if when_full not in ("evict", "refuse"):
        raise ValueError("when_full")
    try:
        _load_image(self, limit(self), migrate)
    except (OSError, MemoryError) as ex:  # unreadable, or no heap for it: keep it, work from RAM
        self._b = []
        self.last_error = ex
        self.readonly = True
        self.layout = self._fixed or guess_layout()
        self.problems.append("store unreadable (%r): not written (BondStore(...).clear() starts afresh)" % (ex,))


def _load_image(self, n, migrate):
    data, big = _load(self, n)
    if data is None:
        self.layout = self._fixed or guess_layout()
        if migrate:
            for name in ("ble_secrets.json", "secrets.json"):
                p = _other(self, name)
                old, more = _read(self, p, n) if p else (None, False)
                if old and not more:
                    import_entries(self, old, name)
                    if self.writes and not self.dirty:
                        try:  # imported once: never again after a later reset
                            self._io.rename(p, p + ".imported")
                        except OSError:
                            pass
                    break
        return
    recs, bad, ver, done = parse(data)
    if ver < 0:
        problem(self, "not a bond store: moved to .bad")
        self.layout = self._fixed or guess_layout()
        _move_bad(self)
        if data[:1] == b"[" and migrate and not big:
            import_entries(self, data, self.path)
        return
    moved = False
    if ver > VERSION:  # never overwritten; the bonds whose records hold are used from RAM
        self.readonly = True
        problem(self, "store version %d is newer than %d: not written" % (ver, VERSION))
    elif big:  # salvage what fits; the whole file goes to .bad untouched
        problem(self, "store file over %d bytes: moved to .bad, records in its first %d bytes kept" % (n, n))
        _move_bad(self)
        moved = True
    elif data[:5] != _MAGIC + bytes((ver,)):
        problem(self, "store header damaged: repaired")
        big = True  # (rewrite below)
    stored_layout = None
    for tag, p in recs:
        if tag == 77:
            try:
                lc, seq = struct.unpack_from("<BI", p)
                lay = _blob.LAYOUTS[lc & 0x7F]
                fw = str(p[5:], "utf-8")
            except Exception:  # (a newer version's meta)
                continue
            self._seq = seq
            stored_layout = lay
            if fw != _bond._fw_id():
                stored_layout = None  # another firmware wrote it
            elif lc & 0x80:
                self._fixed = None  # seen in NimBLE's own writes under this firmware: beats layout=
                self._learned = True
        elif tag == 73 and len(p) == 16:
            self._irk = bytes(p)
        elif tag == 66:
            try:
                n = 23 + p[21] + p[22 + p[21]]
                e = bytearray(p[:n])  # the record's payload is the entry (blesmp.bond)
                our = _part(e, 1)
                peer = _part(e, 2)
                if len(e) != n or (our and _blob.detect(our) is None) or (peer and _blob.detect(peer) is None):
                    raise ValueError("blob")
                e[0] &= _PIN
                seq = _meta(e)[2]
                old = self._find(bytes(e[_K:_K + 7]))
                if old is None:
                    self._b.append(e)
                elif _meta(old)[2] < seq:  # one bond per key: the newer record wins
                    self._b[self._b.index(old)] = e
                self._seq = max(self._seq, seq)
            except Exception:
                bad.append(bytes(p))
    if (bad or not done) and not self.readonly and not moved:
        n = len(bad)
        problem(self, "%d corrupt record(s) quarantined%s" % (n, "" if done else ", file truncated"))
        if bad:
            try:
                _save_bad(self, b"".join(bad))
            except OSError as ex:
                self.last_error = ex
    self.layout = self._fixed or stored_layout or guess_layout()
    stale = False
    for e in self._b:
        for i in (1, 2):
            b = _part(e, i)
            if b and not _blob.fits(b, self.layout):
                stale = True
    if stale or big:
        w = _w()
        if stale:
            w.relayout(self, self.layout)
        w.save(self)


def import_json(self, path, fs):
    with fs.open(path, "rb") as f:
        return import_entries(self, f.read(), path)


def import_entries(self, data, name):
    import json

    n = 0
    try:
        entries = json.loads(data)
        pend = {}
        order = []
        for sec_type, key, value in entries:
            k = _dec(key)
            v = _dec(value)
            if sec_type == 10 and len(v) == 16:
                self._irk = v
            elif sec_type in (1, 2) and len(k) == 7 and _blob.detect(v):
                if k not in pend:
                    pend[k] = [None, None]
                order.append(k)
                pend[k][sec_type - 1] = v
        if not self.layout:
            self.layout = guess_layout()
        w = _w()
        for k in order:  # newest at the end, as aioble keeps them
            if k in pend and not self._find(k):
                our, peer = pend.pop(k)
                self._seq += 1
                self._b.append(w.entry(k, our, peer, 0, 0, self._seq, 0))
                n += 1
        w.relayout(self, self.layout)
    except Exception as ex:
        self.last_error = ex
        problem(self, "import of %s failed: %r" % (name, ex))
        return 0
    _w().save(self)
    return n
