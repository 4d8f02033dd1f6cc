"""The cold write half of blesmp.store: storing keys, eviction, refusal, management, saving.

`BondStore` imports this module for each call that changes the store (`set_secret` with a
value, `pairing_done` when a pairing left something to settle, `remove`, `clear`, `pin`,
`flush`, `set_layout`, `image`) and drops it again (`sys.modules`) on MicroPython, so that
on a board with `lib/` as .py or .mpy files its code does not stay on the heap at rest.
`blesmp.bondload` uses it while loading (conversion, problems). Functions take the store
as `self` (they are its methods, moved out). Not part of the API.
"""

import struct
from binascii import crc32 as _crc32

from micropython import const

from blesmp import blob as _blob
from blesmp import bond as _bond  # (_bond._fw_id: tests stand in for a firmware update)
from blesmp.bond import PENDING, REFUSED, RESTORED, STORED, Bond, _meta, _now, _part, _strength
from blesmp.bondread import _MAGIC, VERSION, problem
from blesmp.bondrule import may_replace
from blesmp.secinfo import info as _info

_SYNC = const(0xB5)  # record sync byte (as in bondload.py)
# entries: see blesmp.bond
_FL = const(0)
_K = const(14)
_PIN = const(1)
_HID = const(6)


def entry(k, our, peer, added, used, seq, fl):
    """A new entry (blesmp.bond) for key k and the blobs our/peer (None: absent)."""
    our = our or b""
    peer = peer or b""
    return bytearray(struct.pack("<BBIII", fl, 0, added, used, seq) + k + bytes((len(our),)) + our
                     + bytes((len(peer),)) + peer)


def _swap(self, old, new):
    # the bond list is replaced, not edited (a lookup in the other thread sees one or the other)
    b = list(self._b)
    b[b.index(old)] = new
    self._b = b


# ---------------------------------------------------------------- firmware (SET_SECRET)
def set_secret(self, sec_type, key, value):
    # store.set_secret without the deletes (answered there); may raise: the caller answers False
    if sec_type == 10:
        if value is None or len(value) != 16:
            return False
        value = bytes(value)
        if self._b and self._irk != value:
            # NimBLE found no IRK of ours and made one: peers that bonded before know another
            # (or the firmware's fixed one) and cannot resolve our private addresses any more
            problem(self, "our IRK is new: %d bond(s) made before it" % len(self._b))
        self._irk = value
        save(self)
        return True
    t = sec_type  # 1 or 2, with a value
    k = bytes(key)
    v = bytes(value)
    lay = _blob.detect(v)
    if lay is None:
        return False
    if not _blob.fits(v, self.layout):
        # The firmware's own writes are the ground truth about its layout.
        if lay == _blob.ESP80 and not v[40] & 1:
            lay = _blob.NIMBLE80  # an 80-byte blob without LTK: upstream is the usual one
        if self._fixed:
            problem(self, "layout %s given, but the firmware writes %s" % (self._fixed, lay))
            self._fixed = None
        relayout(self, lay)
    if len(v) == 88 or v[40] & 1:
        self._learned = True
    e = self._find(k)
    if t == 1:
        if e is not None and (e[_FL] & _HID) == 2:  # our keys rewritten (sign counter)
            a, u, q = _meta(e)
            _swap(self, e, entry(k, v, _part(e, 2), a, u, q, e[_FL] & ~2))
            save(self)
            return True
        if e is None and len(self._b) >= self.max_bonds and _victim(self, _info(v)[1]) is None:
            _refuse(self, k, entry(k, v, None, 0, 0, 0, 0))
            return False
        self._pend[k] = v
        return True
    return _commit(self, k, self._pend.pop(k, None), v, e)


def _commit(self, k, our, peer, e):
    now = _now()
    self._seq += 1
    if e is not None and our is None and not e[_FL] & 2:
        our = _part(e, 1)
    new = entry(k, our, peer, now, now, self._seq, 0)
    ev = []
    if e is not None:
        p = self.policy  # may the new keys replace the bond? (whoever connected: the key is the identity)
        if isinstance(p, str):
            ok = may_replace(_strength(e), _strength(new), p, getattr(self, "vouched", False))
        else:
            ok = bool(p(Bond(e), Bond(new)))
        if not ok:
            e[_FL] &= ~_HID
            _refuse(self, k, new)
            return False
        struct.pack_into("<BxI", new, 0, e[_FL] & _PIN, _meta(e)[0])  # flags, added
        _swap(self, e, new)
        ev.append(("replaced", new))
    else:
        b = list(self._b)
        if len(b) >= self.max_bonds:
            vic = _victim(self, _strength(new)[1])
            if vic is None:
                _refuse(self, k, new)
                return False
            b.remove(vic)
            ev.append(("removed", vic))
        b.append(new)
        ev.append(("added", new))
        self._b = b
    _note(self, k, STORED)
    save(self)
    for name, x in ev:
        _emit(self, name, x)
    return True


def _refuse(self, k, new):
    self._refusing = True  # NimBLE's overflow handler counts bonds next
    _note(self, k, REFUSED)
    _emit(self, "refused", new)


