"""Bond storage: NimBLE's secret-store protocol, persisted crash-safely in flash.

Firmware contract (call these from the BLE IRQ handler; they never raise)::

    store = BondStore()                       # before ble.active(True)
    def irq(event, data):
        if event == 29:                       # _IRQ_GET_SECRET
            return store.get_secret(*data)
        if event == 30:                       # _IRQ_SET_SECRET
            return store.set_secret(*data)

`get_secret(sec_type, index, key)` returns the stored buffer or None:
types 1 (our keys) and 2 (peer keys) are NimBLE `ble_store_value_sec` blobs
keyed by the 7-byte `ble_addr_t` (type, address LSB first); `key=None`
iterates type `sec_type` by `index` in a stable order; the type-1 lookup with
seven zero bytes (NimBLE counting bonds) answers None, so NimBLE never evicts
on its own; type 10 with key b"irk" is our IRK, exactly 16 bytes.
`set_secret(sec_type, key, value)` stores (True) or refuses (False);
`value=None` deletes and returns True only if something was deleted (NimBLE
deletes in a loop until False).  Memoryviews are copied before they expire.
Any internal error is recorded in `store.last_error` and answered as
"not found"/"failed": an exception never reaches the IRQ handler.

Persistence.  `BondStore(path="bonds.db", fs=None)` keeps an image of the whole
store in one file: the new image is written to `path + ".new"`, then renamed
over `path` (atomic on LittleFS; on FAT, where rename cannot replace, the old
file is removed first and a complete `.new` is picked up on the next load).
The file is never rewritten in place.  `BondStore(nvs=esp32.NVS("blesmp"))`
(or `nvs="blesmp"`) keeps the same image as one NVS blob (key "bonds"),
committed atomically by NVS.  `fs` is any object with `open`, `rename`,
`remove` (`tools/blesim/flash.py` on the simulator); the default is the
board's `open`/`os`.

There is one flash write per change of the bond set: a pairing's SET(1) is
held in RAM and SET(2) commits the bond (with any LRU eviction) in one write,
inside that SET call, so the bond is on flash before NimBLE reports the
pairing (ENCRYPTION_UPDATE) in firmware that persists keys first.  For older
firmware, which reports ENCRYPTION_UPDATE before the SETs, `pairing_done()`
returns PENDING and the manager waits for the "added"/"replaced"/"refused"
event.  Last-used times (`touch()`, and every keyed GET of a bond, i.e. each
re-encryption) only change RAM; they reach flash with the next write or
`flush()`.  A write that fails (OSError, e.g. a full filesystem) keeps the
change in RAM (`dirty` stays True), is reported in `problems`, and is retried
by the next write or `flush()`; the firmware is still answered from RAM.

Threads: on ESP32 the IRQ handler runs in the NimBLE task.  Writes are
serialised by a `_thread` lock (held only while the image is written; no
callback runs under it); the bond list is replaced, not edited, on add/remove,
so management calls from the main thread are safe beside lookups, but avoid
remove()/clear() while a pairing is in progress.

Heap at rest.  This module holds what a board needs at rest and to re-encrypt
(lookups, `get_secret`, NimBLE's deletes, `find`/`bonds`/`touch`); a bond is
one bytearray (its layout and the `Bond` view: `blesmp.bond`).  Loading,
recovery and migration live in `blesmp.bondload`;
every change (storing keys, eviction, refusal, a pairing's end that left
something to settle, `remove`/`clear`/`pin`/`flush`/`set_layout`/`image`,
saving) in `blesmp.bondwrite`.  Each is imported for its call and dropped
from RAM again on MicroPython; a failed import inside `set_secret` answers
False like any other error.

Format (version 1): b"BSMP" + version byte, then records
``0xB5 tag len(u16) payload crc32(u32 over tag+len+payload)``:
"M" meta (running layout, use counter, firmware id), "I" our IRK,
"B" bond (flags, layout, added, last used, use counter, key, our blob, peer
blob, blobs as NimBLE wrote them), "E" end (record count, the version again).  A
record whose CRC fails is skipped, reported in `problems`, copied to
`path + ".bad"` (NVS: key "bonds_bad") and every other bond is kept.  The
records decide, not the header: a damaged magic or version byte is repaired
from them.  A file of a newer version is never overwritten: the store then
works from RAM only (`readonly` is True).  A file that is not ours is moved
to `.bad` untouched; so is one longer than the bound loading reads (see
`blesmp.bondload.limit`), whose first part is kept.  Loading never raises
MemoryError/OSError: the store is then empty and read-only (see `problems`).
`remove()` takes the bond's keys out of `.bad` and the `.imported` JSON too,
`clear()` deletes those (`blesmp.bondfiles`).  With no store file,
aioble's `ble_secrets.json` or the bonding example's `secrets.json` (next to
`path`) is imported and then renamed to `<name>.imported` (so that deleting
the store later does not bring old bonds back); `import_json(path)` imports
on demand and leaves the file alone.

Blob layout (see `blesmp.blob`).  Blobs are kept in the layout the running
firmware expects, known by, in order: the `layout=` argument ("esp88",
"esp80", "nimble80"; also the simulator's profile names "88", "80i", "80");
the blobs NimBLE writes (a SET in another layout converts every bond at once,
even against `layout=`, and is reported in `problems`); the layout recorded
in the file when the firmware id (`os.uname()` version + machine) is
unchanged (a layout learned from NimBLE's writes even beats `layout=`); else
a guess from
`os.uname()` (ESP32 >= 1.24: esp88; ESP32 1.23 and other ports: nimble80;
anything else: esp88).  Stored blobs of another layout are converted at load
and the file is rewritten once.

Management: `bonds()`, `find(addr_type, addr)`, `remove(...)`, `clear()`
(also forgets our IRK: NimBLE makes a new one at the next `active(True)`),
`pin(...)`, `touch(...)`, `flush()`, `max_bonds` with `when_full="evict"`
(least recently used unpinned bond; keys of an unauthenticated pairing only
evict unauthenticated bonds) or "refuse", `subscribe(cb)`:
`cb(event, bond)` with "added", "replaced", "removed" (also eviction),
"cleared" (bond None), "refused" (keys not stored: policy or full).
Subscribers must ignore events they do not know; callbacks may run inside
the IRQ handler and must be short; their exceptions are caught.

Re-pairing transaction (the hooks for the SecurityManager).  When a bonded
peer pairs again, NimBLE first deletes its keys (SET(1,k,None)..., then
SET(2,k,None)...).  The store only *hides* them (GET answers None, flash is
untouched) and:
  * when the new keys arrive (SET(1), SET(2) for that peer), it replaces the
    bond if `policy` accepts it: "stronger" (default: key size not smaller,
    not legacy after SC, not unauthenticated after authenticated, and an
    unauthenticated pairing only while the attribute `vouched` is True: the
    SecurityManager sets it while its pairing window is open), "allow", "deny",
    or a callable `policy(old_bond, new_bond) -> bool` (the rule is
    `blesmp.bondrule.may_replace`, shared with the manager); otherwise the
    old bond is shown again, the new keys are dropped and "refused" fires.
    The rule holds for keys stored under an identity that is already bonded
    whatever address the pairing peer connected from (identity distribution);
  * the manager calls, when a pairing ends (ENCRYPTION_UPDATE, or link lost
    during pairing)::

        r = store.pairing_done(addr_type, addr, ok, bonded)

    `addr` = the connection's peer address (identity or RPA), `ok` =
    encrypted, `bonded` = the bonded flag of the update.  `r` is STORED (the
    bond is kept: on flash, unless the write failed, which `problems` and a
    log line say; `dirty` stays True and `flush()` retries), PENDING (ok and bonded but the keys have not come yet:
    wait for an "added"/"replaced"/"refused" event), REFUSED (keys not stored:
    the old bond is kept or the store is full; the manager should disconnect
    and report a failure), RESTORED (the pairing failed or did not bond: the
    hidden old bond is back) or None (no bond involved); these are the strings
    "stored", "pending", "refused", "restored".  A failed pairing
    therefore never deletes a bond.  Hidden bonds whose pairing never ended
    are restored when the next pairing starts (NimBLE's bond count lookup) and
    at every load (flash was never changed).
"""

