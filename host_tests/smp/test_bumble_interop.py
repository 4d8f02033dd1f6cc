"""Our engine against Bumble's SMP (an independent implementation), both roles.

Positive cases assert that the LTK, IRK, CSRK and identity addresses agree on both sides and that
displayed numbers match. Negative cases say which side does the checking: Bumble is lax (it never
checks key sizes, keeps answering after a failure, rejects an off-curve key only by accident), our
engine must be strict.
"""

import random

import pytest
from bumble_peer import BumbleEnd, OurEnd, run_pair

from tools.smp import Identity, SmpConfig, SmpEngine, pdu

OUR_ID = Identity(bytes.fromhex("0f1e2d3c4b5a69788796a5b4c3d2e1f0"), 1, bytes.fromhex("C7A1B2C3D4E5"),
                  csrk=bytes.fromhex("5a" * 16))
B_IRK = bytes.fromhex("00112233445566778899aabbccddeeff")
B_ID = (1, bytes.fromhex("F0B1B2B3B4B5"))

# name: (sc, our io, bumble io when we are central, bumble io when we are peripheral, mitm, method,
#        who displays when we are central)
SCENARIOS = {
    "lesc_just_works": (True, 3, 3, 3, False, "just_works"),
    "lesc_numeric_comparison": (True, 1, 1, 1, True, "numeric_comparison"),
    "lesc_passkey_we_display": (True, 0, 2, 2, True, "passkey"),
    "lesc_passkey_we_input": (True, 2, 0, 0, True, "passkey"),
    "legacy_just_works": (False, 3, 3, 3, False, "just_works"),
    "legacy_passkey_we_display": (False, 0, 2, 2, True, "passkey"),
    "legacy_passkey_we_input": (False, 2, 0, 0, True, "passkey"),
    "lesc_passkey_both_input": (True, 2, 2, 2, True, "passkey"),
    "legacy_passkey_both_input": (False, 2, 2, 2, True, "passkey"),
}


def _ends(role, sc, our_io, b_io, mitm, **kw):
    rnd = random.Random()
    ours = OurEnd("OURS", role, SmpConfig(io_cap=our_io, sc=sc, mitm=mitm), identity=OUR_ID,
                  passkey=rnd.randrange(1000000), **kw.pop("ours", {}))
    peer_role = "peripheral" if role == "central" else "central"
    bumble = BumbleEnd("BUMBLE", peer_role, io_cap=b_io, sc=sc, mitm=mitm, irk=B_IRK, identity=B_ID,
                       passkey=rnd.randrange(1000000), **kw.pop("bumble", {}))
    return ours, bumble


def _run(role, ours, bumble, tap=None):
    return run_pair(ours, bumble, tap) if role == "central" else run_pair(bumble, ours, tap)


@pytest.mark.parametrize("role", ["central", "peripheral"])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_pairs_with_bumble(name, role):
    sc, our_io, b_io_c, b_io_p, mitm, method = SCENARIOS[name]
    ours, bumble = _ends(role, sc, our_io, b_io_c if role == "central" else b_io_p, mitm)
    air = _run(role, ours, bumble)
    r = ours.result
    assert r is not None and bumble.paired is not None, (ours.failed, bumble.failure)
    assert r.method == method and r.sc == sc and r.bonded
    assert r.authenticated == (method != "just_works")
    assert bumble.paired["sc"] == sc
    # keys: LTK
    b = bumble.paired
    if sc:
        assert b["ltk"] == r.ltk == r.stk
    else:
        # Bumble (quirk 13): ltk_central = the responder's LTK, ltk_peripheral = the initiator's
        responder_ltk = r.peer.ltk if role == "central" else r.local.ltk
        initiator_ltk = r.local.ltk if role == "central" else r.peer.ltk
        assert b["ltk_central"] == responder_ltk and b["ltk_peripheral"] == initiator_ltk
        assert responder_ltk is not None and initiator_ltk is not None
        bk = b["keys"].ltk_peripheral if role == "central" else b["keys"].ltk_central  # = our LTK
        assert (bk.ediv, int.from_bytes(bytes(bk.rand), "little")) == (r.local.ediv, r.local.rand)
        assert (r.peer.ediv, r.peer.rand) == (0, 0)  # Bumble's EDIV/Rand (quirk 8)
    # identity and signing keys, both ways
    assert b["irk"] == OUR_ID.irk and b["identity"] == (OUR_ID.addr_type, OUR_ID.addr)
    assert b["csrk"] == OUR_ID.csrk
    assert r.peer.irk == B_IRK and r.peer.identity == B_ID
    assert r.peer.csrk == bytes(16)  # Bumble always sends a zero CSRK (quirk 9)
    # the link was encrypted with one key
    assert len(air.encryptions) == 1 and air.encryptions[0][2]
    # what the users saw
    if method == "numeric_comparison":
        assert ours.user.compared == bumble.user.compared is not None
    elif method == "passkey" and our_io == b_io_c == 2:  # both input: nobody displays, both typed
        assert ours.user.asked == bumble.user.asked == ["input"]
        assert ours.user.displayed is None and bumble.user.displayed is None
    elif method == "passkey":
        displayer = ours if our_io == 0 else bumble
        assert displayer.user.displayed == displayer.user.passkey
        if our_io == 0:  # we display: NimBLE-style, the application is asked for the number
            assert (ours.user.asked, bumble.user.asked) == (["display"], ["input"])
        else:
            assert ours.user.asked == ["input"] and ours.user.displayed is None


