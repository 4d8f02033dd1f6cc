"""Pairing on simulated ESP32 boards: the IRQ sequences reference/micropython-ble-security.md
predicts (§3.6, §4), with the secret store in a dict handler (helpers.Store)."""

import pytest
from simhelpers import (
    _IRQ_CENTRAL_CONNECT,
    _IRQ_CENTRAL_DISCONNECT,
    _IRQ_ENCRYPTION_UPDATE,
    _IRQ_GET_SECRET,
    _IRQ_PASSKEY_ACTION,
    _IRQ_PERIPHERAL_CONNECT,
    _IRQ_PERIPHERAL_DISCONNECT,
    _IRQ_SET_SECRET,
    Recorder,
    Store,
    connect,
)

from tools.blesim import World
from tools.blesim.firmware import secstruct

SEC = (_IRQ_GET_SECRET, _IRQ_SET_SECRET, _IRQ_ENCRYPTION_UPDATE, _IRQ_PASSKEY_ACTION)


def key(board):
    return secstruct.store_key(0, board.public_addr)


def setup(profile="esp32", configs=({}, {}), handler_first=True, stores=(None, None), profiles=(None, None)):
    w = World(profile=profile)
    p = w.board("p", profile=profiles[0])
    c = w.board("c", profile=profiles[1])
    recs = []
    for b, cfg, st in zip((p, c), configs, stores):
        r = Recorder(b.ble, st)
        if cfg:
            b.ble.config(**cfg)
        if handler_first:
            b.ble.irq(r)
        b.ble.active(True)
        if not handler_first:
            b.ble.irq(r)
        r.clear()
        recs.append(r)
    return w, p, c, recs[0], recs[1]


def sec_events(rec):
    return [(e, d) for e, d in rec.events if e in SEC]


def test_just_works_bonded_exact_irq_sequence():
    w, p, c, rp, rc = setup()
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE) and rc.last(_IRQ_ENCRYPTION_UPDATE), 5)
    size = 88
    # peripheral: bond count, type-1 quirk, repeat-pairing check, SET 1, SET 2, then the update (§4.2)
    ev = sec_events(rp)
    assert [(e, d[:2]) for e, d in ev[:3]] == [(_IRQ_GET_SECRET, (2, 0)), (_IRQ_GET_SECRET, (1, 0)),
                                              (_IRQ_GET_SECRET, (2, 0))]
    assert ev[0][1] == (2, 0, None)
    assert ev[1][1] == (1, 0, b"\x00" * 7)
    assert ev[2][1] == (2, 0, key(c))
    assert [(e, d[0], d[1]) for e, d in ev[3:5]] == [(_IRQ_SET_SECRET, 1, key(c)), (_IRQ_SET_SECRET, 2, key(c))]
    assert len(ev[3][1][2]) == size and len(ev[4][1][2]) == size
    assert ev[5] == (_IRQ_ENCRYPTION_UPDATE, (hp, 1, 0, 1, 16))
    assert len(ev) == 6
    # central: LTK lookup first, then the bond count (§4.3)
    ev = sec_events(rc)
    assert ev[0] == (_IRQ_GET_SECRET, (2, 0, key(p)))
    assert ev[1] == (_IRQ_GET_SECRET, (2, 0, None))
    assert ev[2] == (_IRQ_GET_SECRET, (1, 0, b"\x00" * 7))
    assert [(e, d[0]) for e, d in ev[3:5]] == [(_IRQ_SET_SECRET, 1), (_IRQ_SET_SECRET, 2)]
    assert ev[5] == (_IRQ_ENCRYPTION_UPDATE, (hc, 1, 0, 1, 16))
    assert len(ev) == 6
    # both sides hold the same LESC LTK, in each other's entries
    lay = "88"
    p_our = secstruct.unpack(lay, rp.store.secrets[(1, key(c))])
    p_peer = secstruct.unpack(lay, rp.store.secrets[(2, key(c))])
    c_our = secstruct.unpack(lay, rc.store.secrets[(1, key(p))])
    c_peer = secstruct.unpack(lay, rc.store.secrets[(2, key(p))])
    assert p_our["ltk"] == p_peer["ltk"] == c_our["ltk"] == c_peer["ltk"] is not None
    assert p_our["sc"] == 1 and p_our["authenticated"] == 0 and p_our["key_size"] == 16
    assert p_our["ediv"] == 0 and p_our["rand"] == 0
    # the IRKs distributed are the ones each board loaded at active(True) (type 10)
    assert c_peer["irk"] == rp.store.secrets[(10, b"irk")][::-1] or c_peer["irk"] == rp.store.secrets[(10, b"irk")]
    assert p_peer["addr"] == c.public_addr
    # the central reports first (after sending its own keys), the peripheral a bit later
    tp = [r.t for r in w.trace.select("irq", "p", "_IRQ_ENCRYPTION_UPDATE")][0]
    tc = [r.t for r in w.trace.select("irq", "c", "_IRQ_ENCRYPTION_UPDATE")][0]
    assert tc < tp


