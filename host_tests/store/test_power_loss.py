"""Power loss at every cut point of a long history of bond changes (CPython only).

A scripted history (pairings, LRU evictions, pinning, re-pairing accepted and
refused, removals, a sign-counter update, a layout conversion, clear) runs once
without interruption to record the persistent state after every step. Then, for
every mutating flash operation N of that run, the history is replayed on fresh
simulated flash (tools/blesim/flash.py) with the power cut right after operation
N (and, for writes, also with that write torn in half), on LittleFS-like,
direct-write and FAT-like (rename cannot replace) flash. After the cut the board
reboots, possibly losing power again during recovery, and a new BondStore loads:
its bonds must equal the state just before or just after the interrupted step,
so no other bond is ever lost, and it must keep working.
"""

import pytest

from blesmp import blob
from blesmp.store import BondStore, addr_key
from tools.blesim.flash import Flash, PowerLoss

MAX = 4
FIGURES = []  # one entry per flash kind; conftest prints them in pytest's summary


def addr(i):
    return bytes((0xD0, 0, 0, 0, 0, i))


def sec(i, seed=0, auth=0, sc=1, counter=0):
    s = blob.Sec()
    s.addr_type = 1
    s.addr = addr(i)
    s.key_size = 16
    s.ltk = bytes((i * 7 + seed + j) & 0xFF for j in range(16))
    s.irk = bytes((0x40 + i + j) & 0xFF for j in range(16))
    s.authenticated = auth
    s.sc = sc
    s.sign_counter = counter
    return s


def _pair(st, i, layout=blob.ESP88, **kw):
    key = memoryview(addr_key(1, addr(i)))
    st.get_secret(2, 0, None)
    st.get_secret(1, 0, memoryview(bytes(7)))
    if st.get_secret(2, 0, key) is not None:  # bonded already: NimBLE's repeat pairing
        for t in (1, 2):
            while st.set_secret(t, key, None):
                pass
    st.set_secret(1, key, memoryview(blob.encode(sec(i, **kw), layout)))
    st.set_secret(2, key, memoryview(blob.encode(sec(i, **kw), layout)))
    st.pairing_done(1, addr(i), 1, 1)


def _sign(st, i):
    key = addr_key(1, addr(i))
    st.set_secret(1, key, None)
    st.set_secret(1, key, blob.encode(sec(i, counter=5), blob.ESP88))


HISTORY = [
    ("irk", lambda st: st.set_secret(10, b"irk", bytes(range(16)))),
    ("pair 1", lambda st: _pair(st, 1)),
    ("pair 2", lambda st: _pair(st, 2, auth=1)),
    ("pair 3", lambda st: _pair(st, 3)),
    ("pair 4", lambda st: _pair(st, 4)),
    ("pin 2", lambda st: st.pin(1, addr(2))),
    ("use 1", lambda st: st.get_secret(1, 0, addr_key(1, addr(1)))),
    ("pair 5 evicts 3", lambda st: _pair(st, 5)),
    ("flush", lambda st: st.flush()),
    ("re-pair 1", lambda st: _pair(st, 1, seed=9)),
    ("weaker re-pair 2", lambda st: _pair(st, 2, seed=9, auth=0)),
    ("remove 4", lambda st: st.remove(1, addr(4))),
    ("pair 6", lambda st: _pair(st, 6)),
    ("pair 7 evicts", lambda st: _pair(st, 7)),
    ("sign counter 6", lambda st: _sign(st, 6)),
    ("firmware writes 80", lambda st: _pair(st, 8, layout=blob.ESP80)),
    ("unpin 2", lambda st: st.pin(1, addr(2), False)),
    ("pair 9 evicts", lambda st: _pair(st, 9, layout=blob.ESP80)),
    ("clear", lambda st: st.clear()),
    ("pair 10", lambda st: _pair(st, 10, layout=blob.ESP80)),
    ("pair 11", lambda st: _pair(st, 11, layout=blob.ESP80)),
]