def test_security_request_from_our_peripheral():
    # our peripheral sends a Security Request; Bumble (central) surfaces it; the harness pairs
    ours, bumble = _ends("peripheral", True, 3, 3, False)
    seen = []

    def start():
        ours.handle(ours.engine.pair(0))  # Security Request

    import asyncio

    from bumble_peer import Air

    async def main():
        air = Air(bumble, ours)
        bumble.connection.on("security_request", lambda auth: seen.append(int(auth)))
        start()
        while air.queue:
            air._deliver(*air.queue.pop(0))
            await asyncio.sleep(0)
        assert seen == [0x09]  # Bonding | SC
        return await air.run()

    asyncio.run(main())
    assert ours.result is not None and bumble.paired is not None
    assert bumble.paired["ltk"] == ours.result.ltk


def test_security_request_from_bumble_peripheral():
    ours, bumble = _ends("central", True, 3, 3, False)
    import asyncio

    from bumble_peer import Air

    async def main():
        air = Air(ours, bumble)
        bumble.manager.request_pairing(bumble.connection)
        while air.queue:
            air._deliver(*air.queue.pop(0))
            await asyncio.sleep(0)
        req = [e for e in ours.events if type(e).__name__ == "SecurityRequestReceived"]
        assert len(req) == 1 and req[0].bonding and req[0].sc and not req[0].mitm
        return await air.run()  # the central answers with pair()

    asyncio.run(main())
    assert ours.result is not None and bumble.paired["ltk"] == ours.result.ltk


# ---------------------------------------------------------------- negative cases


def _first_failed(air, sender):
    for line in air.trace:
        if line.startswith(sender + "->") and "PAIRING_FAILED" in line:
            return line
    return None


def _after(air, sender, marker):
    """PDUs `sender` sent after the line containing marker."""
    out, seen = [], False
    for line in air.trace:
        if marker in line:
            seen = True
            continue
        if seen and line.startswith(sender + "->"):
            out.append(line)
    return out


@pytest.mark.parametrize("sc", [True, False])
def test_wrong_passkey_detected_by_our_responder(sc):
    # we are the responder and display; Bumble (initiator) types a wrong number. The responder
    # checks the initiator's confirm first, so this is our check; we then stay silent.
    ours, bumble = _ends("peripheral", sc, 0, 2, True, bumble={"typo": 7})
    air = _run("peripheral", ours, bumble)
    assert ours.failed == type(ours.failed)(0x04, True, "sent"), air.trace_text()
    line = _first_failed(air, "OURS")
    assert line.endswith("(CONFIRM_VALUE_FAILED)") and _after(air, "OURS", line) == []
    assert bumble.failure == 0x04  # Bumble received our Pairing Failed
    assert bumble.paired is None


@pytest.mark.parametrize("sc", [True, False])
def test_wrong_passkey_detected_by_bumble(sc):
    # our user types a wrong number: Bumble (responder) checks and sends 0x04; we report it received
    ours, bumble = _ends("central", sc, 2, 0, True, ours={"typo": 3})
    _run("central", ours, bumble)
    assert ours.failed is not None and ours.failed.reason == 0x04 and ours.failed.cause == "received"
    assert bumble.paired is None


def _flip(target_name, opcode, index=5, nth=0):
    count = [0]

    def tap(src, data):
        if src == target_name and data[0] == opcode:
            if count[0] == nth:
                data = bytearray(data)
                data[index] ^= 0x01
                data = bytes(data)
            count[0] += 1
        return data

    return tap


@pytest.mark.parametrize("sc", [True, False])
@pytest.mark.parametrize("role", ["central", "peripheral"])
def test_tampered_confirm_checked_by_us(sc, role):
    # flip a bit in Bumble's Pairing Confirm; our engine verifies it against the random -> 0x04.
    # (In LE SC Just Works the initiator sends no confirm, so our responder is tested with passkey.)
    if sc and role == "peripheral":
        ours, bumble = _ends(role, sc, 0, 2, True)
    else:
        ours, bumble = _ends(role, sc, 3, 3, False)
    air = _run(role, ours, bumble, tap=_flip("BUMBLE", 0x03))
    assert ours.failed is not None and ours.failed.reason == 0x04 and ours.failed.local, air.trace_text()
    assert ours.result is None
    line = _first_failed(air, "OURS")
    assert line and _after(air, "OURS", line) == []


