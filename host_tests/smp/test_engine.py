"""Engine behaviour on the virtual clock and in corner cases: the 30 s SMP timeout, Repeated
Attempts, every Pairing Failed reason sent and received, Security Request, LTK requests and
re-encryption with stored keys, OOB, keypress notifications, held Pairing Requests, link loss."""

import pytest
from harness import INIT_ADDR, RESP_ADDR, User, make_pair, pair_ours

from tools.blesim.smp import (
    Failed,
    Identity,
    Keypress,
    LtkReply,
    OobData,
    PairingRequestReceived,
    RepeatedAttempts,
    SecurityRequestReceived,
    Send,
    SmpConfig,
    SmpEngine,
    StartEncryption,
    const,
    pdu,
)


def _sent(outs):
    return [o.pdu for o in outs if type(o) is Send]


def _fails(outs):
    return [o for o in outs if type(o) is Failed]


# ---------------------------------------------------------------- timeout


def test_timeout_waiting_for_pairing_response():
    c = SmpEngine("central", SmpConfig(), INIT_ADDR, RESP_ADDR)
    assert c.deadline is None
    out = c.pair(100.0)
    assert _sent(out)[0][0] == 0x01 and c.deadline == 130.0
    assert c.tick(129.999) == []
    assert c.tick(130.0) == [Failed(None, True, "timeout")]
    assert c.dead and not c.busy and c.deadline is None
    # no further SMP on this link: the late response is ignored, pair() refuses
    assert c.receive(pdu.pairing_response(3, 0, 9, 16, 7, 7), 131.0) == []
    assert c.pair(132.0) == [Failed(None, True, "timeout")]
    assert c.tick(500.0) == []


def test_timer_restarts_on_every_pdu_and_runs_while_waiting_for_the_user():
    # a passkey pairing where the inputting user never answers (as a MicroPython central, which
    # never sees the passkey IRQ): the procedure dies 30 s after the last PDU
    link = make_pair(SmpConfig(io_cap=2, mitm=True), SmpConfig(io_cap=0, mitm=True, passkey=123456))
    link.c.user.refuse_passkey = False
    link.now = 5.0
    link.handle(link.c, link.c.engine.pair(link.now))
    link.c.pending = []  # the user is asleep
    while link.queue:
        src, item = link.queue.pop(0)
        link.now += 1.0
        link._deliver(src, item)
        link.c.pending = []
    last = link.now  # the Pairing Response arrived at `last` (legacy: then both wait for the TK)
    assert link.c.engine.deadline == last + 30 and link.p.engine.deadline == last - 1 + 30
    assert link.p.engine.tick(last + 28.9) == []
    assert link.p.engine.tick(last + 29.0) == [Failed(None, True, "timeout")]
    assert link.c.engine.tick(last + 29.9) == []
    assert link.c.engine.tick(last + 30.0) == [Failed(None, True, "timeout")]
    # a late passkey changes nothing
    assert link.c.engine.passkey(123456, last + 31) == []


def test_timeout_checked_on_any_call_not_only_tick():
    c = SmpEngine("central", SmpConfig(), INIT_ADDR, RESP_ADDR)
    c.pair(0)
    out = c.receive(pdu.pairing_response(3, 0, 9, 16, 7, 7), 45.0)
    assert out == [Failed(None, True, "timeout")]


def test_security_request_starts_the_timer_on_the_peripheral():
    p = SmpEngine("peripheral", SmpConfig(), RESP_ADDR, INIT_ADDR)
    out = p.pair(10)
    assert _sent(out) == [bytes([0x0B, 0x09])] and p.deadline == 40
    assert p.tick(40) == [Failed(None, True, "timeout")]


def test_link_lost_during_pairing():
    c = SmpEngine("central", SmpConfig(), INIT_ADDR, RESP_ADDR)
    c.pair(0)
    assert c.link_lost(1) == [Failed(None, True, "link_lost")]
    assert c.receive(pdu.pairing_response(3, 0, 9, 16, 7, 7), 2) == []
    assert c.pair(3) == [Failed(None, True, "link_lost")]
    idle = SmpEngine("central", SmpConfig(), INIT_ADDR, RESP_ADDR)
    assert idle.link_lost(0) == []


# ---------------------------------------------------------------- repeated attempts


def _wrong_passkey_run(att_c, att_p, now):
    link = make_pair(SmpConfig(io_cap=2, mitm=True), SmpConfig(io_cap=0, mitm=True),
                     user_c=User(typo=1), user_p=User(passkey=424242), attempts_c=att_c, attempts_p=att_p)
    link.now = now
    link.handle(link.c, link.c.engine.pair(now))
    link.run()
    return link


