# The store's side files: what blesmp wrote beside the image that can hold keys (the quarantine
# `path + ".bad"` / NVS "bonds_bad", and aioble's or the bonding example's JSON renamed to
# `<name>.imported`). Removing a bond removes its keys from them too; clear() deletes them.
# Imported by blesmp.bondwrite for remove()/clear() only, dropped with it. Not part of the API.
from micropython import const

from blesmp.bondread import _dec, _read, limit, problem

_K = const(14)  # the key in a bond entry (as in blesmp.bond)
_REC_BEFORE = const(18)  # a "B" record: 4 header bytes and 14 of flags/times before the key
_REC_AFTER = const(192)  # the key (7), both blobs with their lengths (2 + 88 + 88), the CRC (4), rounded up


def _files(self):
    # [(name, is_json)] of the side files (None for NVS's "bonds_bad")
    if hasattr(self._io, "nvs"):
        return [(None, False)]
    d = (self.path.rsplit("/", 1)[0] + "/") if "/" in self.path else ""
    return [(self.path + ".bad", False), (d + "ble_secrets.json.imported", True),
            (d + "secrets.json.imported", True)]


def _get(self, name, n):
    # -> (data or None, True if longer than n)
    if name is None:
        data = self._io._get("bonds_bad", n)
        return data, data is not None and len(data) > n
    return _read(self, name, n)


def _put(self, name, data):
    io = self._io
    if name is None:
        io._set("bonds_bad", data)
        return
    with io.open(name + ".new", "wb") as f:  # then renamed over: a power cut leaves old or new
        f.write(data)
    try:
        io.rename(name + ".new", name)
    except OSError:  # FAT: rename cannot replace
        io.remove(name)
        io.rename(name + ".new", name)


def _drop_file(self, name):
    io = self._io
    try:
        if name is None:
            io.nvs.erase_key("bonds_bad")
            io.nvs.commit()
        else:
            io.remove(name)
    except OSError:
        pass


def secrets(e):
    """The byte strings of bond entry e (blesmp.bond) that must not outlive it: its store key (also the
    address at the head of each blob) and every LTK/IRK/CSRK in its blobs, in both byte orders."""
    from blesmp.bond import _part

    out = [bytes(e[_K:_K + 7])]
    for t in (1, 2):
        b = _part(e, t)
        if b:
            for a in (24, 41, 58):  # ltk, irk, csrk: the same offsets in every layout (blesmp.blob)
                k = bytes(b[a:a + 16])
                if any(k):
                    out.append(k)
                    out.append(bytes(reversed(k)))
    return out


def _scrub_bytes(data, found):
    # zeroes each secret and, around each key match, the extent of a whole "B" record (an older,
    # quarantined copy of the bond may hold other keys)
    data = bytearray(data)
    for s in found:
        i = data.find(s)
        while i >= 0:
            if len(s) == 7:
                a = max(0, i - _REC_BEFORE)
                b = min(len(data), i + _REC_AFTER)
            else:
                a, b = i, i + len(s)
            data[a:b] = bytes(b - a)
            i = data.find(s, i + 1)
    return bytes(data)


def _scrub_json(data, key):
    # aioble's [[sec_type, key, value], ...]: the entries of that key go
    import json

    entries = json.loads(data)
    keep = []
    for x in entries:
        try:
            if _dec(x[1]) == key:
                continue
        except Exception:
            pass
        keep.append(x)
    return json.dumps(keep).encode() if len(keep) != len(entries) else data


def scrub(self, e):
    """Takes bond entry e's keys out of every side file (errors become problems)."""
    found = secrets(e)
    for name, _ in _files(self):
        try:
            data, more = _get(self, name, limit(self))
            if not data:
                continue
            if more:  # too big to rewrite in RAM: the quarantine goes
                _drop_file(self, name)
                continue
            new = None
            if data[:1] == b"[":
                try:
                    new = _scrub_json(data, found[0])
                except ValueError:  # not JSON: as bytes
                    pass
            if new is None:
                new = _scrub_bytes(data, found)
            if new != data:
                _put(self, name, new)
        except (OSError, MemoryError) as ex:
            self.last_error = ex
            problem(self, "could not scrub %s: %r" % (name or "bonds_bad", ex))


def forget(self):
    """clear(): the side files go."""
    for name, _ in _files(self):
        _drop_file(self, name)
