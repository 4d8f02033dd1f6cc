# Fuzzing the SMP engine (tools/smp) at every step of every pairing method: truncated,
# oversized, unknown and reserved-value PDUs, random content, PDUs altered in flight, repeated
# and out-of-order commands. Properties (smpfuzz.check_injection / fuzz_case): no exception
# escapes, every Pairing Failed carries the reason the specification prescribes, both engines end
# idle (or timed out), and a new pairing then succeeds with matching keys.
# This is the short run of `make test`; `make fuzz` (tools/fuzz.py) is the long one.
import random

import pytest
import smpfuzz as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tools.smp import Failed, Send
from tools.smp import const as C
from tools.smp import pdu as P

FAST = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ROLES = ("central", "peripheral")


# ------------------------------------------------------------------ strategies

@st.composite
def malformed(draw):
    kind = draw(st.sampled_from(("empty", "reserved", "truncated", "oversized", "random", "values", "failed")))
    if kind == "empty":
        return b""
    if kind == "reserved":
        op = draw(st.sampled_from(F.RESERVED_OPCODES))
        return bytes([op]) + draw(st.binary(max_size=70))
    op = draw(st.sampled_from(F.KNOWN))
    n = F.valid_length(op) - 1
    if kind == "truncated":
        return bytes([op]) + draw(st.binary(max_size=n - 1))
    if kind == "oversized":
        return bytes([op]) + draw(st.binary(min_size=n + 1, max_size=n + 40))
    if kind == "random":
        return bytes([op]) + draw(st.binary(min_size=n, max_size=n))
    if kind == "failed":
        return bytes([C.PAIRING_FAILED]) + draw(st.binary(min_size=1, max_size=1))
    return F.reserved_values(random.Random(draw(st.integers(0, 2**32))))


@st.composite
def position(draw):
    scenario = draw(st.sampled_from(F.SCENARIO_NAMES))
    step = draw(st.integers(0, len(F.clean(scenario))))
    return scenario, step, draw(st.sampled_from(ROLES))


# ------------------------------------------------------------------ hypothesis runs

@FAST
@given(pos=position(), data=malformed(), replace=st.booleans())
def test_malformed_pdu_at_any_step(pos, data, replace):
    scenario, step, role = pos
    F.fuzz_case(scenario, step, role, [data], replace=replace, seed=step)


@FAST
@given(pos=position(), index=st.integers(0, 63), xor=st.integers(1, 255), replace=st.booleans())
def test_pdu_altered_in_flight(pos, index, xor, replace):
    # replace=True: a MITM alters the next PDU; an altered confirm/random/public key/DHKey check
    # must make the pairing fail on both sides. replace=False: a forged copy arrives first.
    scenario, step, role = pos
    F.fuzz_case(scenario, step, role, [F.tamper_next(index, xor)], replace=replace, seed=index)


@FAST
@given(pos=position(), which=st.integers(-3, 5), extra=st.lists(malformed(), max_size=3))
def test_repeated_or_out_of_order_then_garbage(pos, which, extra):
    # a command the engine already received (repeated / replayed out of order), then more garbage
    scenario, step, role = pos
    F.fuzz_case(scenario, step, role, [F.replay(which)] + extra, seed=which)


# ------------------------------------------------------------------ every state, deterministic

_PROBES = (
    b"",
    bytes([0x00]),  # reserved opcode 0x00
    bytes([0x0F]) + bytes(16),  # first reserved opcode after Keypress Notification
    bytes([0xFF]),
    bytes([C.PAIRING_REQUEST, 3, 0, 1, 16, 7]),  # one octet short
    bytes([C.PAIRING_CONFIRM]) + bytes(17),  # one octet long
    P.value16(C.PAIRING_RANDOM, bytes(range(16))),
    P.public_key(bytes(32), bytes(32)),  # not a point on P-256
    bytes([C.PAIRING_FAILED, C.UNSPECIFIED_REASON]),
    bytes([C.SECURITY_REQUEST, 0x0D]),
    bytes([C.KEYPRESS_NOTIFICATION, 0x09]),
    P.value16(C.PAIRING_DHKEY_CHECK, bytes(16)),
    bytes([C.IDENTITY_ADDRESS_INFORMATION, 7]) + bytes(6),
)


@pytest.mark.parametrize("scenario", F.SCENARIO_NAMES)
def test_every_step_every_method(scenario):
    """Every step of the scenario, both engines, a rotating set of probe PDUs (and the next
    PDU altered in flight): at every state of every pairing method."""
    n = len(F.clean(scenario))
    cats = set()
    # LE SC passkey entry repeats the same four states 20 times: rounds 3..17 are sampled
    for step in [s for s in range(n + 1) if n < 60 or s < 20 or s > n - 20 or s % 8 == 0]:
        for r, role in enumerate(ROLES):
            probe = _PROBES[(step * 2 + r) % len(_PROBES)]
            cats.add(F.fuzz_case(scenario, step, role, [probe], replace=step % 2 == 0, seed=step))
            cats.add(F.fuzz_case(scenario, step, role, [F.tamper_next(step, 0x41)], replace=True, seed=step))
    # the run did reach mid-procedure states, not only idle ones
    assert "unexpected" in cats or "expected_content" in cats, cats


# ------------------------------------------------------------------ the oracle can fail

def test_oracle_rejects_wrong_reasons():
    """The checks are not vacuous: wrong answers from an engine are caught."""
    d = F.Drive("sc_jw")
    d.start()
    for _ in range(3):
        d.step()
    eng = d.engine["peripheral"]
    assert eng.busy
    wrong = [Send(P.pairing_failed(C.UNSPECIFIED_REASON)), Failed(C.UNSPECIFIED_REASON, True, "sent")]
    # a wrong-length PDU of the expected opcode must get 0x0A, not 0x08
    with pytest.raises(AssertionError):
        F.check_injection(bytes([C.PAIRING_CONFIRM]) + bytes(3), "peripheral", True, C.PAIRING_CONFIRM, wrong,
                          F.Drive("sc_jw").engine["peripheral"])
    # a well-formed unexpected command must get 0x08, not be swallowed while pairing
    with pytest.raises(AssertionError):
        F.check_injection(P.value16(C.SIGNING_INFORMATION, bytes(16)), "peripheral", True,
                          C.PAIRING_CONFIRM, [], eng)
    # answering a Pairing Failed is never allowed
    with pytest.raises(AssertionError):
        F.check_injection(bytes([C.PAIRING_FAILED, 8]), "peripheral", True, C.PAIRING_CONFIRM, wrong,
                          F.Drive("sc_jw").engine["peripheral"])


# FINDING F1 (SECURITY.md), fixed in tools.smp: a reserved opcode is now ignored (was: Pairing Failed 0x07)
def test_reserved_opcode_is_ignored_mid_pairing():
    d = F.Drive("sc_jw")
    d.start()
    for _ in range(3):
        d.step()
    assert d.engine["peripheral"].busy
    outs = d.inject("peripheral", bytes([0x20, 1, 2]))
    assert outs == [] and d.engine["peripheral"].busy
    d.run()
    assert d.both_paired() and d.consistent()
