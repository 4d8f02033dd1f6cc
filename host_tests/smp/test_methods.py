"""Method selection (Vol 3 Part H 2.3.5.1) and our engine paired with itself over the full matrix:
5 x 5 IO capabilities x SC on/off x MITM on/off x bonding on/off."""

import itertools
import random

import pytest
from harness import User, pair_ours
from hypothesis import given, settings
from hypothesis import strategies as st

from tools.smp import Identity, SmpConfig, const
from tools.smp.methods import select

JW, NC, OOB = "just_works", "numeric_comparison", "oob"
RD = ("passkey", "resp_displays")  # responder displays, initiator inputs
ID = ("passkey", "init_displays")  # initiator displays, responder inputs
BI = ("passkey", "both_input")

# Table 2.8 as the specification prints it: one row per RESPONDER capability, one column per
# INITIATOR capability (DisplayOnly, DisplayYesNo, KeyboardOnly, NoInputNoOutput, KeyboardDisplay).
# A pair is (legacy, LE Secure Connections).
TABLE_2_8 = {
    0: [(JW, JW), (JW, JW), (RD, RD), (JW, JW), (RD, RD)],
    1: [(JW, JW), (JW, NC), (RD, RD), (JW, JW), (RD, NC)],
    2: [(ID, ID), (ID, ID), (BI, BI), (JW, JW), (ID, ID)],
    3: [(JW, JW), (JW, JW), (JW, JW), (JW, JW), (JW, JW)],
    4: [(ID, ID), (ID, NC), (RD, RD), (JW, JW), (ID, NC)],
}


def expected(init_io, resp_io, sc, mitm_i, mitm_r):
    if not (mitm_i or mitm_r):
        return JW
    return TABLE_2_8[resp_io][init_io][1 if sc else 0]


def _norm(sel):
    method, roles = sel
    return (method, roles) if method == "passkey" else method


@pytest.mark.parametrize("sc", [False, True])
def test_select_follows_table_2_8(sc):
    for i, r, mi, mr in itertools.product(range(5), range(5), (0, 1), (0, 1)):
        assert _norm(select(sc, i, r, 0, 0, mi, mr)) == expected(i, r, sc, mi, mr), (i, r, mi, mr)


def test_select_oob_rules():
    # legacy: OOB only when both have OOB data; LE SC: when either has the peer's data
    assert select(False, 3, 3, 1, 1, 0, 0)[0] == OOB
    assert select(False, 3, 3, 1, 0, 1, 1)[0] == JW
    assert select(False, 2, 0, 0, 1, 1, 1)[0] == "passkey"
    assert select(True, 3, 3, 1, 0, 0, 0)[0] == OOB
    assert select(True, 3, 3, 0, 1, 0, 0)[0] == OOB
    assert select(True, 1, 1, 0, 0, 1, 0)[0] == NC


ID_C = Identity(bytes.fromhex("a1" * 16), 0, bytes.fromhex("001b2c3d4e5f"), csrk=bytes.fromhex("c1" * 16))
ID_P = Identity(bytes.fromhex("b2" * 16), 1, bytes.fromhex("f0a1a2a3a4a5"))

MATRIX = list(itertools.product(range(5), range(5), (False, True), (False, True), (False, True)))


@pytest.mark.parametrize("io_i, io_r, sc, mitm, bonding", MATRIX,
                         ids=["i%d-r%d-%s-%s-%s" % (a, b, "sc" if s else "legacy", "mitm" if m else "nomitm",
                                                    "bond" if d else "nobond") for a, b, s, m, d in MATRIX])
def test_self_pairing_matrix(io_i, io_r, sc, mitm, bonding):
    rnd = random.Random(hash((io_i, io_r, sc, mitm, bonding)))
    users = (User(passkey=rnd.randrange(1000000)), User(passkey=rnd.randrange(1000000)))
    link = pair_ours(SmpConfig(io_cap=io_i, sc=sc, mitm=mitm, bonding=bonding),
                     SmpConfig(io_cap=io_r, sc=sc, mitm=mitm, bonding=bonding),
                     id_c=ID_C, id_p=ID_P, user_c=users[0], user_p=users[1])
    c, p = link.c.result, link.p.result
    assert c is not None and p is not None, (link.c.failure, link.p.failure)
    want = expected(io_i, io_r, sc, mitm, mitm)
    method = want[0] if isinstance(want, tuple) else want
    for r in (c, p):
        assert r.method == method
        assert r.sc == sc
        assert r.authenticated == (method != JW)
        assert r.bonded == bonding
        assert r.key_size == 16
    assert c.initiator and not p.initiator
    # the link was encrypted with the same key on both sides
    assert link.encryptions == [(c.stk, p.stk, True)]
    # who was asked for what
    if method == "passkey":
        roles = want[1]
        shows_c = roles == "init_displays"
        shows_p = roles == "resp_displays"
        assert link.c.user.asked == (["display"] if shows_c else ["input"])
        assert link.p.user.asked == (["display"] if shows_p else ["input"])
        if roles != "both_input":
            shown = (link.c if shows_c else link.p).user.displayed
            assert shown == (users[0] if shows_c else users[1]).passkey
    elif method == NC:
        assert link.c.user.compared == link.p.user.compared is not None
        assert 0 <= link.c.user.compared <= 999999
    else:
        assert link.c.user.asked == link.p.user.asked == []
    # keys
    if sc:
        assert c.ltk == p.ltk == c.stk
        assert c.local.ediv == c.local.rand == 0
    if bonding:
        if not sc:
            assert c.peer.ltk == p.local.ltk is not None and c.peer.ediv == p.local.ediv
            assert c.peer.rand == p.local.rand
            assert p.peer.ltk == c.local.ltk is not None
            assert c.ltk == p.ltk  # the key the central will re-encrypt with = the peripheral's
        assert c.peer.irk == ID_P.irk and c.peer.identity == (ID_P.addr_type, ID_P.addr)
        assert p.peer.irk == ID_C.irk and p.peer.identity == (ID_C.addr_type, ID_C.addr)
        assert p.peer.csrk == ID_C.csrk and c.peer.csrk == p.local.csrk is not None
    else:
        for r in (c, p):
            assert r.peer.irk is None and r.peer.csrk is None and r.peer.identity is None
            if not sc:
                assert r.peer.ltk is None


