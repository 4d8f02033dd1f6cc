"""The resolver following the real bond store (lib/blesmp/store.py) on simulated flash.

Bonds arrive the way NimBLE stores them (SET_SECRET of type 1 then 2 with
`ble_store_value_sec` blobs carrying the peer IRK); the resolver must follow
additions, removal, re-pairing with a new IRK, clearing, and a power cycle.
"""

import os

import pytest

store_mod = pytest.importorskip("blesmp.store")
blob = pytest.importorskip("blesmp.blob")
from rparef import rpa_ref as rpa  # noqa: E402

from blesmp.resolver import Resolver  # noqa: E402
from tools.blesim.flash import Flash  # noqa: E402


def ident(i):
    return bytes((0xC0 | (i & 0x3F), 0x5E, 0x70, 0x12, 0x34, i & 0xFF))


def pair(store, addr_type, addr, irk):
    """What NimBLE does when a bonding pairing ends: SET(1, our keys), SET(2, peer keys)."""
    key = store_mod.addr_key(addr_type, addr)
    for sec_type, peer_irk in ((1, None), (2, irk)):
        s = blob.Sec()
        s.addr_type = addr_type
        s.addr = addr
        s.key_size = 16
        s.ltk = os.urandom(16)
        s.irk = peer_irk
        s.sc = 1
        assert store.set_secret(sec_type, memoryview(key), memoryview(blob.encode(s, blob.ESP88)))


def test_resolver_follows_bond_store():
    fs = Flash()
    store = store_mod.BondStore("bonds.db", fs=fs, layout=blob.ESP88, max_bonds=40)
    r = Resolver(store)
    irks = [os.urandom(16) for _ in range(32)]
    for i, k in enumerate(irks):
        pair(store, 1, ident(i), k)
    assert len(store.bonds()) == 32 and len(r) == 32
    addrs = [rpa(k) for k in irks]
    for i, a in enumerate(addrs):
        b = r.resolve(1, a)
        assert b is not None and b.addr == ident(i) and b.irk == irks[i]
    assert r.resolve(1, rpa(os.urandom(16))) is None

    # Removal through the store's API: the cached hit must go.
    assert store.remove(1, ident(3))
    assert r.resolve(1, addrs[3]) is None
    assert r.identify(1, ident(3)) is None

    # Re-pairing (NimBLE deletes, then stores new keys with a new IRK).
    key = store_mod.addr_key(1, ident(5))
    while store.set_secret(1, memoryview(key), None):
        pass
    while store.set_secret(2, memoryview(key), None):
        pass
    new_irk = os.urandom(16)
    store.vouched = True  # (Just Works keys replace a bond only when vouched for: may_replace)
    pair(store, 1, ident(5), new_irk)
    store.vouched = False
    store.pairing_done(1, ident(5), 1, 1)
    assert r.resolve(1, addrs[5]) is None
    b = r.resolve(1, rpa(new_irk))
    assert b is not None and b.addr == ident(5)

    # Power cycle: a new store and resolver from the same flash.
    store2 = store_mod.BondStore("bonds.db", fs=fs, layout=blob.ESP88, max_bonds=40)
    r2 = Resolver(store2)
    assert len(r2) == 31
    assert r2.resolve(1, addrs[7]).addr == ident(7)
    assert r2.resolve(1, addrs[3]) is None

    store2.clear()
    assert len(r2) == 0 and r2.resolve(1, addrs[7]) is None