def test_irk_from_store_is_the_one_distributed():
    w, p, c, rp, rc = setup()
    irk_p = rp.store.secrets[(10, b"irk")]
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE), 5)
    c_peer = secstruct.unpack("88", rc.store.secrets[(2, key(p))])
    assert c_peer["irk"] == irk_p


@pytest.mark.parametrize("who", ["p", "c"])
def test_just_works_without_bonding(who):
    cfgs = ({"bond": False}, {}) if who == "p" else ({}, {"bond": False})
    w, p, c, rp, rc = setup(configs=cfgs)
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE) and rc.last(_IRQ_ENCRYPTION_UPDATE), 5)
    assert rp.last(_IRQ_ENCRYPTION_UPDATE) == (hp, 1, 0, 0, 16)
    assert rc.last(_IRQ_ENCRYPTION_UPDATE) == (hc, 1, 0, 0, 16)
    assert rp.of(_IRQ_SET_SECRET) == [] and rc.of(_IRQ_SET_SECRET) == []


def test_old_profile_reports_encryption_before_the_sets():
    w, p, c, rp, rc = setup(profile="esp32-v1.23")
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: len(rp.of(_IRQ_SET_SECRET)) == 2, 5)
    ev = [(e, d[0]) for e, d in rp.of(_IRQ_SET_SECRET, _IRQ_ENCRYPTION_UPDATE)]
    assert ev == [(_IRQ_ENCRYPTION_UPDATE, hp), (_IRQ_SET_SECRET, 1), (_IRQ_SET_SECRET, 2)]
    blob = rp.of(_IRQ_SET_SECRET)[0][1][2]
    assert len(blob) == 80
    assert blob[7] == 16  # key_size at offset 7 in the upstream layout
    assert blob[74] & 0x04  # sc flag in bit 2 of byte 74


def test_store_blob_of_the_wrong_size_is_ignored():
    """A blob saved by a firmware with another struct size is 'not found' (§3.2)."""
    w, p, c, rp, rc = setup()
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE) and rc.last(_IRQ_ENCRYPTION_UPDATE), 5)
    # pretend the central's store was written by an 80-byte firmware
    for k in list(rc.store.secrets):
        if k[0] in (1, 2):
            rc.store.secrets[k] = rc.store.secrets[k][:80]
    c.ble.gap_disconnect(hc)
    assert w.run_until(lambda: rc.last(_IRQ_PERIPHERAL_DISCONNECT), 2)
    rp.clear(), rc.clear()
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    # found-but-wrong-size -> NimBLE pairs afresh (a Pairing Request reaches the peripheral,
    # which deletes its old bond as a repeat pairing)
    assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE), 5)
    assert any(e == _IRQ_SET_SECRET and d[2] is None for e, d in rp.events)
    assert rc.last(_IRQ_ENCRYPTION_UPDATE) == (hc, 1, 0, 1, 16)


def passkey_setup(p_io, c_io, c_profile=None):
    cfg_p = {"io": p_io, "mitm": True}
    cfg_c = {"io": c_io, "mitm": True}
    w, p, c, rp, rc = setup(configs=(cfg_p, cfg_c), profiles=(None, c_profile))
    return w, p, c, rp, rc


def test_passkey_peripheral_displays_phone_enters():
    w, p, c, rp, rc = passkey_setup(0, 4, c_profile="phone")
    shown = []

    def p_answer(conn, action, number):
        assert (action, number) == (3, 0)  # DISPLAY, and NimBLE gives no number
        shown.append(123456)
        return 123456

    def c_answer(conn, action, number):
        assert action == 2  # the phone types what the board shows
        return shown[0]

    rp.passkey = p_answer
    rc.passkey = c_answer
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE) and rc.last(_IRQ_ENCRYPTION_UPDATE), 10)
    assert rp.of(_IRQ_PASSKEY_ACTION) == [(_IRQ_PASSKEY_ACTION, (hp, 3, 0))]
    assert rp.last(_IRQ_ENCRYPTION_UPDATE) == (hp, 1, 1, 1, 16)
    assert rc.last(_IRQ_ENCRYPTION_UPDATE) == (hc, 1, 1, 1, 16)
    assert secstruct.unpack("88", rp.store.secrets[(1, key(c))])["authenticated"] == 1


