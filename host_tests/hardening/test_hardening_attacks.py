# Named attacks on the SMP engine (tools/smp): one real pairing between two engines, with
# a man in the middle (a tap on the link) or a malicious peer. Each test names the attack; the
# table in SECURITY.md maps them to Bluetooth qualification test cases (SM/...) and CVEs.
import pytest
import smpfuzz as F
from cryptography.hazmat.primitives.asymmetric import ec

from tools.smp import (
    NumericComparison,
    PasskeyRequest,
    RepeatedAttempts,
    SmpConfig,
    SmpEngine,
)
from tools.smp import const as C
from tools.smp import pdu as P

# P-256 field prime and the specification's LE SC debug key pair (Vol 3 Part H 2.3.5.6.1)
P256 = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
DEBUG_PRIV = 0x3F49F6D4A3C55F3874C9B3E3D2103F504AFF607BEB40B7995899B8A6CD3C1ABD
DEBUG_X = bytes.fromhex("20b003d2f297be2c5e2c83a7e9f9a5b9eff49111acf4fddbcc0301480e359de6")
DEBUG_Y = bytes.fromhex("dc809c49652aeb6d63329abf5a52155c766345c28fed3024741c8ed01589d28b")


def drive(central=None, peripheral=None, initiator="central", tap=None, **kw):
    d = F.Drive(None, central_cfg=SmpConfig(**(central or {})), peripheral_cfg=SmpConfig(**(peripheral or {})),
                initiator=initiator, tap=tap, **kw)
    d.start()
    d.run()
    return d


def sent(d, role):
    return d.sent_failures[role]


def rewrite(op, fn):
    """A MITM tap that rewrites every PDU with opcode `op` (fn(bytes) -> bytes)."""

    def tap(role, data, d):
        return fn(data) if data and data[0] == op else data

    return tap


# ------------------------------------------------------------------ KNOB: short keys


@pytest.mark.parametrize("offered", [7, 10, 15])
def test_knob_peer_offers_short_key_to_our_peripheral(offered):
    d = drive(central={"max_key_size": offered}, peripheral={"min_key_size": 16})
    assert sent(d, "peripheral") == [C.ENCRYPTION_KEY_SIZE]
    assert d.failed["central"][0].reason == C.ENCRYPTION_KEY_SIZE
    assert not d.encryptions and d.paired == {"central": None, "peripheral": None}


@pytest.mark.parametrize("offered", [7, 12])
def test_knob_peer_answers_short_key_to_our_central(offered):
    d = drive(central={"min_key_size": 16}, peripheral={"max_key_size": offered})
    assert sent(d, "central") == [C.ENCRYPTION_KEY_SIZE]
    assert not d.encryptions and d.paired == {"central": None, "peripheral": None}


@pytest.mark.parametrize("op", [C.PAIRING_REQUEST, C.PAIRING_RESPONSE])
@pytest.mark.parametrize("sc", [True, False])
def test_knob_mitm_lowers_max_key_size_in_flight(op, sc):
    # In LE SC the key size is not covered by the DHKey check (f6): only a local minimum stops it.
    def lower(data):
        b = bytearray(data)
        b[4] = 7
        return bytes(b)

    d = drive(central={"min_key_size": 16, "sc": sc}, peripheral={"min_key_size": 16, "sc": sc},
              tap=rewrite(op, lower))
    assert C.ENCRYPTION_KEY_SIZE in sent(d, "central") + sent(d, "peripheral")
    assert not any(ok for (_k, _r, ok, _ks) in d.encryptions)
    assert d.paired == {"central": None, "peripheral": None}


def test_knob_default_floor_is_spec_minimum_and_key_is_really_short():
    # Documents the engine default (min_key_size=7, NimBLE's): a 7-octet key is then accepted,
    # and the STK/LTK really has 9 zero octets. The package's policy must raise the floor (16).
    d = drive(central={"max_key_size": 7})
    assert d.both_paired() and d.consistent()
    r = d.paired["peripheral"]
    assert r.key_size == 7 and r.stk[:9] == bytes(9) and any(r.stk[9:])


@pytest.mark.parametrize("size,reasons", [(0, {C.ENCRYPTION_KEY_SIZE}), (6, {C.ENCRYPTION_KEY_SIZE}),
                                          (17, {C.ENCRYPTION_KEY_SIZE, C.INVALID_PARAMETERS}),
                                          (255, {C.ENCRYPTION_KEY_SIZE, C.INVALID_PARAMETERS})])