@pytest.mark.parametrize("mi, mr", [(True, False), (False, True)])
def test_mitm_on_one_side_is_enough(mi, mr):
    link = pair_ours(SmpConfig(io_cap=4, mitm=mi), SmpConfig(io_cap=0, mitm=mr))
    assert link.c.result.method == "passkey" and link.p.result.authenticated


@pytest.mark.parametrize("sc_i, sc_r", [(True, False), (False, True)])
def test_sc_needs_both_sides(sc_i, sc_r):
    link = pair_ours(SmpConfig(sc=sc_i), SmpConfig(sc=sc_r))
    assert link.c.result.sc is False and link.p.result.sc is False


def test_key_distribution_subset():
    # central asks ENC|SIGN from the peripheral and distributes ID only; no identity on the peripheral
    link = pair_ours(SmpConfig(sc=False, init_key_dist=const.KEY_ID, resp_key_dist=const.KEY_ENC | const.KEY_SIGN),
                     SmpConfig(sc=False), id_c=ID_C, id_p=None)
    c, p = link.c.result, link.p.result
    assert c.peer.ltk is not None and c.peer.csrk is not None and c.peer.irk is None
    assert p.peer.irk == ID_C.irk and p.peer.ltk is None and p.peer.csrk is None
    names = [line.split()[3] for line in link.trace if "->" in line and "link:" not in line]
    assert names[-5:] == ["ENCRYPTION_INFORMATION", "CENTRAL_IDENTIFICATION", "SIGNING_INFORMATION",
                          "IDENTITY_INFORMATION", "IDENTITY_ADDRESS_INFORMATION"]


@pytest.mark.parametrize("sc", [False, True])
def test_key_size_negotiation_and_masking(sc):
    link = pair_ours(SmpConfig(sc=sc, max_key_size=10, min_key_size=7), SmpConfig(sc=sc, max_key_size=12))
    c, p = link.c.result, link.p.result
    assert c.key_size == p.key_size == 10
    assert c.stk[:6] == bytes(6) and c.stk == p.stk
    assert c.ltk[:6] == bytes(6) and c.ltk == p.ltk


# ---------------------------------------------------------------- random configurations

@st.composite
def _side(draw):
    return dict(io_cap=draw(st.integers(0, 4)), sc=draw(st.booleans()), mitm=draw(st.booleans()),
                bonding=draw(st.booleans()), keypress=draw(st.booleans()), ct2=draw(st.booleans()),
                max_key_size=draw(st.integers(7, 16)), init_key_dist=draw(st.integers(0, 7)),
                resp_key_dist=draw(st.integers(0, 7)))


@settings(max_examples=120, deadline=None)
@given(_side(), _side(), st.booleans(), st.booleans(), st.integers(0, 999999))
def test_random_configurations_pair_consistently(ci, cr, id_i, id_r, passkey):
    ks = min(ci["max_key_size"], cr["max_key_size"])
    link = pair_ours(SmpConfig(min_key_size=7, **ci), SmpConfig(min_key_size=7, passkey=passkey, **cr),
                     id_c=ID_C if id_i else None, id_p=ID_P if id_r else None,
                     user_c=User(passkey=passkey), user_p=User(passkey=passkey))
    c, p = link.c.result, link.p.result
    assert c is not None and p is not None, (link.c.failure, link.p.failure)
    sc = ci["sc"] and cr["sc"]
    want = expected(ci["io_cap"], cr["io_cap"], sc, ci["mitm"], cr["mitm"])
    assert c.method == p.method == (want[0] if isinstance(want, tuple) else want)
    assert c.key_size == p.key_size == ks and c.stk == p.stk and c.stk[: 16 - ks] == bytes(16 - ks)
    bonded = ci["bonding"] and cr["bonding"]
    assert c.bonded == p.bonded == bonded
    # what each side received is what the other distributed, and only keys both agreed on
    init_kd = ci["init_key_dist"] & cr["init_key_dist"] if bonded else 0
    resp_kd = ci["resp_key_dist"] & cr["resp_key_dist"] if bonded else 0
    if not id_i:
        init_kd &= ~const.KEY_ID
    if not id_r:
        resp_kd &= ~const.KEY_ID
    for kd, sender, receiver in ((init_kd, c, p), (resp_kd, p, c)):
        got = receiver.peer
        assert (got.irk is not None) == bool(kd & const.KEY_ID)
        assert got.irk == sender.local.irk and got.identity == sender.local.identity
        assert (got.csrk is not None) == bool(kd & const.KEY_SIGN) and got.csrk == sender.local.csrk
        if sc:
            assert got.ltk == sender.local.ltk == c.stk
        else:
            assert (got.ltk is not None) == bool(kd & const.KEY_ENC)
            assert (got.ltk, got.ediv, got.rand) == (sender.local.ltk, sender.local.ediv, sender.local.rand)
            if got.ltk is not None:
                assert got.ltk[: 16 - ks] == bytes(16 - ks)
