"""The SMP PDU codec, and the engine's handling of malformed and unexpected PDUs."""

import os

import pytest
from bumble import smp as bsmp
from harness import INIT_ADDR, RESP_ADDR
from hypothesis import given, settings
from hypothesis import strategies as st

from tools.smp import Failed, Send, SmpConfig, SmpEngine, const, pdu

# (opcode, exact length) from Vol 3 Part H 3.3-3.6, written out independently of pdu.FORMATS
SPEC_LENGTHS = {0x01: 7, 0x02: 7, 0x03: 17, 0x04: 17, 0x05: 2, 0x06: 17, 0x07: 11, 0x08: 17, 0x09: 8,
                0x0A: 17, 0x0B: 2, 0x0C: 65, 0x0D: 17, 0x0E: 2}


def test_length_table_matches_spec():
    for op in range(256):
        assert pdu.LENGTHS[op] == SPEC_LENGTHS.get(op, 0), hex(op)


def _field(t):
    return {"B": st.integers(0, 255), "H": st.integers(0, 0xFFFF), "Q": st.integers(0, 2**64 - 1),
            "K": st.binary(min_size=16, max_size=16), "A": st.binary(min_size=6, max_size=6),
            "P": st.binary(min_size=32, max_size=32)}[t]


@st.composite
def _command(draw):
    op = draw(st.sampled_from(sorted(pdu.FORMATS)))
    fields = tuple(draw(_field(t)) for t in pdu.FORMATS[op][1])
    return op, fields


@settings(max_examples=300, deadline=None)
@given(_command())
def test_round_trip(cmd):
    op, fields = cmd
    data = pdu.encode(op, *fields)
    assert len(data) == SPEC_LENGTHS[op]
    assert pdu.decode(data) == (op, fields)
    assert pdu.encode(*((op,) + pdu.decode(data)[1])) == data


@settings(max_examples=200, deadline=None)
@given(_command())
def test_bumble_decodes_our_encoding(cmd):
    # Bumble's codec is an independent reading of the same tables: the opcode and the multi-octet
    # values must come out the same (Bumble keeps them LSB-first).
    op, fields = cmd
    data = pdu.encode(op, *fields)
    parsed = bsmp.SMP_Command.from_bytes(data)
    assert int(parsed.code) == op
    assert bytes(parsed) == data
    if op in (0x03, 0x04, 0x06, 0x08, 0x0A, 0x0D):
        value = [v for v in vars(parsed).values() if isinstance(v, bytes) and len(v) == 16][0]
        assert value[::-1] == fields[0]
    if op == 0x07:
        assert parsed.ediv == fields[0]
        assert bytes(parsed.rand)[::-1] == fields[1].to_bytes(8, "big")
    if op == 0x0C:
        assert parsed.public_key_x[::-1] == fields[0] and parsed.public_key_y[::-1] == fields[1]


def test_convenience_encoders_equal_generic():
    k = bytes(range(16))
    assert pdu.pairing_request(4, 1, 0x2D, 16, 7, 5) == pdu.encode(0x01, 4, 1, 0x2D, 16, 7, 5)
    assert pdu.pairing_response(3, 0, 9, 7, 1, 2) == pdu.encode(0x02, 3, 0, 9, 7, 1, 2)
    for op in (0x03, 0x04, 0x06, 0x08, 0x0A, 0x0D):
        assert pdu.value16(op, k) == pdu.encode(op, k)
    assert pdu.central_identification(0x1234, 0x0102030405060708) == pdu.encode(0x07, 0x1234, 0x0102030405060708)
    assert pdu.identity_address(1, bytes.fromhex("C01122334455")) == bytes.fromhex("0901554433221100c0")[:2] + \
        bytes.fromhex("C01122334455")[::-1]
    assert pdu.public_key(bytes(range(32)), bytes(range(32, 64))) == pdu.encode(0x0C, bytes(range(32)),
                                                                                 bytes(range(32, 64)))


def test_sample_trace_from_reference():
    # bumble-peer.md's trace: 01030009100707 = NoIO, no OOB, Bonding|SC, 16, ikd=7, rkd=7
    assert pdu.decode(bytes.fromhex("01030009100707")) == (0x01, (3, 0, 9, 16, 7, 7))
    assert pdu.decode(bytes.fromhex("0901aa99887766d0")) == (0x09, (1, bytes.fromhex("d066778899aa")))
    assert pdu.describe(bytes.fromhex("0504")) == "0x05 PAIRING_FAILED 0504 (CONFIRM_VALUE_FAILED)"


@pytest.mark.parametrize("data, reason", [
    (b"", const.INVALID_PARAMETERS),
    (bytes([0x00]), const.COMMAND_NOT_SUPPORTED),
    (bytes([0x0F, 0]), const.COMMAND_NOT_SUPPORTED),
    (bytes([0x20]) + bytes(6), const.COMMAND_NOT_SUPPORTED),
    (bytes([0x01, 3, 0, 9, 16, 7]), const.INVALID_PARAMETERS),  # short
    (bytes([0x01, 3, 0, 9, 16, 7, 7, 0]), const.INVALID_PARAMETERS),  # long
    (bytes([0x0C]) + bytes(63), const.INVALID_PARAMETERS),
])
def test_decode_errors(data, reason):
    with pytest.raises(pdu.PduError) as e:
        pdu.decode(data)
    assert e.value.reason == reason


def _peripheral(**kw):
    return SmpEngine("peripheral", SmpConfig(**kw), RESP_ADDR, INIT_ADDR)


