"""The source-audit items of issue 16: each test names the NimBLE / MicroPython source behaviour
it pins (esp-nimble 32b2124f for the `esp32` profile, MicroPython's mynewt-nimble for `nimble`).
Shutdown (item 1) is in test_gap.py (test_active_false_*)."""

import pytest
from simhelpers import _IRQ_ENCRYPTION_UPDATE, _IRQ_SET_SECRET, Recorder, Store, connect

from tools.blesim import World
from tools.blesim.firmware import secstruct
from tools.blesim.firmware.profile import get_profile
from tools.blesim.smp import const as SC


def setup(profile="esp32", configs=({}, {})):
    w = World(profile=profile)
    p, c = w.board("p"), w.board("c")
    recs = []
    for b, cfg in zip((p, c), configs):
        r = Recorder(b.ble, Store())
        if cfg:
            b.ble.config(**cfg)
        b.ble.irq(r)
        b.ble.active(True)
        r.clear()
        recs.append(r)
    return w, p, c, recs[0], recs[1]


def link_of(w):
    return w.air.links[0]


def inject(w, sender, plan):
    """Sends raw SMP PDUs [(seconds from now, bytes)] into the link from `sender`'s radio."""
    link = link_of(w)
    for t, data in plan:
        w.schedule(t, w.air.send, link, sender, 6, data)


def test_stray_pdus_during_a_pairing_are_ignored_on_esp32():
    """esp-nimble ble_sm.c: a PDU the running procedure does not expect sets res->out_of_order
    (ble_sm_confirm_rx, ble_sm_random_rx, ble_sm_enc_info_rx, ...), a Keypress Notification goes
    to ble_sm_rx_noop, a Pairing Response sent to a peripheral finds no initiator procedure
    (ble_sm_pair_rsp_rx); ble_sm_process_result returns on out_of_order: no Pairing Failed, no
    event, and the pairing completes."""
    w, p, c, rp, rc = setup()
    hp, hc = connect(w, p, c)
    # (in LE SC Just Works the responder never receives a Pairing Confirm)
    strays = [bytes([SC.PAIRING_CONFIRM]) + bytes(16), bytes([SC.KEYPRESS_NOTIFICATION, 0]),
              bytes([SC.PAIRING_RESPONSE, 3, 0, 1, 16, 7, 7]), bytes([SC.IDENTITY_INFORMATION]) + bytes(16)]
    plan = [(0.001 + 0.02 * i, pdu) for i in range(6) for pdu in strays]
    c.ble.gap_pair(hc)
    inject(w, c, plan)
    assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE) and rc.last(_IRQ_ENCRYPTION_UPDATE), 5)
    w.run(1.0)
    assert rp.of(_IRQ_ENCRYPTION_UPDATE) == [(_IRQ_ENCRYPTION_UPDATE, (hp, 1, 0, 1, 16))]
    assert rc.of(_IRQ_ENCRYPTION_UPDATE) == [(_IRQ_ENCRYPTION_UPDATE, (hc, 1, 0, 1, 16))]
    assert w.trace.select("host", name="pairing_failed") == []
    ignored = {r.args["why"] for r in w.trace.select("host", board="p", name="smp_ignored")}
    assert {"out of order", "keypress (ble_sm_rx_noop)", "pairing response to a peripheral"} <= ignored
    # both sides stored the same long-term key
    assert rp.store.secrets and rc.store.secrets
    assert len(rp.of(_IRQ_SET_SECRET)) == 2 and len(rc.of(_IRQ_SET_SECRET)) == 2


def test_the_same_strays_fail_the_pairing_on_upstream_nimble():
    """MicroPython's mynewt-nimble has no out_of_order: the engine's specification behaviour
    (Pairing Failed, then the update) stays for the `nimble` profile."""
    w, p, c, rp, rc = setup(profile="nimble", configs=({"bond": True}, {"bond": True}))
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    inject(w, c, [(0.001 + 0.02 * i, bytes([SC.PAIRING_CONFIRM]) + bytes(16)) for i in range(6)])
    assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE), 5)
    assert w.trace.select("host", name="pairing_failed")