def test_passkey_peripheral_enters_wrong_value_fails_with_current_state():
    w, p, c, rp, rc = passkey_setup(2, 4, c_profile="phone")
    rc.passkey = lambda conn, action, number: 111111 if action == 3 else None
    rp.passkey = lambda conn, action, number: 222222  # typed wrong
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE) and rc.last(_IRQ_ENCRYPTION_UPDATE), 10)
    assert rp.of(_IRQ_PASSKEY_ACTION) == [(_IRQ_PASSKEY_ACTION, (hp, 2, 0))]
    # no failure status: the update carries the current (unencrypted) state
    assert rp.last(_IRQ_ENCRYPTION_UPDATE) == (hp, 0, 0, 0, 0)
    assert rc.last(_IRQ_ENCRYPTION_UPDATE) == (hc, 0, 0, 0, 0)
    assert rp.of(_IRQ_SET_SECRET) == []
    fails = w.trace.select("host", name="pairing_failed")
    assert {r.args["reason"] for r in fails} == {0x04}  # confirm value failed


def test_passkey_peripheral_enters_right_value():
    w, p, c, rp, rc = passkey_setup(2, 4, c_profile="phone")
    rc.passkey = lambda conn, action, number: 654321 if action == 3 else None
    rp.passkey = lambda conn, action, number: 654321
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE) and rc.last(_IRQ_ENCRYPTION_UPDATE), 10)
    assert rp.last(_IRQ_ENCRYPTION_UPDATE) == (hp, 1, 1, 1, 16)


@pytest.mark.parametrize("accept", [True, False])
def test_numeric_comparison(accept):
    w, p, c, rp, rc = passkey_setup(1, 1, c_profile="phone")
    numbers = {}

    def ans(side):
        def f(conn, action, number):
            assert action == 4
            numbers[side] = number
            return 1 if accept or side == "c" else 0
        return f

    rp.passkey = ans("p")
    rc.passkey = ans("c")
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE) and rc.last(_IRQ_ENCRYPTION_UPDATE), 40)
    assert numbers["p"] == numbers["c"] and 0 <= numbers["p"] <= 999999
    if accept:
        assert rp.last(_IRQ_ENCRYPTION_UPDATE) == (hp, 1, 1, 1, 16)
        assert rc.last(_IRQ_ENCRYPTION_UPDATE) == (hc, 1, 1, 1, 16)
    else:
        # the phone hears Pairing Failed 0x0C at once; the ESP32 that said "no" reports the
        # failure only with the SMP timer (esp-nimble), 30 s later
        assert rp.last(_IRQ_ENCRYPTION_UPDATE) == (hp, 0, 0, 0, 0)
        assert rc.last(_IRQ_ENCRYPTION_UPDATE) == (hc, 0, 0, 0, 0)
        t_fail = w.trace.select("host", "p", "pairing_failed")[0].t
        t_upd = w.trace.select("irq", "p", "_IRQ_ENCRYPTION_UPDATE")[0].t
        assert t_upd - t_fail == pytest.approx(30.0)
        assert [r.args["reason"] for r in w.trace.select("host", "p", "pairing_failed")] == [0x0C]
        assert [r.args["cause"] for r in w.trace.select("host", "c", "pairing_failed")] == ["received"]


def test_central_role_passkey_stalls_until_smp_timeout():
    """An ESP32 central never gets PASSKEY_ACTION: the pairing stalls to the 30 s timeout."""
    w, p, c, rp, rc = passkey_setup(0, 4)  # both ESP32; the central would have to type
    rp.passkey = lambda conn, action, number: 123456
    hp, hc = connect(w, p, c)
    t0 = w.now
    c.ble.gap_pair(hc)
    w.run(29.0)
    assert rc.last(_IRQ_ENCRYPTION_UPDATE) is None and rc.of(_IRQ_PASSKEY_ACTION) == []
    assert rp.of(_IRQ_PASSKEY_ACTION) == [(_IRQ_PASSKEY_ACTION, (hp, 3, 0))]
    assert w.run_until(lambda: rc.last(_IRQ_ENCRYPTION_UPDATE), 3)
    assert rc.last(_IRQ_ENCRYPTION_UPDATE) == (hc, 0, 0, 0, 0)
    t = w.trace.select("irq", "c", "_IRQ_ENCRYPTION_UPDATE")[0].t
    assert 30.0 <= t - t0 < 30.5
    assert w.trace.select("host", "c", "passkey_action_not_delivered")
    assert w.trace.select("host", "c", "smp_timeout")
    # the link stays up
    assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE), 2)
    assert rp.last(_IRQ_CENTRAL_DISCONNECT) is None
    # NimBLE does not taint the link after an SMP timeout: gap_pair starts a new pairing
    n = len(w.trace.select("pdu", "c", "PAIRING_REQUEST"))
    c.ble.gap_pair(hc)
    w.run(1)
    assert len(w.trace.select("pdu", "c", "PAIRING_REQUEST")) == n + 1
    assert rp.of(_IRQ_PASSKEY_ACTION)[-1] == (_IRQ_PASSKEY_ACTION, (hp, 3, 0))
    assert len(rp.of(_IRQ_PASSKEY_ACTION)) == 2


