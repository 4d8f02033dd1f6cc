"""The source-audit items of issue 16: each test names the NimBLE / MicroPython source behaviour
it pins (esp-nimble 32b2124f for the `esp32` profile, MicroPython's mynewt-nimble for `nimble`).
Shutdown (item 1) is in test_gap.py (test_active_false_*)."""

from simhelpers import _IRQ_ENCRYPTION_UPDATE, _IRQ_SET_SECRET, Recorder, Store, connect

from tools.blesim import World
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