import os
import struct

from micropython import const

from blesmp import _drop
from blesmp.bond import PENDING, Bond, _has, _now, _part
from blesmp.bond import REFUSED as REFUSED
from blesmp.bond import RESTORED as RESTORED
from blesmp.bond import STORED as STORED  # (Bond and these outcomes are the store's API too)
from blesmp.secinfo import addr_key

# entries (blesmp.bond): flags at 0 (pinned 1; 2 / 4: type 1 / type 2 hidden), the key at e[14:21]
_FL = const(0)
_HID = const(6)
_K = const(14)
_L = const(1)  # BondStore._c: the loader (blesmp.bondload)
_W = const(2)  # the writer (blesmp.bondwrite)


class _Files:
    """Default file system: the board's `open` and `os` (no wrapper functions: each costs heap)."""

    open = staticmethod(open)
    rename = staticmethod(os.rename)
    remove = staticmethod(os.remove)


class BondStore:
    """See the module docstring."""

    def __init__(self, path="bonds.db", fs=None, nvs=None, layout=None, max_bonds=8,
                 when_full="evict", policy="stronger", migrate=True):
        self.path = path
        if nvs is not None:
            from .nvs import NvsBackend  # only for NVS users

            self._io = NvsBackend(nvs)
        else:
            self._io = fs or _Files()  # the file system the image lives in, beside path
        self._fixed = layout
        self.layout = layout
        self._learned = False  # self.layout was seen in a blob NimBLE wrote
        self.max_bonds = max_bonds
        self.when_full = when_full
        self.policy = policy
        self._b = []  # entries, in insertion order
        self._pend = {}  # key -> our blob waiting for its SET(2)
        self._recent = []  # [(key, result)] of this pairing
        self._refusing = False
        self._irk = None
        self._seq = 0
        self._subs = []
        self.problems = []
        self.readonly = False
        self.dirty = False
        self.writes = 0
        self.last_error = None
        try:
            import _thread

            self._lock = _thread.allocate_lock()
        except ImportError:  # a port without threads: nothing runs concurrently
            self._lock = None
        self._c(_L, "load", migrate, when_full)  # (checks layout= and when_full= first)

    # ---------------------------------------------------------------- firmware
    def get_secret(self, sec_type, index, key):
        try:
            if sec_type == 10:
                return self._irk
            if sec_type != 1 and sec_type != 2:
                return None
            hid = sec_type << 1
            if key is None:
                i = 0
                for e in self._b:
                    if _has(e, sec_type) and not e[_FL] & hid:
                        if i == index:
                            return _part(e, sec_type)
                        i += 1
                return None
            k = bytes(key)
            if k == b"\0\0\0\0\0\0\0":
                # NimBLE counts bonds at the start of every pairing: a hidden bond whose
                # pairing never reported its end comes back; stale half-pairings go.
                if self._refusing:  # no: this is the overflow handler after a refusal
                    self._refusing = False
                    return None
                for e in self._b:
                    e[_FL] &= ~_HID
                self._pend = {}
                self._recent = []
                return None
            e = self._find(k)
            if e is None or e[_FL] & hid:
                return None
            self._use(e)
            return _part(e, sec_type)
        except Exception as ex:
            self.last_error = ex
            return None

    def set_secret(self, sec_type, key, value):
        try:
            if sec_type != 1 and sec_type != 2:
                if sec_type != 10:
                    return False
            elif value is None:
                # NimBLE deletes (a repeat pairing starts, or it evicts), in a loop until False:
                # answered here, without the cold module; the bond is hidden until the pairing ends
                k = bytes(key)
                if sec_type == 1 and self._pend.pop(k, None) is not None:
                    return True
                e = self._find(k)
                if e is None or not _has(e, sec_type) or e[_FL] & (sec_type << 1):
                    return False
                e[_FL] |= sec_type << 1
                return True
            return self._c(_W, "set_secret", sec_type, key, value)
        except Exception as ex:  # also a failed import of the cold module (e.g. MemoryError)
            self.last_error = ex
            return False

    def _c(self, mod, name, *args):
        # Cold code: function `name` of blesmp.bondload (mod _L: loading) or blesmp.bondwrite (_W:
        # changes), imported for this call and dropped again on the board with the modules it
        # brought (CPython keeps them: there is no heap to save, and re-imports cost time).
        import sys

        cold = ["bondload", "bondwrite", "bondread"]  # (bondwrite drops blesmp.bondfiles itself)
        for n in ("blob", "bondrule"):  # (each only if nothing had loaded it before this call)
            if "blesmp." + n not in sys.modules:
                cold.append(n)
        try:
            if mod == _L:
                from blesmp import bondload as m
            else:
                from blesmp import bondwrite as m
            return getattr(m, name)(self, *args)
        finally:
            for n in cold:
                _drop(n)

    # ---------------------------------------------------------------- manager
    def pairing_done(self, addr_type, addr, ok, bonded=1):
        """The end of a pairing (see the module docstring); returns STORED/PENDING/REFUSED/RESTORED/None."""
        try:
            if not self._recent and not self._refusing:
                for e in self._b:
                    if e[_FL] & _HID:
                        break
                else:  # nothing to settle (e.g. a re-encryption): no cold module
                    return PENDING if ok and bonded else None
            k = addr_key(addr_type, addr) if addr is not None else None
            return self._c(_W, "pairing_done", k, ok, bonded)
        except Exception as ex:
            self.last_error = ex
            return None

    # ---------------------------------------------------------------- management
    def subscribe(self, cb):
        self._subs.append(cb)

    def unsubscribe(self, cb):
        if cb in self._subs:
            self._subs.remove(cb)

    def _find(self, k):
        if len(k) != 7:
            return None
        for e in self._b:
            if e[_K + 1] == k[1] and e[_K:_K + 7] == k:  # (a slice only where the address's LSB matches)
                return e
        return None

    def __len__(self):
        return len(self._b)

    def bonds(self):
        return [Bond(e) for e in self._b]

    def find(self, addr_type, addr):
        e = self._find(addr_key(addr_type, addr))
        return Bond(e) if e else None

    def irk(self):
        """Our IRK as NimBLE stored it (type 10), or None."""
        return self._irk

    def remove(self, addr_type, addr):
        return self._c(_W, "remove", addr_key(addr_type, addr))

    def clear(self):
        self._c(_W, "clear")

    def pin(self, addr_type, addr, pinned=True):
        return self._c(_W, "pin", addr_key(addr_type, addr), pinned)

    def touch(self, addr_type, addr):
        e = self._find(addr_key(addr_type, addr))
        if e is not None:
            self._use(e)
        return e is not None

    def _use(self, e):
        self._seq += 1
        struct.pack_into("<II", e, 6, _now(), self._seq)  # used, seq
        self.dirty = True

    def flush(self):
        """Writes last-used times (and anything a failed write left) if they changed."""
        if self.dirty:
            return self._c(_W, "save")
        return True

    def set_layout(self, layout):
        """Tells the store the firmware's blob layout (converts every bond)."""
        self._c(_W, "set_layout", layout)

    # ---------------------------------------------------------------- persistence
    def image(self):
        """The store as bytes in the file format (what a save writes)."""
        return self._c(_W, "image")

    def import_json(self, path, fs=None):
        """Imports aioble's ble_secrets.json / the bonding example's secrets.json; returns the count."""
        return self._c(_L, "import_json", path, fs or _Files())