def test_an_over_long_pdu_is_used_by_its_first_bytes_on_esp32():
    """esp-nimble's rx handlers only pull up the minimum length (ble_hs_mbuf_pullup_base): a
    Pairing Request with one extra byte starts a pairing (the peripheral answers with a Pairing
    Response) instead of Pairing Failed 0x0A."""
    w, p, c, rp, rc = setup()
    connect(w, p, c)
    inject(w, c, [(0.0, bytes([SC.PAIRING_REQUEST, 3, 0, 0x01, 16, 7, 7, 0xEE]))])
    w.run(0.5)
    sent = [r.name for r in w.trace.select("pdu", board="p") if r.args.get("layer") == "smp"]
    assert sent[:1] == ["PAIRING_RESPONSE"], sent
    assert [r.args["used"] for r in w.trace.select("host", board="p", name="smp_long_pdu_accepted")] == [7]


def test_a_rejected_pairing_request_raises_no_update_after_the_bond_count():
    """esp-nimble ble_sm_pair_req_rx: ble_sm_chk_store_overflow (GET_SECRET(2, i, None) until None,
    then the type-1 look-up) runs first; a request with a key size out of range (or received
    as central) then gets Pairing Failed, but res->enc_cb stays 0: no ENCRYPTION_UPDATE."""
    from simhelpers import _IRQ_GET_SECRET

    w, p, c, rp, rc = setup()
    hp, hc = connect(w, p, c)
    inject(w, c, [(0.0, bytes([SC.PAIRING_REQUEST, 3, 0, 0x01, 6, 7, 7]))])  # max key size 6
    w.run(1.0)
    fails = w.trace.select("host", board="p", name="pairing_failed")
    assert [r.args["reason"] for r in fails] == [SC.ENCRYPTION_KEY_SIZE]
    assert rp.of(_IRQ_ENCRYPTION_UPDATE) == []
    assert [d[:2] for _e, d in rp.of(_IRQ_GET_SECRET)] == [(2, 0), (1, 0)]
    # a Pairing Request sent to the central: Command Not Supported, no update either
    inject(w, p, [(0.0, bytes([SC.PAIRING_REQUEST, 3, 0, 0x01, 16, 7, 7]))])
    w.run(1.0)
    sent = [r.args["hex"] for r in w.trace.select("pdu", board="c") if r.args.get("layer") == "smp"]
    assert sent[-1] == "%02x%02x" % (SC.PAIRING_FAILED, SC.COMMAND_NOT_SUPPORTED)  # [0] was the injection
    assert rc.of(_IRQ_ENCRYPTION_UPDATE) == []
    assert [d[:2] for _e, d in rc.of(_IRQ_GET_SECRET)] == [(2, 0), (1, 0)]
    # the link is still usable: a real pairing afterwards succeeds
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE) and rc.last(_IRQ_ENCRYPTION_UPDATE), 5)
    assert rp.last(_IRQ_ENCRYPTION_UPDATE) == (hp, 1, 0, 1, 16)


# ---------------------------------------------------------------- item 4: authenticated at ENC_START

