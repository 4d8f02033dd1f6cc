"""One bond as the store holds it: its entry in RAM, the view the application gets (Bond), and
what became of a pairing's keys (the outcomes BondStore.pairing_done returns).

Resident with blesmp.store; the store's cold halves (blesmp.bondload, blesmp.bondwrite) read entries
through it, so none of them imports the store. Not part of the API (blesmp.store exports Bond and
the outcomes).
"""

# Resident modules keep at most 17 globals: a module's dict grows from 17 to 37 slots at the
# 18th (0.6 KB on the unix port), so code run rarely imports what it needs where it runs.
import struct
import time

from micropython import const

from blesmp.secinfo import info

STORED = "stored"
PENDING = "pending"
REFUSED = "refused"
RESTORED = "restored"

# A bond in RAM ("entry") is one bytearray laid out as its "B" record (few objects: each one
# costs heap): flags, layout code (set when saving), added, used, seq (u32 each), key (7), len(our),
# our blob, len(peer), peer blob. Blobs are handed to NimBLE as memoryviews into it.
_FL = const(0)
_PIN = const(1)  # flags: pinned; 2 / 4: type 1 / type 2 hidden (deleted by NimBLE)
_HID = const(6)
_K = const(14)  # the key: e[14:21]


def _part(e, t):
    """Blob t (1: our keys, 2: the peer's) of entry e as a memoryview, None if absent."""
    a = 22
    n = e[21]
    if t == 2:
        a += n + 1
        n = e[a - 1]
    return memoryview(e)[a:a + n] if n else None


def _has(e, t):
    return e[21] if t == 1 else e[22 + e[21]]


def _meta(e):
    """(added, used, seq) of entry e."""
    return struct.unpack_from("<III", e, 2)


def _now():
    try:
        return int(time.time()) & 0xFFFFFFFF
    except Exception:
        return 0


def _fw_id():
    # the firmware the store's blobs come from (an image remembers it: an update may change their layout)
    import os

    try:
        u = os.uname()
        return "%s|%s" % (u.version, u.machine)
    except Exception:
        return ""


def _strength(e):
    a = info(_part(e, 1))
    b = info(_part(e, 2))
    return max(a[0], b[0]), a[1] | b[1], a[2] | b[2]


class Bond:
    """One bond, decoded for the application (addresses and keys MSB first).

    addr_type, addr: the peer's identity address (the store's key);
    ltk/ediv/rand: the LTK we answer with as peripheral (our keys, type 1),
    else the peer's; our_ltk, peer_ltk: both; irk, csrk: the peer's (None
    if not distributed); key_size, authenticated, sc, sign_counter; added,
    last_used (time.time() values, 0 if unknown); pinned; layout.
    """

    def __init__(self, e):
        from blesmp.blob import decode  # (loaded with the first Bond: not needed at rest)
        from blesmp.secinfo import detect

        o = _part(e, 1)
        p = _part(e, 2)
        our = decode(o) if o else None
        peer = decode(p) if p else None
        self.addr_type = e[_K]
        self.addr = bytes(reversed(e[_K + 1:_K + 7]))
        self.our_ltk = our.ltk if our else None
        self.peer_ltk = peer.ltk if peer else None
        main = our if our and our.ltk else peer
        self.ltk = main.ltk if main else None
        self.ediv = main.ediv if main else 0
        self.rand = main.rand if main else 0
        self.irk = peer.irk if peer else None
        self.csrk = peer.csrk if peer else None
        ks, auth, sc = _strength(e)
        self.key_size = ks
        self.authenticated = auth
        self.sc = sc
        self.sign_counter = our.sign_counter if our else 0
        self.added, self.last_used, _ = _meta(e)
        self.pinned = bool(e[_FL] & _PIN)
        self.layout = detect(p or o)

    def __repr__(self):
        from .text import repr_of

        return repr_of(self)