def _victim(self, auth):
    # The least recently used bond that keys of authentication `auth` may evict: never a pinned
    # one, and an unauthenticated pairing (Just Works: anyone in range) never evicts an
    # authenticated bond (strangers cannot flush a product's real peers).
    if self.when_full != "evict":
        return None
    best = None
    low = 0
    for e in self._b:
        if not e[_FL] & (_PIN | _HID) and (auth or not _strength(e)[1]):
            q = _meta(e)[2]
            if best is None or q < low:
                best = e
                low = q
    return best


def _note(self, k, r):
    self._recent.append((k, r))
    del self._recent[:-4]


def _emit(self, name, e):
    if not self._subs:
        return
    try:
        bond = Bond(e) if e is not None else None
    except Exception as ex:
        self.last_error = ex
        return
    for cb in self._subs:
        try:
            cb(name, bond)
        except Exception as ex:
            self.last_error = ex


# ---------------------------------------------------------------- manager
def pairing_done(self, k, ok, bonded):
    # store.pairing_done when a pairing left something to settle (k: the store key or None)
    res = None
    for rk, r in self._recent:
        if rk == k:
            res = r
    if res is None and len(self._recent) == 1:
        res = self._recent[0][1]  # keys came under the identity, not the RPA
    if res is None and ok and bonded:
        return PENDING
    restored = False
    for e in self._b:
        if e[_FL] & _HID and (k is None or e[_K:_K + 7] == k or not self._find(k)):
            e[_FL] &= ~_HID
            restored = True
    self._recent = []
    self._refusing = False
    return res or (RESTORED if restored else None)


# ---------------------------------------------------------------- management
def remove(self, k):
    e = self._find(k)
    if e is None:
        return False
    self._b = [x for x in self._b if x is not e]
    save(self)
    if not self.readonly:  # its keys also leave the quarantine and the imported JSON
        _files("scrub", self, e)
    _emit(self, "removed", e)
    return True


def clear(self):
    self._b = []
    self._pend = {}
    self._irk = None
    save(self)
    if not self.readonly:
        _files("forget", self)
    _emit(self, "cleared", None)


def _files(name, *args):
    # blesmp.bondfiles (the side files), only for remove()/clear(), dropped again on the board
    from blesmp import _drop, bondfiles

    try:
        getattr(bondfiles, name)(*args)
    finally:
        _drop("bondfiles")


def pin(self, k, pinned):
    e = self._find(k)
    if e is None:
        return False
    e[_FL] = (e[_FL] | _PIN) if pinned else (e[_FL] & ~_PIN)
    save(self)
    return True


def set_layout(self, layout):
    layout = _blob.layout_arg(layout)
    if layout is None:
        raise ValueError("layout")
    self._fixed = layout
    if layout != self.layout or self._learned:
        self._learned = False
        relayout(self, layout)
        save(self)


def relayout(self, lay):
    if lay != self.layout:
        self._learned = False
    b = []
    for e in self._b:
        a, u, q = _meta(e)
        b.append(entry(bytes(e[_K:_K + 7]), _blob.convert(_part(e, 1), lay), _blob.convert(_part(e, 2), lay),
                       a, u, q, e[_FL]))
    self._b = b
    self.layout = lay


# ---------------------------------------------------------------- persistence
def _rec(out, tag, payload):
    head = struct.pack("<BBH", _SYNC, tag, len(payload))
    out.extend(head)
    out.extend(payload)
    out.extend(struct.pack("<I", _crc32(head[1:] + payload) & 0xFFFFFFFF))


def image(self):
    out = bytearray(_MAGIC)
    out.append(VERSION)
    n = 1
    lc = _blob.LAYOUTS.index(self.layout) | (0x80 if self._learned else 0)
    _rec(out, 77, struct.pack("<BI", lc, self._seq) + _bond._fw_id().encode())
    if self._irk:
        _rec(out, 73, self._irk)
        n += 1
    for e in self._b:
        p = bytearray(e)  # an entry is its record's payload
        p[0] &= _PIN
        p[1] = lc & 0x7F
        _rec(out, 66, p)
        n += 1
    _rec(out, 69, struct.pack("<HB", n, VERSION))  # the version again, under a CRC (a header bit flip)
    return out


def _write(self, data):
    # the new image replaces the old one at once: NVS commits it, a file goes to .new and is
    # renamed over the old one (FAT, where rename cannot replace: removed first)
    io = self._io
    if hasattr(io, "nvs"):
        io._set("bonds", data)
        return
    path = self.path
    new = path + ".new"
    with io.open(new, "wb") as f:
        f.write(data)
    try:
        io.rename(new, path)
    except OSError:
        io.remove(path)
        io.rename(new, path)


def save(self):
    if self.readonly:
        self.dirty = True
        return False
    lk = self._lock
    if lk is not None:
        lk.acquire()  # the NimBLE task and the main thread never write .new at once
    try:
        _write(self, image(self))
        self.writes += 1
        self.dirty = False
        return True
    except OSError as ex:
        self.last_error = ex
        self.dirty = True
        problem(self, "write failed: %r" % (ex,))
        from blesmp import _log

        # said where the developer looks: a pairing still succeeds, and its bond would be gone
        # after a reset without a word
        _log("bond store: write failed: %d bonds are in RAM only until store.flush() succeeds" % len(self._b), ex)
        return False
    finally:
        if lk is not None:
            lk.release()
