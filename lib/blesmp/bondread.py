# The store's files as its cold modules share them (the loader blesmp.bondload, the writer
# blesmp.bondwrite, the side-file scrubber blesmp.bondfiles): the image's magic and version, a
# bounded read, the size bound, key decoding of imported JSON, and the store's list of
# problems. Imported with them and dropped with them. Not part of the API.
import binascii

from micropython import const

VERSION = const(1)  # of the image format (blesmp.bondwrite writes it, blesmp.bondload checks it)
_MAGIC = b"BSMP"
_REC = const(256)  # room per bond in the size bound (a bond record is at most 8 + 23 + 88 + 88 bytes)


def limit(self):
    """The largest image loading reads (bytes): above any store max_bonds allows (8 bonds: about
    1.7 KB; the bound is 4.6 KB up to 16 bonds), well below what the board's heap can hold while it
    parses (a 44 KB file raised MemoryError at boot)."""
    return 512 + _REC * max(self.max_bonds, 16)


def _read(self, p, n):
    # -> (at most n bytes, True if the file has more) or (None, False) if absent
    try:
        with self._io.open(p, "rb") as f:
            data = f.read(n)
            return data, bool(f.read(1))
    except OSError:
        return None, False


def _dec(s):
    # base64 (aioble, the bonding example), or hex of a key/IRK/blob as some forks write it
    s = s.strip()
    if len(s) in (14, 32, 160, 176):
        try:
            return binascii.unhexlify(s)
        except ValueError:
            pass
    return binascii.a2b_base64(s)


def problem(self, msg):
    # what went wrong with the store's files, for store.problems (the last 8)
    self.problems.append(msg)
    del self.problems[:-8]
