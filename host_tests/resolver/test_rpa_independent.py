"""The resolver against independent implementations of ah (CPython only).

RPAs are made two ways that share no code with lib/blesmp: AES-ECB from the
`cryptography` package in the specification's byte order, and Bumble's
`Address.generate_private_address` (LSB-first IRK and address bytes). The
resolver must find the right bond among 32 and every other IRK must reject.
Hypothesis then drives random addresses and random bond-store histories against
a brute-force model.
"""

import json
import os
from pathlib import Path

from bumble import helpers
from bumble.crypto import ah as bumble_ah
from bumble.hci import Address
from fakestore import Bond, FakeStore
from hypothesis import given, settings
from hypothesis import strategies as st
from rparef import ah_ref, resolves, rpa_ref

from blesmp import resolver
from blesmp.resolver import Resolver, ScanFilter, generate

VECTORS = Path(__file__).resolve().parent.parent / "crypto" / "smp_sample_data.json"


def rpa_bumble(irk):
    """An RPA from Bumble (IRK and address LSB-first there), returned MSB-first."""
    a = Address.generate_private_address(irk[::-1])
    assert a.is_resolvable
    return bytes(a)[::-1]


def ident(i):
    return bytes((0xC0 | (i & 0x3F), 0xB1, 0xE5, 0x00, i >> 8, i & 0xFF))


def test_spec_ah_sample_matches_all_three():
    v = next(x for x in json.loads(VECTORS.read_text()) if x["function"] == "ah")
    irk = bytes.fromhex(v["inputs_msb_first"]["IRK (k)"])
    prand = bytes.fromhex(v["inputs_msb_first"]["prand (r)"])
    want = bytes.fromhex(v["expected_msb_first"]["ah"])
    assert ah_ref(irk, prand) == want
    assert bumble_ah(irk[::-1], prand[::-1]) == want[::-1]
    r = Resolver()
    b = Bond(0, bytes(6), irk)
    r.set_bonds([b])
    assert r.resolve(1, prand + want) is b
    assert r.resolve(1, prand + bytes((want[0], want[1], want[2] ^ 1))) is None


def test_32_bonds_independent_rpas():
    bonds = [Bond(1, ident(i), os.urandom(16)) for i in range(32)]
    r = Resolver()
    r.set_bonds(bonds)
    singles = []
    for b in bonds:
        s = Resolver()
        s.set_bonds([b])
        singles.append(s)
    for owner in bonds:
        for addr in (rpa_ref(owner.irk), rpa_bumble(owner.irk)):
            assert resolver.kind(1, addr) == resolver.RPA
            assert r.resolve(1, addr) is owner
            assert r.identify(1, addr) is owner
            for b, s in zip(bonds, singles):
                assert resolves(b.irk, addr) == (b is owner)
                assert s.resolve(1, addr) is (owner if b is owner else None)


def test_generate_checked_by_bumble():
    for _ in range(50):
        irk = os.urandom(16)
        addr = generate(irk)
        lsb = Address(addr[::-1], Address.RANDOM_DEVICE_ADDRESS)
        assert lsb.is_resolvable
        assert helpers.verify_rpa_with_irk(lsb, irk[::-1])
        assert not helpers.verify_rpa_with_irk(lsb, os.urandom(16))


def test_scan_filter_with_bumble_addresses():
    bonds = [Bond(1, ident(i), os.urandom(16)) for i in range(32)]
    r = Resolver()
    r.set_bonds(bonds)
    seen = []
    f = ScanFilter(r, lambda bond, t, a, at, rssi, d: seen.append((bond, bytes(a))))
    stream = []
    for i in range(100):
        if i % 4 == 0:
            stream.append((None, rpa_bumble(os.urandom(16))))  # a stranger
        else:
            b = bonds[(i * 7) % 32]
            stream.append((b, rpa_bumble(b.irk)))
    for _, addr in stream:
        assert f.irq(5, (1, memoryview(addr), 0, -40, memoryview(b"\x02\x01\x06")))
    assert seen == [(b, a) for b, a in stream if b is not None]
    assert f.errors == 0


# --- hypothesis: random addresses against a brute-force model ---------------

irks = st.one_of(st.binary(min_size=16, max_size=16), st.just(bytes(16)))


@settings(max_examples=150, deadline=None)
@given(
    keys=st.lists(irks, min_size=0, max_size=6, unique=True),
    addr=st.binary(min_size=6, max_size=6),
    addr_type=st.sampled_from([0, 1, 1, 1, 2, 255]),
    owner=st.integers(min_value=-1, max_value=5),
    cache=st.sampled_from([0, 1, 4, 32]),
)
def test_resolve_matches_model(keys, addr, addr_type, owner, cache):
    bonds = [Bond(1, ident(i), k) for i, k in enumerate(keys)]
    if 0 <= owner < len(keys):
        # Make addr a real RPA of one bond half of the time (random bytes almost never are).
        p = bytes(((addr[0] & 0x3F) | 0x40,)) + addr[1:3]
        addr = p + ah_ref(keys[owner], p)
    r = Resolver(cache_size=cache)
    r.set_bonds(bonds)
    want = None
    if addr_type == 1 and (addr[0] & 0xC0) == 0x40:
        want = next((b for b in bonds if any(b.irk) and resolves(b.irk, addr)), None)
    for _ in range(2):  # computed, then cached
        assert r.resolve(addr_type, addr) is want
    if addr_type == 1 and (addr[0] & 0xC0) == 0xC0:
        want = next((b for b in bonds if b.addr == addr), None)
    assert r.identify(addr_type, addr) is want


ops = st.lists(
    st.tuples(st.sampled_from(["add", "remove", "replace", "clear", "query", "query"]),
              st.integers(0, 7), irks),
    max_size=40,
)


@settings(max_examples=80, deadline=None)
@given(ops=ops, cache=st.sampled_from([0, 4, 32]))
def test_store_history_matches_model(ops, cache):
    """Any history of store events: the resolver answers as a fresh brute-force search."""
    store = FakeStore()
    r = Resolver(store, cache_size=cache)
    issued = []  # (addr) RPAs handed out so far, for bonds present or gone
    for op, i, key in ops:
        present = {b.addr for b in store.bonds()}
        addr = ident(i)
        if (op == "add" and addr not in present) or (op == "replace" and addr in present):
            store.add(Bond(1, addr, key))  # "added" / "replaced" (in its place)
        elif op == "remove" and addr in present:
            store.remove(1, addr)
        elif op == "clear":
            store.clear()
        elif op == "query" and store.bonds():
            issued.append(rpa_ref(store.bonds()[i % len(store.bonds())].irk))
        for a in issued:
            # An all-zero IRK means "no IRK": it must never resolve (anyone can forge those).
            want = next((b for b in store.bonds() if any(b.irk) and resolves(b.irk, a)), None)
            assert r.resolve(1, a) is want
        for b in store.bonds():
            assert r.identify(1, b.addr) is b