def test_repeated_attempts_interval_grows_and_blocks_both_roles():
    att_c, att_p = RepeatedAttempts(), RepeatedAttempts()
    peer_of_p = INIT_ADDR  # the peripheral tracks the central's address, and vice versa
    link = _wrong_passkey_run(att_c, att_p, 0.0)
    assert link.p.failure == Failed(0x04, True, "sent") and link.c.failure == Failed(0x04, False, "received")
    assert att_p.failures(peer_of_p) == 1 and att_p.until(peer_of_p) == 2.0

    # within the interval: the peripheral answers a Pairing Request with 0x09 ...
    link = make_pair(SmpConfig(), SmpConfig(), attempts_p=att_p)
    link.now = 1.0
    link.handle(link.c, link.c.engine.pair(1.0))
    link.run()
    assert link.p.failure == Failed(0x09, True, "sent") and link.c.failure == Failed(0x09, False, "received")
    # ... and the central refuses to start one itself, without sending anything
    c = SmpEngine("central", SmpConfig(), INIT_ADDR, RESP_ADDR, attempts=att_c)
    assert c.pair(1.0) == [Failed(0x09, True, "blocked")]
    # a central that is blocked answers a Security Request with 0x09
    assert _sent(c.receive(pdu.security_request(9), 1.0)) == [bytes([0x05, 0x09])]

    # each further failure doubles the interval: 2, 4, 8, 16 s
    t = 2.0
    for n, interval in ((2, 4.0), (3, 8.0), (4, 16.0)):
        link = _wrong_passkey_run(att_c, att_p, t)
        assert link.p.failure.reason == 0x04
        assert att_p.failures(peer_of_p) == n and att_p.until(peer_of_p) == t + interval
        t += interval
    # after the interval a correct pairing succeeds and clears the counter
    assert att_p.blocked(peer_of_p, t - 0.001) and not att_p.blocked(peer_of_p, t)
    link = make_pair(SmpConfig(io_cap=2, mitm=True), SmpConfig(io_cap=0, mitm=True), attempts_c=att_c,
                     attempts_p=att_p)
    link.now = t
    link.handle(link.c, link.c.engine.pair(t))
    link.run()
    assert link.c.result is not None and link.p.result is not None
    assert att_p.failures(peer_of_p) == 0 and att_c.failures(RESP_ADDR) == 0


def test_repeated_attempts_cap():
    a = RepeatedAttempts(base=2, factor=2, maximum=64)
    intervals = [a.failed("x", 0) for _ in range(10)]
    assert intervals == [2, 4, 8, 16, 32, 64, 64, 64, 64, 64]


# ---------------------------------------------------------------- every failure reason


def _tamper_response(field, value):
    def tap(src, data):
        if src == "P" and data[0] == 0x02:
            data = bytearray(data)
            data[field] = value
            data = bytes(data)
        return data

    return tap


SENT_CASES = {
    0x01: dict(cfg_c=SmpConfig(io_cap=2, mitm=True), cfg_p=SmpConfig(io_cap=0, mitm=True),
               user_c=User(refuse_passkey=True), side="C"),
    0x02: dict(cfg_c=SmpConfig(oob=OobData(peer_r=bytes(16), peer_c=bytes(16))), cfg_p=SmpConfig(), side="P"),
    0x03: dict(cfg_c=SmpConfig(sc=False), cfg_p=SmpConfig(sc_only=True), side="P"),
    0x04: dict(cfg_c=SmpConfig(io_cap=2, mitm=True), cfg_p=SmpConfig(io_cap=0, mitm=True), user_c=User(typo=5),
               side="P"),
    0x05: dict(cfg_c=SmpConfig(), cfg_p=SmpConfig(pairable=False), side="P"),
    0x06: dict(cfg_c=SmpConfig(max_key_size=10), cfg_p=SmpConfig(min_key_size=11), side="P"),
    0x0A: dict(cfg_c=SmpConfig(), cfg_p=SmpConfig(), tap=_tamper_response(1, 9), side="C"),
    0x0C: dict(cfg_c=SmpConfig(io_cap=1, mitm=True), cfg_p=SmpConfig(io_cap=1, mitm=True),
               user_p=User(accept_nc=False), side="P"),
}