def test_forged_key_size_out_of_range(size, reasons):
    eng = SmpEngine("peripheral", SmpConfig(), F.PERIPHERAL_ADDR, F.CENTRAL_ADDR)
    outs = eng.receive(bytes([C.PAIRING_REQUEST, 3, 0, 0x09, size, 7, 7]), 0.0)
    v = F.Verdict(outs)
    assert v.reason in reasons and not eng.busy


# ------------------------------------------------------------------ invalid curve (CVE-2018-5383)

def _not_on_curve_variants(x, y):
    return {
        "y_zero": (x, bytes(32)),  # the Biham-Neumann point: order 2 on a twist, not on P-256
        "y_plus_1": (x, ((int.from_bytes(y, "big") + 1) % P256).to_bytes(32, "big")),
        "infinity": (bytes(32), bytes(32)),
        "x_ge_p": ((P256 + 1).to_bytes(32, "big"), y),
    }


@pytest.mark.parametrize("variant", ["y_zero", "y_plus_1", "infinity", "x_ge_p"])
@pytest.mark.parametrize("victim", ["central", "peripheral"])
@pytest.mark.parametrize("scenario", ["sc_jw", "sc_pk_resp_displays", "sc_nc"])
def test_cve_2018_5383_invalid_curve_public_key(variant, victim, scenario):
    def tap(role, data, d):
        if role == victim and data[0] == C.PAIRING_PUBLIC_KEY:
            x, y = bytes(data[32:0:-1]), bytes(data[64:32:-1])
            bx, by = _not_on_curve_variants(x, y)[variant]
            return P.public_key(bx, by)
        return data

    d = F.Drive(scenario, tap=tap)
    d.start()
    d.run()
    assert sent(d, victim) == [C.DHKEY_CHECK_FAILED]
    # the victim never used a DH key from the bad point: no DHKey check, no encryption, no bond
    assert all(p[0] != C.PAIRING_DHKEY_CHECK for p in d.delivered[F.OTHER[victim]])
    assert not d.encryptions and d.paired == {"central": None, "peripheral": None}


# ------------------------------------------------------------------ reflected key (CVE-2020-26558)

@pytest.mark.parametrize("victim", ["central", "peripheral"])
@pytest.mark.parametrize("negate_y", [False, True])
def test_cve_2020_26558_peer_reflects_our_public_key(victim, negate_y):
    # An impersonator in Passkey Entry echoes our own public key (and later our commitments) to
    # learn the passkey bit by bit. The victim must refuse the key outright (same X coordinate).
    d = F.Drive("sc_pk_resp_displays")
    own_x, own_y = SmpEngine.public_key_bytes(d.ecc[victim])
    if negate_y:
        own_y = (P256 - int.from_bytes(own_y, "big")).to_bytes(32, "big")

    def tap(role, data, dd):
        if role == victim and data[0] == C.PAIRING_PUBLIC_KEY:
            return P.public_key(own_x, own_y)
        return data

    d.tap = tap
    d.start()
    d.run()
    assert sent(d, victim) and sent(d, victim)[0] in (C.AUTHENTICATION_REQUIREMENTS, C.UNSPECIFIED_REASON)
    # nothing about the passkey left the victim: no confirm or random after the key
    key_seen = False
    for p in d.delivered[F.OTHER[victim]]:
        if p[0] == C.PAIRING_PUBLIC_KEY:
            key_seen = True
        assert not (key_seen and p[0] in (C.PAIRING_CONFIRM, C.PAIRING_RANDOM)), P.describe(p)
    assert d.paired == {"central": None, "peripheral": None}


# ------------------------------------------------------------------ passkey guessing / repeated attempts