def _central(**kw):
    return SmpEngine("central", SmpConfig(**kw), INIT_ADDR, RESP_ADDR)


def _sent(outs):
    return [o.pdu for o in outs if type(o) is Send]


def test_engine_ignores_reserved_opcodes():
    # Core v5.2+ Vol 3 Part H 3.3: a packet with a reserved Code shall be ignored (NimBLE too)
    e = _peripheral()
    assert e.receive(bytes([0x20, 1, 2]), 0) == []
    assert e.receive(bytes([0x0F]), 0) == [] and e.receive(bytes([0x00]), 0) == []
    e.receive(pdu.pairing_request(3, 0, 9, 16, 7, 7), 0)
    assert e.busy and e.receive(bytes([0xFF] * 17), 0) == [] and e.busy  # mid-pairing too


def test_engine_rejects_wrong_length_before_the_handler():
    e = _peripheral()
    out = e.receive(bytes([0x01, 3, 0, 9, 16, 7]), 0)
    assert _sent(out) == [bytes([0x05, 0x0A])]
    assert not e.busy  # the handler never ran: no pairing started
    out = e.receive(bytes([0x01, 3, 0, 9, 16, 7, 7, 7]), 0)
    assert _sent(out) == [bytes([0x05, 0x0A])]


def test_engine_wrong_role_opcodes():
    # a peripheral never receives Pairing Response or Security Request; a central never a Pairing Request
    p = _peripheral()
    assert _sent(p.receive(pdu.pairing_response(3, 0, 9, 16, 7, 7), 0)) == [bytes([0x05, 0x07])]
    assert _sent(p.receive(pdu.security_request(9), 0)) == [bytes([0x05, 0x07])]
    c = _central()
    assert _sent(c.receive(pdu.pairing_request(3, 0, 9, 16, 7, 7), 0)) == [bytes([0x05, 0x07])]


def test_engine_unexpected_command_in_state_is_unspecified_reason():
    c = _central()
    c.pair(0)
    out = c.receive(pdu.value16(0x04, bytes(16)), 0)  # Random while waiting for the Pairing Response
    assert _sent(out) == [bytes([0x05, 0x08])]
    assert Failed(0x08, True, "sent") in out
    assert not c.busy


def test_idle_engine_drops_stragglers_silently():
    # PDUs of a procedure that already ended (the peer had them in flight) get no answer
    p = _peripheral()
    assert p.receive(pdu.value16(0x03, bytes(16)), 0) == []
    assert p.receive(pdu.value16(0x0D, bytes(16)), 0) == []
    assert not p.busy


def test_pairing_failed_is_never_answered():
    p = _peripheral()
    assert p.receive(bytes([0x05, 0x04]), 0) == []
    assert p.receive(bytes([0x05]), 0) == []
    assert p.receive(bytes([0x05, 0x04, 0x00]), 0) == []


def test_invalid_pairing_request_fields():
    assert _sent(_peripheral().receive(pdu.pairing_request(5, 0, 9, 16, 7, 7), 0)) == [bytes([0x05, 0x0A])]
    assert _sent(_peripheral().receive(pdu.pairing_request(3, 2, 9, 16, 7, 7), 0)) == [bytes([0x05, 0x0A])]
    assert _sent(_peripheral().receive(pdu.pairing_request(3, 0, 9, 17, 7, 7), 0)) == [bytes([0x05, 0x06])]
    assert _sent(_peripheral().receive(pdu.pairing_request(3, 0, 9, 6, 7, 7), 0)) == [bytes([0x05, 0x06])]


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 40), st.binary(min_size=0, max_size=70), st.booleans())
def test_fuzz_no_exception_escapes(cut, junk, central_side):
    # replay a passkey pairing up to `cut` PDUs, then throw arbitrary bytes at one side
    c = SmpEngine("central", SmpConfig(io_cap=4, mitm=True, passkey=111111), INIT_ADDR, RESP_ADDR)
    p = SmpEngine("peripheral", SmpConfig(io_cap=0, mitm=True, passkey=111111), RESP_ADDR, INIT_ADDR)
    queue = [(c, o) for o in c.pair(0)]
    n = 0
    while queue and n < cut:
        src, o = queue.pop(0)
        n += 1
        dst = p if src is c else c
        if type(o) is Send:
            queue += [(dst, x) for x in dst.receive(o.pdu, 0)]
        elif type(o).__name__ == "PasskeyRequest":
            queue += [(src, x) for x in src.passkey(111111, 0)]
    target = c if central_side else p
    out = target.receive(junk, 1.0)
    for o in out:
        assert type(o).__name__ in ("Send", "Failed", "SecurityRequestReceived", "PairingRequestReceived",
                                    "Keypress", "PasskeyRequest", "DisplayPasskey", "NumericComparison")
    # every reply to garbage is at most one Pairing Failed (or a legitimate protocol step), and
    # after a Pairing Failed the engine is no longer pairing
    sends = _sent(out)
    failed = [x for x in sends if x[0] == 0x05]
    assert len(failed) <= 1
    if failed:
        assert not target.busy
    if len(junk) == 0 or junk[0] not in pdu.FORMATS:
        assert sends == []  # empty or reserved opcode: ignored


def test_random_bytes_never_raise():
    rnd = os.urandom
    for _ in range(2000):
        e = _peripheral() if rnd(1)[0] & 1 else _central()
        data = rnd(rnd(1)[0] % 70)
        e.receive(data, 0)