@pytest.mark.parametrize("reason", sorted(SENT_CASES))
def test_reason_sent_by_protocol(reason):
    case = dict(SENT_CASES[reason])
    side = case.pop("side")
    link = pair_ours(case.pop("cfg_c"), case.pop("cfg_p"), **case)
    sender, receiver = (link.c, link.p) if side == "C" else (link.p, link.c)
    assert sender.failure == Failed(reason, True, "sent")
    assert receiver.failure == Failed(reason, False, "received")
    assert sender.result is None and receiver.result is None


def test_reason_0x03_require_mitm_and_reflected_key():
    link = pair_ours(SmpConfig(), SmpConfig(require_mitm=True))
    assert link.p.failure == Failed(0x03, True, "sent")

    def reflect(src, data):  # the peripheral's key is replaced by the central's own
        if src == "P" and data[0] == 0x0C:
            return link_holder[0].c.engine._pub and pdu.public_key(*link_holder[0].c.engine._pub)
        return data

    link_holder = []
    link = make_pair(SmpConfig(), SmpConfig(), tap=reflect)
    link_holder.append(link)
    link.handle(link.c, link.c.engine.pair(0))
    link.run()
    assert link.c.failure == Failed(0x03, True, "sent")


def test_reason_0x0b_dhkey_check_and_off_curve():
    def flip(src, data):
        if src == "C" and data[0] == 0x0D:
            data = data[:1] + bytes([data[1] ^ 0x80]) + data[2:]
        return data

    link = pair_ours(SmpConfig(), SmpConfig(), tap=flip)
    assert link.p.failure == Failed(0x0B, True, "sent") and link.c.failure.reason == 0x0B

    def off_curve(src, data):
        if src == "C" and data[0] == 0x0C:
            data = data[:33] + bytes(32)
        return data

    link = pair_ours(SmpConfig(), SmpConfig(), tap=off_curve)
    assert link.p.failure == Failed(0x0B, True, "sent")
    assert not [x for x in link.trace if x.split()[1] == "P->C" and "PAIRING_PUBLIC_KEY" in x]


def test_reasons_0x07_0x08_0x09_sent():
    c = SmpEngine("central", SmpConfig(), INIT_ADDR, RESP_ADDR)
    assert _sent(c.receive(pdu.pairing_request(3, 0, 9, 16, 7, 7), 0)) == [bytes([5, 0x07])]  # wrong role
    p = SmpEngine("peripheral", SmpConfig(), RESP_ADDR, INIT_ADDR)
    p.receive(pdu.pairing_request(3, 0, 9, 16, 7, 7), 0)
    out = p.receive(pdu.value16(0x06, bytes(16)), 0)  # key before encryption: unexpected
    assert _sent(out) == [bytes([5, 0x08])] and Failed(0x08, True, "sent") in out
    att = RepeatedAttempts()
    att.failed(INIT_ADDR, 0)
    p = SmpEngine("peripheral", SmpConfig(), RESP_ADDR, INIT_ADDR, attempts=att)
    assert _sent(p.receive(pdu.pairing_request(3, 0, 9, 16, 7, 7), 1)) == [bytes([5, 0x09])]


@pytest.mark.parametrize("reason", range(0x01, 0x10))
def test_every_reason_received_and_via_fail(reason):
    # fail(reason) sends it (also the reasons no LE procedure produces by itself: 0x0D-0x0F);
    # the peer reports exactly that reason as received
    link = make_pair(SmpConfig(io_cap=1, mitm=True), SmpConfig(io_cap=1, mitm=True))
    link.handle(link.c, link.c.engine.pair(0))
    while link.queue:  # up to the first public key exchange
        link._deliver(*link.queue.pop(0))
        if link.c.engine._peer_pub is not None:
            break
    sender = link.p if reason % 2 else link.c
    out = sender.engine.fail(reason, 0)
    assert _sent(out) == [bytes([5, reason])] and _fails(out) == [Failed(reason, True, "sent")]
    link.handle(sender, out)
    link.run()
    assert link.peer(sender).failure == Failed(reason, False, "received")
    assert not link.c.engine.busy and not link.p.engine.busy


def test_malformed_pairing_failed_ends_the_procedure_without_an_answer():
    c = SmpEngine("central", SmpConfig(), INIT_ADDR, RESP_ADDR)
    c.pair(0)
    assert c.receive(bytes([0x05]), 0) == [Failed(0x08, False, "received")]


# ---------------------------------------------------------------- security request, LTK request