@pytest.mark.parametrize("sc_on", [True, False], ids=["lesc", "legacy"])
def test_bonded_reconnection_after_both_boards_reset(sc_on):
    sp, sc = Store(), Store()
    cfg = {} if sc_on else {"le_secure": False}
    w, p, c, rp, rc = setup(stores=(sp, sc), configs=(cfg, cfg))
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE) and rc.last(_IRQ_ENCRYPTION_UPDATE), 5)
    ltk = secstruct.unpack("88", sp.secrets[(1, key(c))])["ltk"]
    p.reset()
    c.reset()
    assert not p.ble.active() and p.ble._handler is None
    w.run(5)  # the links are gone on both sides (nobody left to tell)
    rp2, rc2 = Recorder(p.ble, sp), Recorder(c.ble, sc)
    p.ble.irq(rp2)
    c.ble.irq(rc2)
    p.ble.active(True)
    c.ble.active(True)
    # the stored IRK is loaded, peer IRKs restored twice around it (§3.6 item 1)
    assert [(e, d) for e, d in rp2.events] == [
        (_IRQ_GET_SECRET, (2, 0, None)), (_IRQ_GET_SECRET, (2, 1, None)),
        (_IRQ_GET_SECRET, (10, 0, b"irk")),
        (_IRQ_GET_SECRET, (2, 0, None)), (_IRQ_GET_SECRET, (2, 1, None)),
    ]
    rp2.clear(), rc2.clear()
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: rp2.last(_IRQ_ENCRYPTION_UPDATE) and rc2.last(_IRQ_ENCRYPTION_UPDATE), 5)
    assert sec_events(rc2) == [(_IRQ_GET_SECRET, (2, 0, key(p))), (_IRQ_ENCRYPTION_UPDATE, (hc, 1, 0, 1, 16))]
    assert sec_events(rp2) == [(_IRQ_GET_SECRET, (1, 0, key(c))), (_IRQ_ENCRYPTION_UPDATE, (hp, 1, 0, 1, 16))]
    assert w.trace.select("pdu", name="PAIRING_REQUEST")[-1].t < w.trace.select("link", name="reset")[0].t
    link = w.air.links[0]
    assert link.encrypted and link.ltk == ltk
    p_our = secstruct.unpack("88", sp.secrets[(1, key(c))])
    c_peer = secstruct.unpack("88", sc.secrets[(2, key(p))])
    assert p_our["ltk"] == c_peer["ltk"] and (p_our["ediv"], p_our["rand"]) == (c_peer["ediv"], c_peer["rand"])
    assert p_our["sc"] == int(sc_on)
    if not sc_on:
        # legacy: the peripheral's distributed LTK comes with a random EDIV/Rand; the central's own
        # distributed LTK (type 1 on the central) is another key
        assert p_our["rand"] != 0
        assert secstruct.unpack("88", sc.secrets[(1, key(p))])["ltk"] != p_our["ltk"]