@pytest.mark.parametrize("profile", ["esp32", "nimble"])
def test_a_key_exchange_failure_after_a_passkey_pairing_reports_authenticated(profile):
    """ble_sm_enc_event_rx (ble_sm.c, esp-nimble and mynewt-nimble alike), state ENC_START:
    ble_sm_update_sec_state sets encrypted, key_size and, for an authenticated method,
    authenticated before key distribution; a Pairing Failed during the key exchange
    (ble_sm_fail_rx) then reports (h, 1, 1, 0, 16), nothing stored."""
    w = World(profile=profile)
    p, c = w.board("p"), w.board("c", profile="phone")
    rp = Recorder(p.ble, Store(), passkey=lambda h, a, n: 123456)
    rc = Recorder(c.ble, Store(), passkey=lambda h, a, n: 123456)
    p.ble.config(io=0, mitm=True, bond=True)  # the board displays, the phone types
    c.ble.config(io=4, mitm=True)
    for b, r in ((p, rp), (c, rc)):
        b.ble.irq(r)
        b.ble.active(True)
        r.clear()
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    # the peripheral distributes its keys first, once the link is encrypted
    assert w.run_until(lambda: w.trace.select("pdu", "p", "IDENTITY_INFORMATION"), 10)
    w.air.send(link_of(w), c, 6, bytes([SC.PAIRING_FAILED, SC.UNSPECIFIED_REASON]))
    assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE), 5)
    assert rp.of(_IRQ_ENCRYPTION_UPDATE) == [(_IRQ_ENCRYPTION_UPDATE, (hp, 1, 1, 0, 16))]
    assert [r.args["cause"] for r in w.trace.select("host", "p", "pairing_failed")] == ["received"]
    assert rp.of(_IRQ_SET_SECRET) == []


# ---------------------------------------------------------------- item 5: keys without bonding

def _key_pdus(w, board):
    return [r.name for r in w.trace.select("pdu", board) if r.args.get("layer") == "smp"
            and r.name in ("ENCRYPTION_INFORMATION", "CENTRAL_IDENTIFICATION", "IDENTITY_INFORMATION",
                           "IDENTITY_ADDRESS_INFORMATION", "SIGNING_INFORMATION")]


@pytest.mark.parametrize("profile", ["esp32", "nimble"])
@pytest.mark.parametrize("sc", [True, False], ids=["lesc", "legacy"])
def test_keys_are_distributed_without_bonding_and_dropped(profile, sc):
    """ble_sm_pair_req_fill / ble_sm_pair_rsp_fill (ble_sm.c) put sm_our/their_key_dist (ENC|ID|SIGN,
    set by modbluetooth_nimble.c) in the Pairing Request/Response whatever sm_bonding says;
    ble_sm_key_exch_exec sends them (LE SC: no ENC). Without both bonding flags
    BLE_SM_PROC_F_BONDING stays clear: ble_sm_persist_keys does not run, so nothing is stored,
    the peer's identity address does not replace the connection address and its IRK does
    not reach the resolving list."""
    w, p, c, rp, rc = setup(profile=profile, configs=({"bond": True, "le_secure": sc},
                                                      {"bond": False, "le_secure": sc}))
    c.ble.config(addr_mode=2)  # the central connects with a resolvable private address
    hp, hc = connect(w, p, c)
    rpa = rp.last(1)[1:]
    assert rpa[0] == 1 and rpa[1][0] & 0xC0 == 0x40
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE) and rc.last(_IRQ_ENCRYPTION_UPDATE), 5)
    req = w.trace.select("pdu", "c", "PAIRING_REQUEST")[0].args["hex"]
    assert req[6:8] == ("08" if sc else "00") and req[-4:] == "0707"  # no bonding flag, all keys asked
    keys = (["ENCRYPTION_INFORMATION", "CENTRAL_IDENTIFICATION"] if not sc else []) + [
        "IDENTITY_INFORMATION", "IDENTITY_ADDRESS_INFORMATION", "SIGNING_INFORMATION"]
    assert _key_pdus(w, "p") == keys and _key_pdus(w, "c") == keys
    assert rp.last(_IRQ_ENCRYPTION_UPDATE) == (hp, 1, 0, 0, 16)
    assert rc.last(_IRQ_ENCRYPTION_UPDATE) == (hc, 1, 0, 0, 16)
    assert rp.of(_IRQ_SET_SECRET) == [] and rc.of(_IRQ_SET_SECRET) == []
    assert p.ble.connections()[hp]["peer_id"] == rpa  # not the identity the central sent
    # a new private address of the same central is not resolved either
    c.ble.gap_disconnect(hc)
    assert w.run_until(lambda: rp.last(2), 2)
    c.ble.config(addr_mode=2)
    connect(w, p, c)
    assert rp.last(1)[1] == 1 and rp.last(1)[2] != rpa[1] and rp.last(1)[2] != c.public_addr