def test_security_request_then_central_pairs():
    link = make_pair(SmpConfig(), SmpConfig(mitm=True, io_cap=4))
    out = link.p.engine.pair(0)
    assert _sent(out) == [bytes([0x0B, 0x0D])]  # Bonding | MITM | SC
    got = link.c.engine.receive(_sent(out)[0], 0)
    assert got == [SecurityRequestReceived(0x0D)] and got[0].mitm and got[0].bonding and got[0].sc
    link.handle(link.c, link.c.engine.pair(0))
    link.run()
    assert link.c.result is not None and link.p.result is not None


def test_security_request_refused_by_central():
    p = SmpEngine("peripheral", SmpConfig(), RESP_ADDR, INIT_ADDR)
    c = SmpEngine("central", SmpConfig(), INIT_ADDR, RESP_ADDR)
    c.receive(_sent(p.pair(0))[0], 0)
    out = c.fail(const.PAIRING_NOT_SUPPORTED, 0)
    assert _sent(out) == [bytes([5, 5])]
    assert p.receive(_sent(out)[0], 0) == [Failed(5, False, "received")]


def test_security_request_answered_by_reencryption():
    # the central has a bond and encrypts instead of pairing: the peripheral's request is satisfied
    p = SmpEngine("peripheral", SmpConfig(), RESP_ADDR, INIT_ADDR)
    p.pair(0)
    assert p.busy and p.deadline == 30
    assert p.ltk_request(0x1234, 99, 1) == [LtkReply(None)]  # the bond store answers, not the engine
    assert p.encryption_changed(True, 16, 1) == []
    assert not p.busy and p.deadline is None and p.tick(100) == []


def test_central_ignores_security_request_while_pairing():
    c = SmpEngine("central", SmpConfig(), INIT_ADDR, RESP_ADDR)
    c.pair(0)
    assert c.receive(pdu.security_request(9), 0) == []
    assert c.busy


def test_ltk_request_outside_pairing_and_reencryption():
    # pair (legacy, bonded), then reconnect: the central encrypts with the peripheral's LTK, EDIV, Rand
    link = pair_ours(SmpConfig(sc=False), SmpConfig(sc=False))
    r_c, r_p = link.c.result, link.p.result
    c = SmpEngine("central", SmpConfig(), INIT_ADDR, RESP_ADDR)
    p = SmpEngine("peripheral", SmpConfig(), RESP_ADDR, INIT_ADDR)
    out = c.encrypt(r_c.ltk, r_c.peer.ediv, r_c.peer.rand, r_c.key_size, 0)
    assert out == [StartEncryption(r_p.local.ltk, r_p.local.ediv, r_p.local.rand, 16)]
    assert p.encrypt(r_c.ltk, 0, 0, 16, 0) == []  # a peripheral cannot start encryption
    busy = SmpEngine("central", SmpConfig(), INIT_ADDR, RESP_ADDR)
    busy.pair(0)
    assert busy.encrypt(r_c.ltk, 0, 0, 16, 0) == []  # not in the middle of a pairing
    # not the engine's business: the firmware model looks the key up in its bond store
    assert p.ltk_request(r_p.local.ediv, r_p.local.rand, 0) == [LtkReply(None)]
    assert p.encryption_changed(True, 16, 0) == [] and p.encrypted and p.key_size == 16
    assert c.encryption_changed(True, 16, 0) == [] and c.encrypted


def test_ltk_request_with_ediv_during_pairing_is_not_the_stk():
    link = make_pair(SmpConfig(sc=False), SmpConfig(sc=False))
    link.handle(link.c, link.c.engine.pair(0))
    starts = []
    while link.queue:
        src, item = link.queue.pop(0)
        if isinstance(item, StartEncryption):
            starts.append(item)
            break
        link._deliver(src, item)
    assert starts and link.p.engine.ltk_request(1, 2, 0) == [LtkReply(None)]
    assert link.p.engine.ltk_request(0, 0, 0) == [LtkReply(starts[0].ltk, 16)]


def test_encryption_failure_ends_pairing():
    link = make_pair(SmpConfig(), SmpConfig())
    link.handle(link.c, link.c.engine.pair(0))
    while link.queue:
        src, item = link.queue.pop(0)
        if isinstance(item, StartEncryption):
            break
        link._deliver(src, item)
    assert link.c.engine.encryption_changed(False, 0, 1) == [Failed(None, True, "encryption_failed")]
    assert link.p.engine.encryption_changed(False, 0, 1) == [Failed(None, True, "encryption_failed")]