@pytest.mark.parametrize("profile", ["esp32", "nimble"])
def test_reconnect_with_lost_bond_on_peripheral_gets_negative_reply(profile):
    sp, sc = Store(), Store()
    cfg = {"bond": True}
    w, p, c, rp, rc = setup(profile=profile, stores=(sp, sc), configs=(cfg, cfg))
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE), 5)
    c.ble.gap_disconnect(hc)
    assert w.run_until(lambda: rp.last(_IRQ_CENTRAL_DISCONNECT), 2)
    sp.secrets.clear()
    rp.clear(), rc.clear()
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    w.run(2)
    # not found -> negative reply, and no update on the peripheral
    assert sec_events(rp)[0] == (_IRQ_GET_SECRET, (1, 0, key(c)))
    assert [r.args["status"] for r in w.trace.select("link", "c", "enc_change")][1] == 0x06
    if profile == "nimble":
        assert sec_events(rp) == [(_IRQ_GET_SECRET, (1, 0, key(c)))]
        assert rc.last(_IRQ_ENCRYPTION_UPDATE) == (hc, 0, 0, 0, 0)
    else:
        # esp-nimble re-pairs by itself (no update for the failed restore), new keys on both sides
        assert [d for e, d in rc.of(_IRQ_ENCRYPTION_UPDATE)] == [(hc, 1, 0, 1, 16)]
        assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE), 2)
        assert rp.last(_IRQ_ENCRYPTION_UPDATE) == (hp, 1, 0, 1, 16)
        assert secstruct.unpack("88", sp.secrets[(1, key(c))])["ltk"] == \
            secstruct.unpack("88", sc.secrets[(2, key(p))])["ltk"]


def test_repeat_pairing_deletes_then_pairs_afresh():
    sp, sc = Store(), Store()
    w, p, c, rp, rc = setup(stores=(sp, sc))
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE), 5)
    old = sp.secrets[(2, key(c))]
    c.ble.gap_disconnect(hc)
    assert w.run_until(lambda: rp.last(_IRQ_CENTRAL_DISCONNECT), 2)
    sc.secrets.clear()  # the central forgot the bond and pairs again
    rp.clear(), rc.clear()
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE), 5)
    k = key(c)
    ev = sec_events(rp)
    assert ev[:9] == [
        (_IRQ_GET_SECRET, (2, 0, None)), (_IRQ_GET_SECRET, (2, 1, None)), (_IRQ_GET_SECRET, (1, 0, b"\0" * 7)),
        (_IRQ_GET_SECRET, (2, 0, k)),
        (_IRQ_SET_SECRET, (1, k, None)), (_IRQ_SET_SECRET, (1, k, None)),  # until False
        (_IRQ_SET_SECRET, (2, k, None)), (_IRQ_SET_SECRET, (2, k, None)),
        (_IRQ_GET_SECRET, (2, 0, k)),
    ]
    assert [(e, d[0]) for e, d in ev[9:]] == [(_IRQ_SET_SECRET, 1), (_IRQ_SET_SECRET, 2),
                                               (_IRQ_ENCRYPTION_UPDATE, hp)]
    assert rp.last(_IRQ_ENCRYPTION_UPDATE) == (hp, 1, 0, 1, 16)
    assert sp.secrets[(2, k)] != old  # the new keys


def test_security_request_from_peripheral_makes_central_pair_then_encrypt():
    sp, sc = Store(), Store()
    w, p, c, rp, rc = setup(stores=(sp, sc))
    hp, hc = connect(w, p, c)
    p.ble.gap_pair(hp)  # peripheral: Security Request
    assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE) and rc.last(_IRQ_ENCRYPTION_UPDATE), 5)
    assert rc.last(_IRQ_ENCRYPTION_UPDATE) == (hc, 1, 0, 1, 16)
    assert w.trace.select("pdu", "p", "SECURITY_REQUEST")
    # second time: the central has the LTK and encrypts with it (GET(2,0,peer) only)
    c.ble.gap_disconnect(hc)
    assert w.run_until(lambda: rp.last(_IRQ_CENTRAL_DISCONNECT), 2)
    rp.clear(), rc.clear()
    hp, hc = connect(w, p, c)
    p.ble.gap_pair(hp)
    assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE) and rc.last(_IRQ_ENCRYPTION_UPDATE), 5)
    assert sec_events(rc) == [(_IRQ_GET_SECRET, (2, 0, key(p))), (_IRQ_ENCRYPTION_UPDATE, (hc, 1, 0, 1, 16))]


def test_link_loss_during_pairing_update_before_disconnect():
    w, p, c, rp, rc = passkey_setup(0, 4)
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: rp.last(_IRQ_PASSKEY_ACTION), 5)
    w.set_in_range(p, c, False)
    assert w.run_until(lambda: rp.last(_IRQ_CENTRAL_DISCONNECT) and rc.last(_IRQ_PERIPHERAL_DISCONNECT), 5)
    order = [e for e, d in rp.events if e in (_IRQ_ENCRYPTION_UPDATE, _IRQ_CENTRAL_DISCONNECT)]
    assert order == [_IRQ_ENCRYPTION_UPDATE, _IRQ_CENTRAL_DISCONNECT]
    assert rp.last(_IRQ_ENCRYPTION_UPDATE) == (hp, 0, 0, 0, 0)
    assert w.trace.select("link", "p", "disconnect")[-1].args["reason"] == 0x08
    # ble_gap_conn_broken raises both in one host call: back to back, at the same moment
    irqs = [(r.name, r.t) for r in w.trace.records if r.kind == "irq" and r.board == "p"]
    assert [n for n, _ in irqs[-2:]] == ["_IRQ_ENCRYPTION_UPDATE", "_IRQ_CENTRAL_DISCONNECT"]
    assert irqs[-2][1] == irqs[-1][1]