# ---------------------------------------------------------------- item 6: store details

def test_a_record_without_an_ltk_stores_no_key_size():
    """ble_sm_fill_store_value: key_size, ediv, rand, authenticated and sc are written only when
    an LTK (with its EDIV/Rand) is present. A legacy bond whose central asked only for identity
    keys (key distribution ID) stores records with key_size 0."""
    w = World()
    p = w.board("p")
    c = w.board("c", profile=get_profile("phone").replace(key_dist=2))
    rp, rc = Recorder(p.ble, Store()), Recorder(c.ble, Store())
    for b, r in ((p, rp), (c, rc)):
        b.ble.irq(r)
        b.ble.config(le_secure=False)
        b.ble.active(True)
        r.clear()
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE) and rc.last(_IRQ_ENCRYPTION_UPDATE), 5)
    assert rp.last(_IRQ_ENCRYPTION_UPDATE) == (hp, 1, 0, 1, 16)  # a bond: identity keys were exchanged
    sets = {d[0]: secstruct.unpack("88", d[2]) for _e, d in rp.of(_IRQ_SET_SECRET)}
    assert sorted(sets) == [1, 2]
    for rec in sets.values():
        assert rec["ltk"] is None and rec["key_size"] == 0 and (rec["ediv"], rec["rand"]) == (0, 0)
    assert sets[2]["irk"] is not None and sets[1]["irk"] is not None


def test_the_peer_irk_is_resolved_only_if_saving_the_bond_succeeded():
    """ble_store_write_peer_sec adds the peer IRK to the resolving list (ble_hs_pvcy_add_entry)
    only after the write succeeded; ble_sm_persist_keys has already made the identity address
    the connection's. A store that refuses type 2 leaves the central's next private address
    unresolved."""
    class Refusing(Store):
        def set(self, sec_type, key, value):
            if sec_type == 2 and value is not None:
                return False
            return Store.set(self, sec_type, key, value)

    results = {}
    for name, store in (("saved", Store()), ("refused", Refusing())):
        w = World()
        p, c = w.board("p"), w.board("c")
        rp, rc = Recorder(p.ble, store), Recorder(c.ble, Store())
        for b, r in ((p, rp), (c, rc)):
            b.ble.irq(r)
            b.ble.active(True)
        c.ble.config(addr_mode=2)
        hp, hc = connect(w, p, c)
        c.ble.gap_pair(hc)
        assert w.run_until(lambda rp=rp: rp.last(_IRQ_ENCRYPTION_UPDATE), 5)
        assert p.ble.connections()[hp]["peer_id"] == (0, c.public_addr)  # set before the writes
        c.ble.gap_disconnect(hc)
        assert w.run_until(lambda rp=rp: rp.last(2), 2)
        c.ble.config(addr_mode=2)  # a fresh private address
        connect(w, p, c)
        results[name] = rp.last(1)[1:]
    assert results["saved"] == (0, c.public_addr)
    assert results["refused"][0] == 1 and results["refused"][1] != c.public_addr


def test_our_key_count_asks_index_after_index():
    """ble_store_util_count(OUR_SEC) -> ble_store_iterate: GET(1, i, key) for i = 0, 1, ... until
    not found, with the all-zero "any" address as the key (MicroPython's
    ble_secret_store_read passes the address for type 1). A store answering by index is asked
    until it says None."""
    class ByIndex(Store):
        def get(self, sec_type, index, key):
            if sec_type == 1 and key == bytes(7):
                return bytes(88) if index < 2 else None
            return Store.get(self, sec_type, index, key)

    w, p, c, rp, rc = setup()
    rp.store = ByIndex()
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE), 5)
    from simhelpers import _IRQ_GET_SECRET

    asked = [d[:2] for _e, d in rp.of(_IRQ_GET_SECRET)]
    assert asked[:4] == [(2, 0), (1, 0), (1, 1), (1, 2)]