def test_key_distribution_out_of_order_and_bad_identity_address():
    def swap(src, data):  # drop the peripheral's Identity Information: Identity Address comes first
        return None if (src == "P" and data[0] == 0x08) else data

    ident = Identity(bytes(16), 1, bytes.fromhex("C00000000001"))
    link = pair_ours(SmpConfig(), SmpConfig(), id_p=ident, tap=swap)
    assert link.c.failure == Failed(0x08, True, "sent")

    bad = Identity(bytes(16), 1, bytes.fromhex("400000000001"))  # a resolvable address is no identity
    link = pair_ours(SmpConfig(), SmpConfig(), id_p=bad)
    assert link.c.failure == Failed(0x0A, True, "sent")


# ---------------------------------------------------------------- held pairing request


def test_pairing_request_is_surfaced_before_the_answer():
    p = SmpEngine("peripheral", SmpConfig(), RESP_ADDR, INIT_ADDR)
    out = p.receive(pdu.pairing_request(4, 0, 0x0D, 16, 7, 7), 0)
    assert type(out[0]) is PairingRequestReceived and _sent(out)[0][0] == 0x02
    assert out[0] == PairingRequestReceived(4, 0, 0x0D, 16, 7, 7) and out[0].mitm and out[0].bonding


def test_hold_pairing_request():
    p = SmpEngine("peripheral", SmpConfig(hold_pairing_request=True), RESP_ADDR, INIT_ADDR)
    out = p.receive(pdu.pairing_request(3, 0, 9, 16, 7, 7), 0)
    assert out == [PairingRequestReceived(3, 0, 9, 16, 7, 7)] and p.busy
    out = p.accept_pairing(True, 1)
    assert _sent(out) == [pdu.pairing_response(3, 0, 9, 16, 7, 5)]  # no identity: no ID key offered
    p2 = SmpEngine("peripheral", SmpConfig(hold_pairing_request=True), RESP_ADDR, INIT_ADDR)
    p2.receive(pdu.pairing_request(3, 0, 9, 16, 7, 7), 0)
    assert p2.accept_pairing(False, 1, reason=0x09) == [Send(bytes([5, 9])), Failed(9, True, "sent")]
    # a held request also times out
    p3 = SmpEngine("peripheral", SmpConfig(hold_pairing_request=True), RESP_ADDR, INIT_ADDR)
    p3.receive(pdu.pairing_request(3, 0, 9, 16, 7, 7), 0)
    assert p3.tick(30) == [Failed(None, True, "timeout")]


# ---------------------------------------------------------------- OOB and keypress


def test_legacy_oob():
    tk = bytes.fromhex("00112233445566778899aabbccddeeff")
    link = pair_ours(SmpConfig(sc=False, oob=OobData(tk=tk)), SmpConfig(sc=False, oob=OobData(tk=tk)))
    assert link.c.result.method == "oob" and link.c.result.authenticated
    assert link.c.result.ltk == link.p.result.ltk
    link = pair_ours(SmpConfig(sc=False, oob=OobData(tk=tk)), SmpConfig(sc=False, oob=OobData(tk=bytes(16))))
    assert link.p.failure == Failed(0x04, True, "sent")


@pytest.mark.parametrize("c_has, p_has", [(True, True), (True, False), (False, True)])
def test_lesc_oob(c_has, p_has):
    kc, kp = SmpEngine.generate_key(), SmpEngine.generate_key()
    rc, cc = SmpEngine.sc_oob_local(kc, bytes(range(16)))
    rp, cp = SmpEngine.sc_oob_local(kp, bytes(range(16, 32)))
    # "has" = this side received the other's (r, c) out of band
    oob_c = OobData(local_r=rc, peer_r=rp if c_has else None, peer_c=cp if c_has else None)
    oob_p = OobData(local_r=rp, peer_r=rc if p_has else None, peer_c=cc if p_has else None)
    link = pair_ours(SmpConfig(oob=oob_c), SmpConfig(oob=oob_p), ecc_c=kc, ecc_p=kp)
    assert link.c.result is not None and link.p.result is not None, (link.c.failure, link.p.failure)
    assert link.c.result.method == "oob" and link.c.result.sc and link.c.result.authenticated
    assert link.c.result.ltk == link.p.result.ltk