def state(st):
    """What must survive: bonds (key, keys, strength, pin) and our IRK; times excluded."""
    out = []
    for b in st.bonds():
        out.append((b.addr_type, b.addr, b.ltk, b.peer_ltk, b.irk, b.key_size, b.authenticated, b.sc,
                    b.sign_counter, b.pinned))
    return (st.irk(), sorted(out))


def open_store(fs):
    return BondStore("bonds.db", fs=fs, max_bonds=MAX)


def reference(kw):
    fs = Flash(**kw)
    st = open_store(fs)
    st.set_layout(blob.ESP88)
    st._fixed = None  # learn the layout from NimBLE's writes, as on a board
    states = [state(st)]
    for _name, op in HISTORY:
        op(st)
        states.append(state(open_store(fs)))  # what a reboot right now would see
    return states, fs.ops


def run_cut(flash, cut, tear, recover_cut=None):
    """Replays HISTORY with the power cut after mutating op `cut`; returns (step, store)."""
    st = open_store(flash)
    st.set_layout(blob.ESP88)
    st._fixed = None
    flash.cut_after(cut, tear=tear)
    step = None
    try:
        for i, (_name, op) in enumerate(HISTORY):
            step = i
            op(st)
        step = None
    except PowerLoss:
        pass
    flash.reset()
    if recover_cut is not None:
        flash.cut_after(recover_cut)
        try:
            open_store(flash)
        except PowerLoss:
            pass
        flash.reset()
    return step, open_store(flash)


FLASHES = [
    ("littlefs", dict(model="littlefs")),
    ("direct", dict(model="direct")),
    ("fat", dict(model="direct", replace=False)),
]


@pytest.mark.parametrize("kind,kw", FLASHES, ids=[f[0] for f in FLASHES])
def test_power_loss_at_every_cut_point(kind, kw):
    states, total = reference(kw)
    assert total > 60
    tried = 0
    interrupted = set()
    for tear in (False, True):
        for cut in range(1, total + 1):
            for rc in (None, 1, 2):
                step, st = run_cut(Flash(**kw), cut, tear, rc)
                tried += 1
                got = state(st)
                if step is None:  # the cut fell after the last write
                    assert got == states[-1]
                    continue
                interrupted.add(step)
                assert got in (states[step], states[step + 1]), (kind, cut, tear, rc, HISTORY[step][0])
                assert not st.readonly and st.problems == [], (kind, cut, st.problems)
                # the store keeps working after the reboot
                _pair(st, 20)
                assert st.find(1, addr(20)) is not None
                assert open_store(st._io).find(1, addr(20)) is not None
    FIGURES.append("%s %d (%d flash ops, %d of %d steps hit)" % (kind, tried, total, len(interrupted), len(HISTORY)))
    # every step that writes was hit by some cut
    writing = [i for i in range(len(HISTORY)) if states[i] != states[i + 1]]
    assert set(writing) <= interrupted


def test_power_loss_during_migration_from_aioble():
    import binascii
    import json

    ents = []
    for i in (1, 2, 3):
        k = addr_key(1, addr(i))
        v = blob.encode(sec(i), blob.NIMBLE80)
        ents += [(1, k, v), (2, k, v)]
    text = json.dumps([(t, binascii.b2a_base64(k).decode(), binascii.b2a_base64(v).decode()) for t, k, v in ents])

    def fresh():
        fs = Flash(model="direct", replace=False)
        fs.write_bytes("ble_secrets.json", text.encode())
        return fs

    probe = fresh()
    m = probe.mark()
    BondStore("bonds.db", fs=probe, layout=blob.ESP88)
    total = probe.since(m)["ops"]
    assert total >= 4
    tried = 0
    for cut in range(1, total + 1):
        for tear in (False, True):
            fs = fresh()
            fs.cut_after(cut, tear=tear)
            try:
                BondStore("bonds.db", fs=fs, layout=blob.ESP88)
            except PowerLoss:
                pass
            fs.reset()
            st = BondStore("bonds.db", fs=fs, layout=blob.ESP88)
            tried += 1
            assert [b.addr[5] for b in st.bonds()] == [1, 2, 3], (cut, tear)
            assert st.find(1, addr(2)).ltk == sec(2).ltk
    FIGURES.append("migration from ble_secrets.json %d" % tried)