@pytest.mark.parametrize("scenario", ["sc_pk_resp_displays", "legacy_pk_resp_displays"])
def test_passkey_guessing_meets_growing_waiting_interval(scenario):
    # An attacker central guesses the passkey our peripheral displays. Each wrong guess is an
    # authentication failure (0x04); the next Pairing Request inside the waiting interval gets
    # Repeated Attempts (0x09); the interval grows with every failure (Vol 3 Part H 2.3.6).
    ours = RepeatedAttempts()
    attempts = {"central": RepeatedAttempts(), "peripheral": ours}
    now = 0.0
    intervals = []
    for guess in range(6):
        d = F.Drive(scenario, attempts=attempts, now=now, typed={"central": (F.PASSKEY + 1 + guess) % 1000000})
        d.start()
        d.run()
        assert C.CONFIRM_VALUE_FAILED in sent(d, "peripheral") + sent(d, "central"), (d.failed, guess)
        assert d.paired["peripheral"] is None
        failed_at = d.now
        # probe: when does our peripheral accept a Pairing Request again?
        t = failed_at
        while True:
            t += 0.5
            probe = SmpEngine("peripheral", d.cfg["peripheral"], F.PERIPHERAL_ADDR, F.CENTRAL_ADDR, attempts=ours)
            v = F.Verdict(probe.receive(bytes([C.PAIRING_REQUEST, 2, 0, 0x0D, 16, 7, 7]), t))
            if v.reason != C.REPEATED_ATTEMPTS:
                break
            assert t - failed_at < 1000
        intervals.append(t - failed_at)
        now = t + 0.5
    assert all(b > a for a, b in zip(intervals, intervals[1:5])), intervals
    print("engine waiting intervals (probe step 0.5 s): %s" % intervals)
    assert intervals[0] >= 1.0
    # the attacker's own central is also refused locally while blocked (no Pairing Request sent)
    eng = SmpEngine("central", SmpConfig(), F.CENTRAL_ADDR, F.PERIPHERAL_ADDR, attempts=ours)
    ours.failed(F.PERIPHERAL_ADDR, 0.0)
    outs = eng.pair(0.1)
    assert [type(o).__name__ for o in outs] == ["Failed"] and outs[0].reason == C.REPEATED_ATTEMPTS


def test_repeated_attempts_cleared_only_by_success():
    ours = RepeatedAttempts()
    attempts = {"central": RepeatedAttempts(), "peripheral": ours}
    d = F.Drive("sc_nc", attempts=attempts, accept={"peripheral": False})
    d.start()
    d.run()
    assert C.NUMERIC_COMPARISON_FAILED in sent(d, "peripheral")
    assert ours.failures(F.CENTRAL_ADDR) == 1
    # the peer's own throttle would stop it locally; an attacker has none: a fresh one
    attempts["central"] = RepeatedAttempts()
    d2 = F.Drive("sc_nc", attempts=attempts, now=d.now + 0.5)
    d2.start()
    d2.run()
    assert sent(d2, "peripheral") == [C.REPEATED_ATTEMPTS] and not d2.both_paired()
    d3 = F.Drive("sc_nc", attempts=attempts, now=d.now + 10)
    d3.start()
    d3.run()
    assert d3.both_paired() and d3.consistent()
    assert ours.failures(F.CENTRAL_ADDR) == 0


# ------------------------------------------------------------------ SC-only / downgrade

@pytest.mark.parametrize("strict", ["central", "peripheral"])
def test_legacy_refused_under_sc_only(strict):
    cfg = {"central": {"sc": False}, "peripheral": {"sc": False}}
    cfg[strict] = {"sc_only": True}
    d = drive(central=cfg["central"], peripheral=cfg["peripheral"])
    assert sent(d, strict) == [C.AUTHENTICATION_REQUIREMENTS]
    assert not d.encryptions and d.paired == {"central": None, "peripheral": None}


@pytest.mark.parametrize("op", [C.PAIRING_REQUEST, C.PAIRING_RESPONSE])
def test_sc_downgrade_by_stripping_the_sc_bit(op):
    # A MITM clears the SC bit: with SC-only the victim refuses; without it the altered PDU is
    # caught: the two sides disagree on SC (one sends a public key the other does not expect,
    # 0x08) or on the PDUs the legacy confirm covers (c1, 0x04); no pairing completes either way.
    def strip(data):
        b = bytearray(data)
        b[3] &= ~C.AUTH_SC
        return bytes(b)

    d = drive(central={"sc_only": True}, peripheral={"sc_only": True}, tap=rewrite(op, strip))
    assert C.AUTHENTICATION_REQUIREMENTS in sent(d, "central") + sent(d, "peripheral")
    assert d.paired == {"central": None, "peripheral": None}
    d = drive(tap=rewrite(op, strip))
    assert d.paired == {"central": None, "peripheral": None}
    assert set(sent(d, "central") + sent(d, "peripheral")) & {C.CONFIRM_VALUE_FAILED, C.UNSPECIFIED_REASON}


