# Made-up bonds for the store's benches and tests: bond i (a random static identity address
# C0:00:00:00:i, fixed keys), the same on every run. Runs on the board's interpreter:
# tools/bench/store.py and the real-host bench board (tools/realhost/scenarios/benchboard.py)
# import it on MicroPython.
from blesmp import blob
from blesmp.store import addr_key


def sec(i, irk=True):
    """Bond i's keys (a blob.Sec), with an IRK when `irk`."""
    s = blob.Sec()
    s.addr_type = 1
    s.addr = bytes((0xC0, 0, 0, 0, i >> 8, i & 0xFF))
    s.key_size = 16
    s.ltk = bytes((i + j) & 0xFF for j in range(16))
    if irk:
        s.irk = bytes((0x80 + i + j) & 0xFF for j in range(16))
    s.sc = 1
    return s


def secret(i, layout, irk=True):
    """(key, value) of bond i as NimBLE's SET_SECRET hands them to the store: the key for the
    peer's address, a `layout` blob (blob.ESP88 or blob.NIMBLE80)."""
    s = sec(i, irk)
    return addr_key(1, s.addr), blob.encode(s, layout)