@pytest.mark.parametrize("profile", ["esp32", "nimble"])
def test_a_second_answer_after_a_rejected_comparison(profile):
    """esp-nimble ble_sm_inject_io: a "no" to a numeric comparison sets only res.sm_err (Pairing
    Failed 0x0C is sent) and the procedure lives until the SM timer, so a second
    gap_passkey(h, 4, 1) is taken (returns None) and a third is EALREADY. mynewt-nimble also
    sets res.app_status: the procedure is removed, the second call raises ENOENT, and no
    ENCRYPTION_UPDATE follows."""
    w = World(profile=profile)
    p, c = w.board("p"), w.board("c", profile="phone")
    rp, rc = Recorder(p.ble, Store()), Recorder(c.ble, Store(), passkey=lambda h, a, n: 1)
    p.ble.config(io=1, mitm=True, bond=True)
    c.ble.config(io=1, mitm=True)
    for b, r in ((p, rp), (c, rc)):
        b.ble.irq(r)
        b.ble.active(True)
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: rp.last(31), 5)
    p.ble.gap_passkey(hp, 4, 0)
    w.run(0.5)
    if profile == "esp32":
        assert p.ble.gap_passkey(hp, 4, 1) is None
        with pytest.raises(OSError) as e:
            p.ble.gap_passkey(hp, 4, 1)
        assert e.value.errno == 120  # EALREADY
        assert rp.last(_IRQ_ENCRYPTION_UPDATE) is None  # still only at the SM timer
        assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE), 31)
        assert rp.last(_IRQ_ENCRYPTION_UPDATE) == (hp, 0, 0, 0, 0)
    else:
        with pytest.raises(OSError) as e:
            p.ble.gap_passkey(hp, 4, 1)
        assert e.value.errno == 2  # ENOENT
        # the freed procedure raises no ENC event at all: what the real mynewt host shows
        # (the differential test's numeric-comparison-reject scenario)
        w.run(31)
        assert rp.last(_IRQ_ENCRYPTION_UPDATE) is None


def test_a_second_pairing_on_the_link_uses_the_new_io_capability():
    """ble_sm_pair_base_fill reads ble_hs_cfg.sm_io_cap (and the auth flags) for each Pairing
    Request/Response: after config(io=0) the next pairing on the same link is a passkey one."""
    w = World()
    p, c = w.board("p"), w.board("c", profile="phone")
    rp = Recorder(p.ble, Store(), passkey=lambda h, a, n: 123456)
    rc = Recorder(c.ble, Store(), passkey=lambda h, a, n: 123456)
    c.ble.config(io=4, mitm=True, bond=False)  # unbonded: each gap_pair pairs again
    for b, r in ((p, rp), (c, rc)):
        b.ble.irq(r)
        b.ble.active(True)
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE), 5)
    assert rp.last(_IRQ_ENCRYPTION_UPDATE) == (hp, 1, 0, 0, 16)  # io 3: Just Works
    p.ble.config(io=0, mitm=True)
    rp.clear()
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE), 10)
    assert rp.of(31) == [(31, (hp, 3, 0))]  # the board displays
    assert rp.last(_IRQ_ENCRYPTION_UPDATE) == (hp, 1, 1, 0, 16)


def _bond_then_edit_peripheral_record(profile, sc, edit):
    """Bonds p and c, applies edit(record dict) to p's stored type-1 record, reconnects and
    has the central re-encrypt with its bond."""
    w, p, c, rp, rc = setup(profile=profile, configs=({"bond": True, "le_secure": sc},
                                                      {"bond": True, "le_secure": sc}))
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE) and rc.last(_IRQ_ENCRYPTION_UPDATE), 5)
    lay = p.profile.layout
    k = (1, secstruct.store_key(0, c.public_addr))
    d = secstruct.unpack(lay, rp.store.secrets[k])
    edit(d)
    rp.store.secrets[k] = secstruct.pack(lay, d["addr_type"], d["addr"], key_size=d["key_size"], ediv=d["ediv"],
                                         rand=d["rand"], ltk=d["ltk"], irk=d["irk"], csrk=d["csrk"],
                                         authenticated=d["authenticated"], sc=d["sc"])
    c.ble.gap_disconnect(hc)
    assert w.run_until(lambda: rc.last(8), 2)
    rp.clear(), rc.clear()
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    w.run(3.0)
    return w, p, c, rp, rc, hp, hc