def test_lesc_oob_wrong_confirm():
    kc, kp = SmpEngine.generate_key(), SmpEngine.generate_key()
    rp, cp = SmpEngine.sc_oob_local(kp, bytes(range(16)))
    oob_c = OobData(peer_r=rp, peer_c=bytes(16))  # a wrong confirm value received out of band
    link = pair_ours(SmpConfig(oob=oob_c), SmpConfig(oob=OobData(local_r=rp)), ecc_c=kc, ecc_p=kp)
    assert link.c.failure == Failed(0x04, True, "sent")


def test_keypress_notifications():
    link = make_pair(SmpConfig(io_cap=2, mitm=True, keypress=True), SmpConfig(io_cap=0, mitm=True, keypress=True))
    link.handle(link.c, link.c.engine.pair(0))
    while link.queue:
        link._deliver(*link.queue.pop(0))
    # the central is typing: it may send keypress notifications, the peripheral reports them
    out = link.c.engine.keypress(const.KEYPRESS_STARTED, 0)
    assert _sent(out) == [bytes([0x0E, 0])]
    assert link.p.engine.receive(_sent(out)[0], 0) == [Keypress(0)]
    assert link.p.engine.keypress(1, 0) == []  # the displaying side is not typing
    link.run()
    assert link.c.result is not None and link.p.result is not None
    # without the keypress bit on both sides, nothing is sent
    link = make_pair(SmpConfig(io_cap=2, mitm=True, keypress=True), SmpConfig(io_cap=0, mitm=True))
    link.handle(link.c, link.c.engine.pair(0))
    while link.queue:
        link._deliver(*link.queue.pop(0))
    assert link.c.engine.keypress(0, 0) == []


DEBUG_PRIV = 0x3f49f6d4a3c55f3874c9b3e3d2103f504aff607beb40b7995899b8a6cd3c1abd


def test_debug_key_is_flagged_or_refused():
    from cryptography.hazmat.primitives.asymmetric import ec

    debug = ec.derive_private_key(DEBUG_PRIV, ec.SECP256R1())
    x, _y = SmpEngine.public_key_bytes(debug)
    assert x.hex().startswith("20b003d2")
    link = pair_ours(SmpConfig(), SmpConfig(), ecc_c=debug)
    assert link.p.result.debug and not link.c.result.debug  # only the side that sees the peer's key
    link = pair_ours(SmpConfig(), SmpConfig(allow_debug_key=False), ecc_c=debug)
    assert link.p.failure == Failed(0x03, True, "sent")
    link = pair_ours(SmpConfig(), SmpConfig())
    assert not link.p.result.debug and not link.c.result.debug


def test_random_display_passkey_from_rng():
    draws = iter([bytes.fromhex("0001e240")])  # 123456, then os.urandom for the rest

    def rng(n):
        import os

        return next(draws) if n == 4 else os.urandom(n)

    link = pair_ours(SmpConfig(io_cap=2, mitm=True), SmpConfig(io_cap=0, mitm=True, passkey="random"), rng_p=rng)
    assert link.p.user.displayed == 123456 and link.p.user.asked == []
    assert link.c.result is not None and link.c.result.authenticated


def test_config_validation():
    with pytest.raises(ValueError):
        SmpConfig(io_cap=5)
    with pytest.raises(ValueError):
        SmpConfig(max_key_size=17)
    with pytest.raises(ValueError):
        SmpConfig(passkey=1000000)
    with pytest.raises(ValueError):
        SmpEngine("observer", SmpConfig(), INIT_ADDR, RESP_ADDR)
    e = SmpEngine("central", SmpConfig(), INIT_ADDR, RESP_ADDR)
    with pytest.raises(ValueError):
        e.passkey(1000000, 0)


def test_the_state_machine_table_names_a_wait_for_every_pdu_a_pairing_receives():
    # The engine's transitions are data (engine._WAITS): each wait accepts its opcodes, and every
    # opcode a pairing can receive (Pairing Failed and Keypress aside) is awaited by exactly one wait.
    from tools.blesim.smp import engine as E

    owners = {}
    for wait, accepts in E._WAITS.items():
        for op in accepts:
            owners.setdefault(op, []).append(wait)
    receivable = {op for op in range(1, 0x0F) if op not in (const.PAIRING_FAILED, const.KEYPRESS_NOTIFICATION)}
    assert set(owners) == receivable and all(len(w) == 1 for w in owners.values())
    assert E._WAITS[E._W_NOTHING] == {}
    key_ops = [op for _, ops in E._KEY_PDUS for op in ops]
    assert [E._KEY_WAITS[op] for op in key_ops] == sorted(E._KEY_WAITS[op] for op in key_ops)