def test_peer_leaving_after_pairing_failed_is_a_later_delivery():
    # The phone types a wrong passkey; the peripheral's NimBLE finds the mismatch, sends Pairing
    # Failed and raises the failed update; the phone disconnects as soon as its own update comes.
    # That disconnection reaches the peripheral two connection intervals later (Pairing Failed
    # on the air, then LL_TERMINATE_IND): a later HCI event, never the same delivery
    w, p, c, rp, rc = passkey_setup(0, 4, c_profile="phone")
    rp.passkey = lambda conn, action, number: 123456
    rc.passkey = lambda conn, action, number: 111111

    def leave(event, data):
        r = rc(event, data)
        if event == _IRQ_ENCRYPTION_UPDATE and not data[1]:
            c.ble.gap_disconnect(data[0])
        return r

    hp, hc = connect(w, p, c)
    c.ble.irq(leave)
    interval = w.air.links[0].params.interval
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: rp.last(_IRQ_CENTRAL_DISCONNECT), 10)
    fails = w.trace.select("host", name="pairing_failed")
    assert [(r.board, r.args["reason"], r.args["local"]) for r in fails] == [("p", 0x04, 1), ("c", 0x04, 0)]
    irqs = [(r.name, r.t) for r in w.trace.records if r.kind == "irq" and r.board == "p"]
    assert [n for n, _ in irqs[-2:]] == ["_IRQ_ENCRYPTION_UPDATE", "_IRQ_CENTRAL_DISCONNECT"]
    assert irqs[-1][1] - irqs[-2][1] >= 2 * interval - 1e-9, irqs[-2:]


def test_gap_pair_and_gap_passkey_errors():
    w, p, c, rp, rc = passkey_setup(0, 4)
    with pytest.raises(OSError) as e:
        c.ble.gap_pair(7)
    assert e.value.errno == 128  # ENOTCONN on ESP32
    hp, hc = connect(w, p, c)
    with pytest.raises(OSError) as e:
        p.ble.gap_passkey(hp, 3, 123456)
    assert e.value.errno == 2  # ENOENT: no pairing
    with pytest.raises(OSError) as e:
        p.ble.gap_passkey(hp, 1, 0)
    assert e.value.errno == 22  # EINVAL: not an action
    with pytest.raises(TypeError):
        p.ble.gap_passkey(hp, 3)
    c.ble.gap_pair(hc)
    with pytest.raises(OSError) as e:
        c.ble.gap_pair(hc)
    assert e.value.errno == 120  # EALREADY on ESP32
    assert w.run_until(lambda: rp.last(_IRQ_PASSKEY_ACTION), 5)
    with pytest.raises(OSError) as e:
        p.ble.gap_passkey(hp, 2, 123456)
    assert e.value.errno == 22  # wrong action
    with pytest.raises(OSError) as e:
        p.ble.gap_passkey(hp, 3, 1000000)
    assert e.value.errno == 22  # > 999999
    with pytest.raises(OSError) as e:
        p.ble.gap_passkey(hp, 3, -1)
    assert e.value.errno == 22
    assert p.ble.gap_passkey(hp, 3, 123456) is None
    with pytest.raises(OSError) as e:
        p.ble.gap_passkey(hp, 3, 123456)
    assert e.value.errno == 120  # EALREADY: input already given


def test_gap_pair_with_stack_inactive():
    w = World()
    b = w.board("b")
    with pytest.raises(OSError) as e:
        b.ble.gap_pair(0)
    assert e.value.errno == -30