@pytest.mark.parametrize("profile", ["esp32", "nimble"])
def test_a_stored_record_without_an_ltk_is_answered_with_the_zero_key(profile):
    """ble_sm_ltk_req_rx -> ble_sm_retrieve_ltk finds the record (LE SC asks EDIV 0 / Rand 0,
    which a record without an LTK also holds) and ble_sm_ltk_restore_exec replies its ltk
    field, all zeros: the central's key differs, the link drops with a MIC failure (0x3D)
    instead of the negative reply a missing record gets."""
    def strip(d):
        d.update(ltk=None, key_size=0, ediv=0, rand=0, authenticated=0, sc=0)

    w, p, c, rp, rc, hp, hc = _bond_then_edit_peripheral_record(profile, True, strip)
    assert w.trace.select("host", "p", "ltk_reply_without_ltk")
    assert rc.last(8) is not None and rp.last(2) is not None  # the link is gone
    assert [r.args["reason"] for r in w.trace.select("link", name="disconnect")][-2:] == [0x3D, 0x3D]
    assert not w.trace.select("pdu", "c", "PAIRING_REQUEST")[1:]  # no second pairing


@pytest.mark.parametrize("profile", ["esp32", "nimble"])
def test_a_legacy_ltk_request_with_other_ediv_rand(profile):
    """esp-nimble ble_sm_retrieve_ltk compares the stored EDIV/Rand with the LTK request's and
    answers ENOENT (negative reply; the ESP32 central then pairs afresh). mynewt-nimble passes
    them to the store in the key, and MicroPython's binding looks up by address only: the
    record's LTK is used and the link encrypts."""
    def other_ediv(d):
        d["ediv"] ^= 0x5A5A

    w, p, c, rp, rc, hp, hc = _bond_then_edit_peripheral_record(profile, False, other_ediv)
    if profile == "esp32":
        assert w.trace.select("host", "c", "key_missing_repair")
        assert len(w.trace.select("pdu", "c", "PAIRING_REQUEST")) == 2
    else:
        assert len(w.trace.select("pdu", "c", "PAIRING_REQUEST")) == 1
        assert rp.last(_IRQ_ENCRYPTION_UPDATE) == (hp, 1, 0, 1, 16)


@pytest.mark.parametrize("who", ["central", "peripheral"])
def test_a_reserved_io_capability_is_sent_raw(who):
    """ble_sm_pair_base_fill copies ble_hs_cfg.sm_io_cap into the Pairing Request/Response
    unchecked (MicroPython's config(io=5) stores it as is): the peer, following the
    specification, answers Pairing Failed 0x0A (Invalid Parameters). (A NimBLE peer does not
    check the field in ble_sm_pair_req_rx/rsp_rx and indexes its IO tables with it: undefined;
    the model answers as the specification.)"""
    cfgs = ({"io": 5}, {}) if who == "peripheral" else ({}, {"io": 5})
    w, p, c, rp, rc = setup(configs=cfgs)
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE) or rc.last(_IRQ_ENCRYPTION_UPDATE), 5)
    w.run(1.0)
    sender, op = ("c", "PAIRING_REQUEST") if who == "central" else ("p", "PAIRING_RESPONSE")
    assert w.trace.select("pdu", sender, op)[0].args["hex"][2:4] == "05"
    fails = w.trace.select("host", name="pairing_failed")
    assert {(r.board, r.args["reason"], r.args["cause"]) for r in fails} == {
        ("p" if who == "central" else "c", SC.INVALID_PARAMETERS, "sent"),
        (sender, SC.INVALID_PARAMETERS, "received")}
    assert rp.of(_IRQ_SET_SECRET) == [] and rc.of(_IRQ_SET_SECRET) == []