@pytest.mark.parametrize("field,mask", [(1, None), (3, C.AUTH_MITM)])
def test_sc_io_capability_or_mitm_flag_altered_is_caught_by_dhkey_check(field, mask):
    # f6 covers IOcap, OOB flag and AuthReq: a MITM that downgrades NC to Just Works fails.
    def alter(data):
        b = bytearray(data)
        if mask is None:
            b[field] = C.NO_INPUT_NO_OUTPUT
        else:
            b[field] &= ~mask
        return bytes(b)

    d = F.Drive("sc_nc", tap=rewrite(C.PAIRING_RESPONSE, alter))
    d.start()
    d.run()
    assert C.DHKEY_CHECK_FAILED in sent(d, "central") + sent(d, "peripheral")
    assert d.paired == {"central": None, "peripheral": None}


# ------------------------------------------------------------------ debug keys

def test_our_engine_never_uses_the_debug_key():
    for _ in range(3):
        x, _y = SmpEngine.public_key_bytes(SmpEngine.generate_key())
        assert x != DEBUG_X
    d = F.Drive("sc_jw")
    d.start()
    d.run()
    for role in ("central", "peripheral"):
        for p in d.delivered[F.OTHER[role]]:
            if p[0] == C.PAIRING_PUBLIC_KEY:
                assert bytes(p[32:0:-1]) != DEBUG_X


def test_peer_debug_public_key_is_refused_or_flagged():
    # Finding F2 (SECURITY.md), fixed in the engine: a peer using the specification's debug key
    # pair (anyone can decrypt such a link) completed an LE SC pairing and nothing said so.
    # Now: allow_debug_key=False refuses it (0x03); the NimBLE-like default pairs but flags the
    # result, so a store policy can refuse to keep the bond.
    debug = ec.derive_private_key(DEBUG_PRIV, ec.SECP256R1())
    assert SmpEngine.public_key_bytes(debug) == (DEBUG_X, DEBUG_Y)
    for victim in ("central", "peripheral"):
        keys = {"central": SmpEngine.generate_key(), "peripheral": SmpEngine.generate_key()}
        keys[F.OTHER[victim]] = debug
        cfg = {"central": None, "peripheral": None}
        cfg[victim] = SmpConfig(allow_debug_key=False)
        d = F.Drive("sc_jw", ecc=keys, central_cfg=cfg["central"], peripheral_cfg=cfg["peripheral"])
        d.start()
        d.run()
        assert sent(d, victim) == [C.AUTHENTICATION_REQUIREMENTS]
        assert d.paired == {"central": None, "peripheral": None} and not d.encryptions
        d = F.Drive("sc_jw", ecc=keys)
        d.start()
        d.run()
        assert d.both_paired() and d.paired[victim].debug is True
        assert d.paired[F.OTHER[victim]].debug is False  # it used the debug key itself


# ------------------------------------------------------------------ method confusion: prompts

@pytest.mark.parametrize("scenario,method", [("sc_nc", C.NUMERIC_COMPARISON), ("sc_pk_resp_displays", C.PASSKEY),
                                             ("sc_pk_init_displays", C.PASSKEY),
                                             ("legacy_pk_resp_displays", C.PASSKEY), ("sc_jw", C.JUST_WORKS)])
def test_prompts_name_the_method_in_use(scenario, method):
    # Method confusion has no protocol fix: what protects the user is that a "compare" prompt
    # (NumericComparison) can never be mistaken for an "enter" prompt (PasskeyRequest).
    d = F.Drive(scenario)
    d.start()
    d.run()
    assert d.paired["central"].method == method
    for role in ("central", "peripheral"):
        kinds = {k for k, _v in d.prompts[role]}
        if method == C.NUMERIC_COMPARISON:
            assert kinds == {"compare"}
        elif method == C.PASSKEY:
            assert kinds and kinds <= {"display", "request_display", "input"}
        else:
            assert not kinds


def test_require_mitm_refuses_just_works():
    d = drive(central={"io_cap": 3}, peripheral={"io_cap": 1, "mitm": True, "require_mitm": True})
    assert sent(d, "peripheral") == [C.AUTHENTICATION_REQUIREMENTS]
    assert d.paired == {"central": None, "peripheral": None}


def test_peer_choosing_passkey_when_we_expect_numeric_comparison_is_visible():
    # The attacker side announces KeyboardOnly: our DisplayYesNo peripheral is pushed from NC into
    # Passkey Entry. The engine must say so (PasskeyRequest(display=True)/DisplayPasskey, never a
    # NumericComparison), so a "numeric comparison only" policy above it can refuse.
    d = drive(central={"io_cap": 2, "mitm": True}, peripheral={"io_cap": 1, "mitm": True})
    outs_kinds = {k for k, _v in d.prompts["peripheral"]}
    assert "compare" not in outs_kinds and outs_kinds & {"display", "request_display"}
    assert d.paired["peripheral"].method == C.PASSKEY