def test_handler_set_after_active_gets_no_irk_and_no_resolving():
    """The multitest style (handler after active): nothing reaches Python at start-up, the
    default IRK is used and bonded RPA peers are not resolved after a reboot (§4.4)."""
    sp, sc = Store(), Store()
    w, p, c, rp, rc = setup(stores=(sp, sc))
    p.ble.config(addr_mode=2)
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: rc.last(_IRQ_ENCRYPTION_UPDATE), 5)
    # the central learned the peripheral's identity: IRQs now show it
    c.ble.gap_disconnect(hc)
    assert w.run_until(lambda: rc.last(_IRQ_PERIPHERAL_DISCONNECT), 2)
    assert rc.last(_IRQ_PERIPHERAL_DISCONNECT)[1:] == (0, p.public_addr)
    p.reset(), c.reset()
    # both reboot; the central installs its handler only after active(True)
    rp2, rc2 = Recorder(p.ble, sp), Recorder(c.ble, sc)
    p.ble.irq(rp2)
    p.ble.active(True)
    p.ble.config(addr_mode=2)
    c.ble.active(True)
    c.ble.irq(rc2)
    assert rc2.events == []
    p.ble.gap_advertise(100000, b"\x02\x01\x06")
    c.ble.gap_connect(0, p.public_addr, 1000)  # by identity: cannot match the RPA
    assert w.run_until(lambda: rc2.last(_IRQ_PERIPHERAL_DISCONNECT), 3)
    assert rc2.last(_IRQ_PERIPHERAL_DISCONNECT) == (65535, 255, bytes(6))
    # with the handler first the IRK is back in the resolving list and the same call works
    c.reset()
    rc3 = Recorder(c.ble, sc)
    c.ble.irq(rc3)
    c.ble.active(True)
    c.ble.gap_connect(0, p.public_addr, 2000)
    assert w.run_until(lambda: rc3.last(_IRQ_PERIPHERAL_CONNECT), 3)
    assert rc3.last(_IRQ_PERIPHERAL_CONNECT)[1:] == (0, p.public_addr)
    # while the peripheral (no resolving needed) shows the central by its public address
    assert rp2.last(_IRQ_CENTRAL_CONNECT)[1:] == (0, c.public_addr)


def test_pre_v1_23_firmware_bonds_in_ram_only():
    """MicroPython <= v1.22 on ESP32 (issues #12958, #19405): pairing works, Python sees no
    SET_SECRET for the bond, and the bond is gone after a reset."""
    sp, sc = Store(), Store()
    w, p, c, rp, rc = setup(profile="esp32-v1.22", stores=(sp, sc))
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE) and rc.last(_IRQ_ENCRYPTION_UPDATE), 5)
    assert rp.last(_IRQ_ENCRYPTION_UPDATE) == (hp, 1, 0, 1, 16)
    assert [d[0] for e, d in rp.events if e in (_IRQ_GET_SECRET, _IRQ_SET_SECRET)] == []
    assert not [r for r in w.trace.select("pdu") if r.name.startswith("IDENTITY")]  # no keys distributed
    # within this boot the RAM store re-encrypts
    c.ble.gap_disconnect(hc)
    assert w.run_until(lambda: rp.last(_IRQ_CENTRAL_DISCONNECT), 2)
    hp, hc = connect(w, p, c)
    n = len(w.trace.select("pdu", name="PAIRING_REQUEST"))
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: len(rc.of(_IRQ_ENCRYPTION_UPDATE)) == 2, 5)
    assert len(w.trace.select("pdu", name="PAIRING_REQUEST")) == n
    # after a reset of the peripheral the bond is gone: the central's restore fails
    c.ble.gap_disconnect(hc)
    w.run(1)
    p.reset()
    rp2 = Recorder(p.ble, sp)
    p.ble.irq(rp2)
    p.ble.active(True)
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    w.run(3)
    assert w.trace.select("host", "c", "key_missing_repair")


def test_delete_that_always_returns_true_hangs_the_stack(capsys):
    """§3.4: NimBLE deletes until the handler returns False; one that always says True hangs
    the NimBLE task during repeat pairing."""

    class Liar(Store):
        def set(self, sec_type, key, value):
            if value is None:
                self.secrets.pop((sec_type, bytes(key)), None)
                return True
            return super().set(sec_type, key, value)

    sp, sc = Liar(), Store()
    w, p, c, rp, rc = setup(stores=(sp, sc))
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE), 5)
    c.ble.gap_disconnect(hc)
    assert w.run_until(lambda: rp.last(_IRQ_CENTRAL_DISCONNECT), 2)
    sc.secrets.clear()
    hp, hc = connect(w, p, c)
    rp.clear()
    c.ble.gap_pair(hc)
    w.run(40)
    assert w.trace.select("host", "p", "hang")
    assert "hung" in capsys.readouterr().out
    assert rp.last(_IRQ_ENCRYPTION_UPDATE) is None  # the peripheral never answers again
    assert rc.last(_IRQ_ENCRYPTION_UPDATE) == (hc, 0, 0, 0, 0)  # the central times out