@pytest.mark.parametrize("role", ["central", "peripheral"])
def test_tampered_dhkey_check_checked_by_us(role):
    ours, bumble = _ends(role, True, 3, 3, False)
    air = _run(role, ours, bumble, tap=_flip("BUMBLE", 0x0D))
    assert ours.failed is not None and ours.failed.reason == 0x0B and ours.failed.local, air.trace_text()
    assert ours.result is None and not any(e[2] for e in air.encryptions) if role == "peripheral" else True
    line = _first_failed(air, "OURS")
    assert line.endswith("(DHKEY_CHECK_FAILED)") and _after(air, "OURS", line) == []


def test_tampered_dhkey_check_checked_by_bumble():
    # our DHKey check tampered on the way: Bumble (responder) sends 0x0B; we report it received
    ours, bumble = _ends("central", True, 3, 3, False)
    _run("central", ours, bumble, tap=_flip("OURS", 0x0D))
    assert bumble.failure == 0x0B
    assert ours.failed is not None and ours.failed.reason == 0x0B and ours.failed.cause == "received"


def _replace_key(target, x=None, y=None):
    def tap(src, data):
        if src == target and data[0] == 0x0C:
            data = bytes([0x0C]) + (x or data[1:33]) + (y if y is not None else data[33:65])
        return data

    return tap


@pytest.mark.parametrize("role", ["central", "peripheral"])
def test_off_curve_public_key_checked_by_us(role):
    ours, bumble = _ends(role, True, 3, 3, False)
    air = _run(role, ours, bumble, tap=_replace_key("BUMBLE", y=bytes(32)))
    assert ours.failed is not None and ours.failed.reason == 0x0B and ours.failed.local, air.trace_text()
    line = _first_failed(air, "OURS")
    assert _after(air, "OURS", line) == []  # strict: unlike Bumble (quirk 3), we stop
    assert ours.result is None and not air.encryptions
    if role == "central":
        # we never sent anything computed from the bad key (no Pairing Random / DHKey Check)
        sent = [x.split()[2] for x in air.trace if x.startswith("OURS->")]
        assert "PAIRING_RANDOM" not in sent and "PAIRING_DHKEY_CHECK" not in sent


def test_reflected_public_key_checked_by_us():
    # the peer answers with our own public key (CVE-2020-26558): 0x03 Authentication Requirements
    key = SmpEngine.generate_key()
    x, y = SmpEngine.public_key_bytes(key)
    ours, bumble = _ends("central", True, 3, 3, False, ours={"ecc_key": key})
    air = _run("central", ours, bumble, tap=_replace_key("BUMBLE", x=x[::-1], y=y[::-1]))
    assert ours.failed is not None and ours.failed.reason == 0x03 and ours.failed.local, air.trace_text()


def test_off_curve_key_from_us_bumble_is_lax():
    # documents Bumble's side: it does answer 0x08 to an off-curve key (by accident, quirk 4),
    # and we report that as received.
    ours, bumble = _ends("central", True, 3, 3, False)
    _run("central", ours, bumble, tap=_replace_key("OURS", y=bytes(32)))
    assert ours.failed is not None and ours.failed.cause == "received"
    assert ours.failed.reason in (0x08, 0x0B)


@pytest.mark.parametrize("role", ["central", "peripheral"])
def test_key_size_below_our_minimum_checked_by_us(role):
    # Bumble offers a maximum of 7; our minimum is 12 -> we refuse with 0x06 (Bumble never checks)
    ours, bumble = _ends(role, True, 3, 3, False, bumble={"max_ks": 7})
    ours.config.min_key_size = 12
    air = _run(role, ours, bumble)
    assert ours.failed is not None and ours.failed.reason == 0x06 and ours.failed.local, air.trace_text()
    assert ours.result is None and not air.encryptions


@pytest.mark.parametrize("role", ["central", "peripheral"])
def test_max_key_size_6_is_refused_by_us(role):
    # a Maximum Encryption Key Size of 6 is below the spec's range; Bumble accepts it (quirk 6), we don't
    def tap(src, data):
        if src == "BUMBLE" and data[0] in (0x01, 0x02):
            data = data[:4] + bytes([6]) + data[5:]
        return data

    ours, bumble = _ends(role, True, 3, 3, False)
    air = _run(role, ours, bumble, tap=tap)
    assert ours.failed is not None and ours.failed.reason == 0x06, air.trace_text()
    assert pdu.describe(bytes([5, 6])) in "\n".join(air.trace)


def test_numeric_comparison_rejected_by_our_user():
    ours, bumble = _ends("peripheral", True, 1, 1, True, ours={"accept_nc": False})
    _run("peripheral", ours, bumble)
    assert ours.failed is not None and ours.failed.reason == 0x0C and ours.failed.local
    assert bumble.failure == 0x0C and bumble.paired is None


def test_passkey_refused_by_our_user():
    ours, bumble = _ends("central", True, 2, 0, True, ours={"refuse_passkey": True})
    _run("central", ours, bumble)
    assert ours.failed is not None and ours.failed.reason == 0x01 and ours.failed.local
    assert bumble.failure == 0x01