# ------------------------------------------------------------------ CTKD / key distribution hygiene

def test_never_distributes_or_accepts_link_key_bit():
    d = drive(central={"init_key_dist": 0x0F, "resp_key_dist": 0x0F})
    req = d.delivered["peripheral"][0]
    rsp = d.delivered["central"][0]
    assert req[0] == C.PAIRING_REQUEST and rsp[0] == C.PAIRING_RESPONSE
    assert not (rsp[5] | rsp[6]) & C.KEY_LINK
    # a peer asking for the LinkKey bit still pairs, without CTKD
    forged = bytes([C.PAIRING_REQUEST, 3, 0, 0x09, 16, 0x0F, 0x0F])
    eng = SmpEngine("peripheral", SmpConfig(), F.PERIPHERAL_ADDR, F.CENTRAL_ADDR)
    sends = [o.pdu for o in eng.receive(forged, 0.0) if type(o).__name__ == "Send"]
    assert sends and sends[0][0] == C.PAIRING_RESPONSE and not (sends[0][5] | sends[0][6]) & C.KEY_LINK


# ------------------------------------------------------------------ SMP timeout

@pytest.mark.parametrize("role", ["central", "peripheral"])
def test_smp_timeout_then_no_more_smp_on_the_link(role):
    # The peer goes silent after the first exchange: 30 s later the procedure fails with a
    # timeout and the engine accepts no further SMP traffic on that link (Vol 3 Part H 3.4).
    def tap(r, data, d):
        return None if d.steps > 2 else data

    d = F.Drive("sc_jw", tap=tap)
    d.start()
    d.run()
    eng = d.engine[role]
    assert eng.busy
    d.now += 29.0
    assert eng.tick(d.now) == [] and eng.busy
    d.now += 1.5
    outs = eng.tick(d.now)
    assert len(outs) == 1 and outs[0].reason is None and outs[0].cause == "timeout"
    assert eng.dead and not eng.busy
    assert eng.receive(bytes([C.PAIRING_REQUEST, 3, 0, 1, 16, 7, 7]), d.now + 1) == []
    assert [o.cause for o in eng.pair(d.now + 2)] == ["timeout"]


def test_passkey_entry_prompts_are_not_numeric_comparison():
    outs = SmpEngine("peripheral", SmpConfig(io_cap=0, mitm=True), F.PERIPHERAL_ADDR, F.CENTRAL_ADDR).receive(
        bytes([C.PAIRING_REQUEST, 2, 0, 0x0D, 16, 7, 7]), 0.0)
    assert any(isinstance(o, PasskeyRequest) for o in outs)
    assert not any(isinstance(o, NumericComparison) for o in outs)


# ------------------------------------------------------------------ SweynTooth: zero LTK installation

@pytest.mark.parametrize("scenario", ["sc_jw", "legacy_jw", "sc_pk_resp_displays", "legacy_oob"])
def test_zero_ltk_installation_cve_2019_19194(scenario):
    # An attacker central skips pairing steps and asks the controller to encrypt: at every step
    # before phase 2 has really finished, our peripheral must answer the LTK request with no key
    # (negative reply), never a zero or half-computed key; and at the legitimate moment, with the
    # key both sides derived.
    d = F.Drive(scenario)
    d.start()
    answered = []
    while True:
        eng = d.engine["peripheral"]
        for ediv, rand in ((0, 0), (1, 2)):
            (reply,) = [o for o in eng.ltk_request(ediv, rand, d.now) if type(o).__name__ == "LtkReply"]
            if reply.ltk is not None:
                assert (ediv, rand) == (0, 0) and reply.ltk != bytes(16)
                answered.append((d.steps, reply.ltk))
        if d.step() is None:
            break
    assert d.both_paired() and d.consistent()
    stk = d.paired["peripheral"].stk
    assert answered and all(k == stk for _s, k in answered)
    # the key is offered only once phase 2 is over (the central already sent StartEncryption or
    # is about to): never while a confirm / random / DHKey check is still outstanding
    first = answered[0][0]
    pending = [a for (_s, r, k, a) in d.trace[first:] if k == "receive" and r == "peripheral"
               and a in (C.PAIRING_CONFIRM, C.PAIRING_RANDOM, C.PAIRING_DHKEY_CHECK, C.PAIRING_PUBLIC_KEY)]
    assert not pending, pending