def _expected_authenticated(sc_on, mitm, pio, cio):
    """Core Vol 3 Part H 2.3.5.1: without MITM on either side Just Works; otherwise by IO
    capabilities."""
    if not mitm:
        return 0
    if 3 in (pio, cio):
        return 0
    if (pio, cio) in ((0, 0), (0, 1), (1, 0)):
        return 0
    if (pio, cio) == (1, 1) and not sc_on:
        return 0
    return 1


def test_every_io_capability_pair_pairs_with_matching_keys():
    """ESP32 peripheral (io 0..4) x phone central (io 0..4) x LESC/legacy x MITM: both sides end
    encrypted and bonded, with the same authenticated flag, and the stored keys match. (io 5 is
    sent raw and refused: test_firmware_audit.py::test_a_reserved_io_capability_is_sent_raw.)"""
    import itertools

    for sc_on, pio, cio, mitm in itertools.product([True, False], range(5), range(5), [False, True]):
        cfg_p = {"io": pio, "mitm": mitm, "le_secure": sc_on}
        cfg_c = {"io": cio, "mitm": mitm, "le_secure": sc_on}
        w, p, c, rp, rc = setup(configs=(cfg_p, cfg_c), profiles=(None, "phone"))
        shown = {}

        def answer(ble, w=w, shown=shown):
            def f(conn, action, number):
                if action == 3:
                    shown["n"] = 100000 + conn + len(shown)
                    return shown["n"]
                if action == 4:
                    return 1

                def type_it():  # the user types a moment later what the other side shows
                    shown.setdefault("n", 424242)  # both type: the user picks the number
                    ble.gap_passkey(conn, 2, shown["n"])

                w.schedule(0.5, type_it)
                return None
            return f

        rp.passkey = answer(p.ble)
        rc.passkey = answer(c.ble)
        hp, hc = connect(w, p, c)
        c.ble.gap_pair(hc)
        case = (sc_on, pio, cio, mitm)
        assert w.run_until(lambda rp=rp, rc=rc: rp.last(_IRQ_ENCRYPTION_UPDATE) and rc.last(_IRQ_ENCRYPTION_UPDATE),
                           40), case
        auth = _expected_authenticated(sc_on, mitm, pio, cio)
        assert rp.last(_IRQ_ENCRYPTION_UPDATE) == (hp, 1, auth, 1, 16), case
        assert rc.last(_IRQ_ENCRYPTION_UPDATE) == (hc, 1, auth, 1, 16), case
        p_our = secstruct.unpack("88", rp.store.secrets[(1, key(c))])
        c_peer = secstruct.unpack("88", rc.store.secrets[(2, key(p))])
        assert p_our["ltk"] == c_peer["ltk"] and p_our["sc"] == int(sc_on), case
        assert p_our["authenticated"] == auth, case


def test_central_with_rpa_is_resolved_after_pairing_and_after_reboot():
    sp, sc = Store(), Store()
    w, p, c, rp, rc = setup(stores=(sp, sc))
    c.ble.config(addr_mode=2)
    hp, hc = connect(w, p, c)
    t, a = rp.last(_IRQ_CENTRAL_CONNECT)[1:]
    assert t == 1 and a != c.public_addr and (a[0] & 0xC0) == 0x40  # the RPA
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE) and rc.last(_IRQ_ENCRYPTION_UPDATE), 5)
    assert (1, key(c)) in sp.secrets  # stored under the identity the central distributed
    c.ble.gap_disconnect(hc)
    assert w.run_until(lambda: rp.last(_IRQ_CENTRAL_DISCONNECT), 2)
    assert rp.last(_IRQ_CENTRAL_DISCONNECT)[1:] == (0, c.public_addr)  # identity now
    p.reset(), c.reset()
    rp2, rc2 = Recorder(p.ble, sp), Recorder(c.ble, sc)
    for b, r in ((p, rp2), (c, rc2)):
        b.ble.irq(r)
        b.ble.active(True)
    c.ble.config(addr_mode=2)
    rp2.clear()
    hp, hc = connect(w, p, c)
    assert rp2.last(_IRQ_CENTRAL_CONNECT)[1:] == (0, c.public_addr)  # resolved with the restored IRK
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: rp2.last(_IRQ_ENCRYPTION_UPDATE), 5)
    assert sec_events(rp2) == [(_IRQ_GET_SECRET, (1, 0, key(c))), (_IRQ_ENCRYPTION_UPDATE, (hp, 1, 0, 1, 16))]
