"""Hardening harness for the SMP engine (tools/smp): a step-by-step driver of a real
pairing between two engines, PDU mutators, and the oracle that says what the specification
prescribes for a PDU injected at any step.

Used by host_tests/hardening/test_hardening_fuzz.py (short run under `make test`) and by
tools/fuzz.py (`make fuzz`, the long run). CPython only.

The driver (`Drive`) owns the two engines, a FIFO of pending events (a PDU to deliver, a user
answer, the link layer's LTK request / Encryption Change) and a virtual clock. `step()` runs
exactly one event, so a test can stop a pairing at step k (any state of any method), inject a
PDU into either engine, check the immediate answer against `expected()`, let the pairing play
out, and check that both engines end idle (or timed out) and that a new pairing then succeeds.
"""

import random
from collections import deque

from tools.smp import (
    DisplayPasskey,
    Failed,
    Identity,
    Keypress,
    LtkReply,
    NumericComparison,
    OobData,
    Paired,
    PairingRequestReceived,
    PasskeyRequest,
    RepeatedAttempts,
    SecurityRequestReceived,
    Send,
    SmpConfig,
    SmpEngine,
    StartEncryption,
)
from tools.smp import (
    const as C,
)
from tools.smp import (
    pdu as P,
)

CENTRAL_ADDR = (1, bytes.fromhex("C0A1B2C3D4E5"))
PERIPHERAL_ADDR = (0, bytes.fromhex("A4CF12000002"))
CENTRAL_ID = Identity(bytes(range(16)), 0, bytes.fromhex("A4CF12000001"), csrk=bytes(range(16, 32)))
PERIPHERAL_ID = Identity(bytes(range(32, 48)), 0, bytes.fromhex("A4CF12000002"))
OUTPUT_TYPES = (Send, StartEncryption, LtkReply, DisplayPasskey, PasskeyRequest, NumericComparison, Keypress,
                SecurityRequestReceived, PairingRequestReceived, Paired, Failed)
OTHER = {"central": "peripheral", "peripheral": "central"}
PASSKEY = 424242
LEGACY_TK = bytes.fromhex("00112233445566778899aabbccddeeff")

# The reasons a Pairing Failed may carry anywhere in a fuzzed run (Table 3.7, 0x01..0x0C;
# 0x0D/0x0E are BR/EDR and CTKD, which an LE-only engine never sends; 0x0F Key Rejected too).
LEGAL_SENT = frozenset(range(0x01, 0x0D))


def scenario_configs():
    """name -> (central SmpConfig kwargs, peripheral SmpConfig kwargs, initiator).
    Every pairing method (Just Works, Passkey Entry in its three role layouts, Numeric
    Comparison, OOB) in LE Secure Connections and legacy where it exists, bonding with every key,
    no bonding, keypress, and a pairing started by the peripheral's Security Request."""
    mitm = {"mitm": True}
    out = {
        "legacy_jw": ({"sc": False}, {"sc": False}, "central"),
        "legacy_pk_resp_displays": ({"sc": False, "io_cap": 2, **mitm}, {"sc": False, "io_cap": 0, **mitm},
                                    "central"),
        "legacy_pk_init_displays": ({"sc": False, "io_cap": 0, **mitm}, {"sc": False, "io_cap": 4, **mitm},
                                    "central"),
        "legacy_pk_both_input": ({"sc": False, "io_cap": 2, **mitm}, {"sc": False, "io_cap": 2, **mitm}, "central"),
        "legacy_oob": ({"sc": False, "oob": OobData(tk=LEGACY_TK)}, {"sc": False, "oob": OobData(tk=LEGACY_TK)},
                       "central"),
        "legacy_no_bond": ({"sc": False, "bonding": False}, {"sc": False, "bonding": False}, "central"),
        "sc_jw": ({}, {}, "central"),
        "sc_jw_secreq": ({}, {}, "peripheral"),
        "sc_jw_no_bond": ({"bonding": False}, {"bonding": False}, "central"),
        "sc_pk_resp_displays": ({"io_cap": 2, **mitm}, {"io_cap": 0, **mitm}, "central"),
        "sc_pk_init_displays": ({"io_cap": 0, **mitm}, {"io_cap": 2, **mitm}, "central"),
        "sc_pk_both_input_keypress": ({"io_cap": 2, "keypress": True, **mitm}, {"io_cap": 2, "keypress": True, **mitm},
                                      "central"),
        "sc_nc": ({"io_cap": 1, **mitm}, {"io_cap": 4, **mitm}, "central"),
        "sc_nc_secreq_held": ({"io_cap": 4, **mitm}, {"io_cap": 1, "hold_pairing_request": True, **mitm},
                              "peripheral"),
    }
    return out


def sc_oob_configs(ecc_c, ecc_p):
    """LE SC OOB (both directions) needs the engines' keys: configs made per key pair."""
    rc, cc = SmpEngine.sc_oob_local(ecc_c, bytes(range(100, 116)))
    rp, cp = SmpEngine.sc_oob_local(ecc_p, bytes(range(200, 216)))
    return ({"oob": OobData(local_r=rc, peer_r=rp, peer_c=cp)}, {"oob": OobData(local_r=rp, peer_r=rc, peer_c=cc)})


SCENARIOS = scenario_configs()
SCENARIOS["sc_oob"] = None  # configs built per engine key pair (sc_oob_configs)
SCENARIO_NAMES = tuple(sorted(SCENARIOS))


class Drive:
    """Two engines, a perfect link layer, scripted users and a virtual clock, one event per step.

    users: each side answers PasskeyRequest(display=True) with `passkey`, PasskeyRequest(False)
    with `typed[side]` (default: the same passkey) and NumericComparison with `accept[side]`."""

    def __init__(self, scenario, seed=0, attempts=None, now=0.0, typed=None, accept=None, ecc=None,
                 central_cfg=None, peripheral_cfg=None, initiator=None, tap=None):
        self.scenario = scenario
        rnd = random.Random(seed)
        self._rng = {s: random.Random(rnd.getrandbits(64)) for s in ("central", "peripheral")}
        self.ecc = ecc or {"central": SmpEngine.generate_key(), "peripheral": SmpEngine.generate_key()}
        if scenario == "sc_oob":
            kc, kp = sc_oob_configs(self.ecc["central"], self.ecc["peripheral"])
            init = "central"
        elif scenario is None:
            kc, kp, init = {}, {}, "central"
        else:
            kc, kp, init = SCENARIOS[scenario]
        self.cfg = {
            "central": central_cfg if central_cfg is not None else SmpConfig(**kc),
            "peripheral": peripheral_cfg if peripheral_cfg is not None else SmpConfig(**kp),
        }
        self.initiator = initiator or init
        self.attempts = attempts or {"central": RepeatedAttempts(), "peripheral": RepeatedAttempts()}
        self.passkey = PASSKEY
        self.typed = dict(typed or {})
        self.accept = {"central": True, "peripheral": True}
        self.accept.update(accept or {})
        self.tap = tap
        self.now = now
        self.new_link()

    def new_link(self):
        """Fresh engines on a new connection (same device state: attempts, keys, configs)."""
        self.engine = {
            "central": SmpEngine("central", self.cfg["central"], CENTRAL_ADDR, PERIPHERAL_ADDR, identity=CENTRAL_ID,
                                 rng=self._rng["central"].randbytes, attempts=self.attempts["central"],
                                 ecc_key=self.ecc["central"]),
            "peripheral": SmpEngine("peripheral", self.cfg["peripheral"], PERIPHERAL_ADDR, CENTRAL_ADDR,
                                    identity=PERIPHERAL_ID, rng=self._rng["peripheral"].randbytes,
                                    attempts=self.attempts["peripheral"], ecc_key=self.ecc["peripheral"]),
        }
        self.queue = deque()
        self.trace = []  # (step, role, kind, detail) of every executed event
        self.steps = 0
        self.paired = {"central": None, "peripheral": None}
        self.failed = {"central": [], "peripheral": []}
        self.sent_failures = {"central": [], "peripheral": []}
        self.displayed = {"central": None, "peripheral": None}
        self.compared = {"central": None, "peripheral": None}
        self.prompts = {"central": [], "peripheral": []}
        self.encryptions = []  # (requested key, peripheral's reply, ok, key_size)
        self.pending_enc = None
        self.delivered = {"central": [], "peripheral": []}  # PDUs each engine received, in order
        self.tampered = None  # opcode of a PDU a tamper_next mutator changed in flight

    # ---------------------------------------------------------------- events

    def start(self):
        self.queue.append(("pair", self.initiator, None))

    def call(self, role, kind, arg):
        """Run one engine call, check its outputs are well-formed, route them."""
        eng = self.engine[role]
        now = self.now
        if kind == "pair":
            outs = eng.pair(now)
        elif kind == "receive":
            outs = eng.receive(arg, now)
        elif kind == "passkey":
            outs = eng.passkey(arg, now)
        elif kind == "confirm":
            outs = eng.confirm(arg, now)
        elif kind == "accept":
            outs = eng.accept_pairing(arg, now)
        elif kind == "ltk_request":
            outs = eng.ltk_request(arg[0], arg[1], now)
        elif kind == "enc":
            outs = eng.encryption_changed(arg[0], arg[1], now)
        elif kind == "tick":
            outs = eng.tick(now)
        elif kind == "link_lost":
            outs = eng.link_lost(now)
        else:
            raise AssertionError(kind)
        assert isinstance(outs, list), "%s.%s returned %r" % (role, kind, outs)
        for o in outs:
            assert isinstance(o, OUTPUT_TYPES), "%s.%s returned a non-output %r" % (role, kind, o)
        self.route(role, outs)
        return outs

    def route(self, role, outs):
        other = OTHER[role]
        for o in outs:
            t = type(o)
            if t is Send:
                assert isinstance(o.pdu, (bytes, bytearray)) and len(o.pdu) >= 1
                if o.pdu[0] == C.PAIRING_FAILED:
                    self.sent_failures[role].append(o.pdu[1])
                self.queue.append(("receive", other, bytes(o.pdu)))
            elif t is StartEncryption:
                assert role == "central", "only a central starts encryption"
                self.pending_enc = o
                self.queue.append(("ltk_request", "peripheral", (o.ediv, o.rand)))
            elif t is LtkReply:
                assert role == "peripheral"
                se = self.pending_enc
                self.pending_enc = None
                ok = se is not None and o.ltk is not None and o.ltk == se.ltk
                ks = se.key_size if ok else 0
                self.encryptions.append((se.ltk if se else None, o.ltk, ok, ks))
                self.queue.append(("enc", "peripheral", (ok, ks)))
                self.queue.append(("enc", "central", (ok, ks)))
            elif t is DisplayPasskey:
                assert 0 <= o.passkey <= 999999
                self.displayed[role] = o.passkey
                self.prompts[role].append(("display", o.passkey))
            elif t is PasskeyRequest:
                self.prompts[role].append(("request_display" if o.display else "input", None))
                value = self.passkey if o.display else self.typed.get(role, self.passkey)
                self.queue.append(("passkey", role, value))
            elif t is NumericComparison:
                assert 0 <= o.number <= 999999
                self.compared[role] = o.number
                self.prompts[role].append(("compare", o.number))
                self.queue.append(("confirm", role, self.accept[role]))
            elif t is SecurityRequestReceived:
                assert role == "central"
                self.queue.append(("pair", "central", None))
            elif t is PairingRequestReceived:
                assert role == "peripheral"
                if self.cfg["peripheral"].hold_pairing_request:
                    self.queue.append(("accept", "peripheral", True))
            elif t is Paired:
                self.paired[role] = o.result
            elif t is Failed:
                self.failed[role].append(o)

    def step(self):
        """Execute the next queued event; returns (role, kind, arg, outputs) or None if idle."""
        if not self.queue:
            return None
        kind, role, arg = self.queue.popleft()
        if kind == "receive" and self.tap is not None:
            arg = self.tap(role, arg, self)
            if arg is None:
                self.trace.append((self.steps, role, "dropped", None))
                self.steps += 1
                return (role, kind, None, [])
        self.now += 0.01
        if kind == "receive":
            self.delivered[role].append(arg)
        self.trace.append((self.steps, role, kind, arg[0] if kind == "receive" else arg))
        self.steps += 1
        outs = self.call(role, kind, arg)
        return (role, kind, arg, outs)

    def run(self, limit=2000):
        n = 0
        while self.queue:
            self.step()
            n += 1
            assert n < limit, "the pairing does not settle (loop?): %r" % (self.trace[-20:],)
        return self

    def inject(self, role, data, replace=False):
        """Deliver `data` to engine `role` now (before anything queued). replace=True first drops
        the next queued PDU for that engine (a substitution instead of an insertion)."""
        if replace:
            for i, ev in enumerate(self.queue):
                if ev[0] == "receive" and ev[1] == role:
                    del self.queue[i]
                    break
        self.now += 0.01
        self.trace.append((self.steps, role, "inject", bytes(data)))
        self.steps += 1
        return self.call(role, "receive", bytes(data))

    def next_pdu(self, role):
        """The next PDU queued for engine `role` (None if none)."""
        for ev in self.queue:
            if ev[0] == "receive" and ev[1] == role:
                return ev[2]
        return None

    def expire(self, seconds=31.0):
        """Let the SMP timer run out on both engines."""
        self.now += seconds
        for role in ("central", "peripheral"):
            self.call(role, "tick", None)
        self.run()

    def idle(self):
        return not self.engine["central"].busy and not self.engine["peripheral"].busy

    def both_paired(self):
        return self.paired["central"] is not None and self.paired["peripheral"] is not None

    def consistent(self):
        """Both sides paired with the same key, method, key size and SC flag."""
        c, p = self.paired["central"], self.paired["peripheral"]
        return (c.stk == p.stk and c.method == p.method and c.key_size == p.key_size and c.sc == p.sc
                and c.authenticated == p.authenticated)

    def fresh_pairing_succeeds(self, wait=130.0):
        """After whatever happened: wait past any Repeated Attempts interval, and pair again
        (on the same link unless an engine timed out or saw the link drop). Returns the Drive."""
        dead = self.engine["central"].dead or self.engine["peripheral"].dead
        self.now += wait
        if dead:
            self.new_link()
        else:
            self.queue.clear()
            self.paired = {"central": None, "peripheral": None}
            self.failed = {"central": [], "peripheral": []}
            self.pending_enc = None
        self.tap = None
        self.typed = {}
        self.accept = {"central": True, "peripheral": True}
        self.start()
        self.run()
        return self


def clean_trace(scenario, seed=0):
    """The events of an undisturbed pairing: list of (role, kind, opcode-or-arg)."""
    d = Drive(scenario, seed=seed)
    d.start()
    d.run()
    assert d.both_paired() and d.consistent(), "clean %s pairing failed: %r" % (scenario, d.failed)
    return [(r, k, a) for (_s, r, k, a) in d.trace]


_CLEAN = {}


def clean(scenario):
    if scenario not in _CLEAN:
        _CLEAN[scenario] = clean_trace(scenario)
    return _CLEAN[scenario]


def next_event(trace, step, role):
    """The next event of engine `role` in the clean trace at or after `step`:
    (kind, opcode-or-arg), or None if that engine has nothing more to do."""
    for r, k, a in trace[step:]:
        if r == role and k != "tick":
            return k, a
    return None


def expectation(trace, step, role):
    """What engine `role` waits for at `step` of an undisturbed pairing: the opcode of the PDU
    it receives next if that is its next event; "user" if it is waiting for something else first
    (a user answer, the link layer) so a peer PDU may legitimately arrive early; None if done."""
    ev = next_event(trace, step, role)
    if ev is None:
        return None
    if ev[0] == "receive":
        return ev[1]
    return "user"


# ---------------------------------------------------------------- mutators

KNOWN = tuple(sorted(P.FORMATS))
RESERVED_OPCODES = tuple(op for op in range(256) if op not in P.FORMATS)


def valid_length(op):
    return P.FORMATS[op][0]


def mutate(rnd, kind, seen=()):
    """One PDU of the given kind (rnd: random.Random). Kinds: empty, reserved, truncated,
    oversized, random_content, reserved_values, replay, failed."""
    if kind == "empty":
        return b""
    if kind == "reserved":
        return bytes([rnd.choice(RESERVED_OPCODES)]) + rnd.randbytes(rnd.randint(0, 70))
    if kind == "truncated":
        op = rnd.choice(KNOWN)
        return bytes([op]) + rnd.randbytes(rnd.randint(0, valid_length(op) - 2))
    if kind == "oversized":
        op = rnd.choice(KNOWN)
        return bytes([op]) + rnd.randbytes(valid_length(op) - 1 + rnd.randint(1, 40))
    if kind == "random_content":
        op = rnd.choice(KNOWN)
        return bytes([op]) + rnd.randbytes(valid_length(op) - 1)
    if kind == "reserved_values":
        return reserved_values(rnd)
    if kind == "replay" and seen:
        return rnd.choice(seen)
    if kind == "failed":
        return bytes([C.PAIRING_FAILED, rnd.randrange(256)])
    return bytes([rnd.choice(KNOWN)]) + rnd.randbytes(rnd.randint(0, 70))


def reserved_values(rnd):
    """A right-length PDU whose fields use reserved or out-of-range values."""
    which = rnd.randrange(6)
    if which < 2:  # Pairing Request / Response
        op = C.PAIRING_REQUEST if which == 0 else C.PAIRING_RESPONSE
        f = [rnd.randrange(5), rnd.randrange(2), rnd.randrange(256), rnd.randint(7, 16), rnd.randrange(8),
             rnd.randrange(8)]
        field = rnd.randrange(6)
        if field == 0:
            f[0] = rnd.randint(5, 255)  # IO capability 0x05-0xFF reserved
        elif field == 1:
            f[1] = rnd.randint(2, 255)  # OOB flag 0x02-0xFF reserved
        elif field == 2:
            f[2] |= rnd.choice((0x40, 0x80, 0xC0, 0x02))  # reserved AuthReq bits (ignored on receipt)
        elif field == 3:
            f[3] = rnd.choice((0, 1, 2, 3, 4, 5, 6, 17, 32, 128, 255))  # key size outside 7..16
        else:
            f[field] |= rnd.choice((0x08, 0x10, 0x80, 0xF0))  # LinkKey / reserved key distribution bits
        return bytes([op] + f)
    if which == 2:
        return bytes([C.KEYPRESS_NOTIFICATION, rnd.randint(5, 255)])
    if which == 3:
        return bytes([C.IDENTITY_ADDRESS_INFORMATION, rnd.randint(2, 255)]) + rnd.randbytes(6)
    if which == 4:
        return bytes([C.PAIRING_FAILED, rnd.choice((0x00, 0x10, 0x7F, 0xFF))])
    return bytes([C.SECURITY_REQUEST, rnd.randrange(256)])


def tamper_next(index, xor):
    """A mutator run at injection time: the PDU the engine is about to receive, with byte
    `index` (modulo its length, never the opcode) XORed with `xor` (1..255); falls back to a
    replay of the last PDU the engine received, then to a random Pairing Confirm."""

    def f(d, role):
        data = d.next_pdu(role)
        if data is None:
            return replay(-1)(d, role)
        b = bytearray(data)
        if len(b) > 1:
            b[1 + index % (len(b) - 1)] ^= xor or 1
            d.tampered = data[0]
        return bytes(b)

    return f


def replay(index):
    """A mutator run at injection time: a PDU the engine already received (index into the list
    of delivered PDUs, -1 = the last one: a repeated command)."""

    def f(d, role):
        got = d.delivered[role]
        if not got:
            return P.value16(C.PAIRING_CONFIRM, bytes(16))
        return got[index % len(got)]

    return f


MUTATION_KINDS = ("empty", "reserved", "truncated", "oversized", "random_content", "reserved_values", "replay",
                  "failed")


# ---------------------------------------------------------------- the oracle

# Opcodes each role can legitimately receive in LE (Table 3.1 / 2.4): the rest are
# "Command Not Supported" for that role (NimBLE) or unexpected (Zephyr).
ROLE_RX = {
    "central": frozenset(op for op in KNOWN if op != C.PAIRING_REQUEST),
    "peripheral": frozenset(op for op in KNOWN if op not in (C.PAIRING_RESPONSE, C.SECURITY_REQUEST)),
}

# Reasons a right-length PDU of the expected opcode may legitimately fail with, by opcode
# (content checks: Table 3.7 and the sections on each command).
CONTENT_REASONS = {
    C.PAIRING_REQUEST: {C.INVALID_PARAMETERS, C.ENCRYPTION_KEY_SIZE, C.AUTHENTICATION_REQUIREMENTS,
                        C.PAIRING_NOT_SUPPORTED, C.REPEATED_ATTEMPTS, C.OOB_NOT_AVAILABLE},
    C.PAIRING_RESPONSE: {C.INVALID_PARAMETERS, C.ENCRYPTION_KEY_SIZE, C.AUTHENTICATION_REQUIREMENTS,
                         C.PAIRING_NOT_SUPPORTED, C.OOB_NOT_AVAILABLE},
    C.PAIRING_CONFIRM: set(),
    C.PAIRING_RANDOM: {C.CONFIRM_VALUE_FAILED},
    C.PAIRING_PUBLIC_KEY: {C.DHKEY_CHECK_FAILED, C.AUTHENTICATION_REQUIREMENTS, C.CONFIRM_VALUE_FAILED},
    C.PAIRING_DHKEY_CHECK: {C.DHKEY_CHECK_FAILED},
    C.ENCRYPTION_INFORMATION: set(),
    C.CENTRAL_IDENTIFICATION: set(),
    C.IDENTITY_INFORMATION: set(),
    C.IDENTITY_ADDRESS_INFORMATION: {C.INVALID_PARAMETERS},
    C.SIGNING_INFORMATION: set(),
    C.SECURITY_REQUEST: {C.REPEATED_ATTEMPTS},
    C.KEYPRESS_NOTIFICATION: {C.INVALID_PARAMETERS},
}


# Finding F1 (the engine answered reserved opcodes with 0x07) is fixed: no longer tolerated.
TOLERATE_RESERVED_0X07 = False


class Verdict:
    """What one injected PDU got: `reason` = the Pairing Failed reason the engine sent (None: no
    Pairing Failed), `ignored` = no output at all, `failed` = the Failed outputs."""

    __slots__ = ("sent", "failed", "outs", "ignored")

    def __init__(self, outs):
        self.outs = outs
        self.sent = [o.pdu[1] for o in outs if type(o) is Send and len(o.pdu) == 2 and o.pdu[0] == C.PAIRING_FAILED]
        self.failed = [o for o in outs if type(o) is Failed]
        self.ignored = not outs

    @property
    def reason(self):
        return self.sent[0] if self.sent else None


def check_injection(data, role, busy_before, expected_op, outs, engine_after, deviations=None):
    """Assert the immediate answer to `data` injected into engine `role` follows the spec.
    busy_before: the engine was running a pairing procedure; expected_op: the opcode that engine
    would receive next in an undisturbed pairing (None: none). Returns a short category name.
    Tolerated deviations are counted in `deviations` (dict name -> n) instead of failing."""
    v = Verdict(outs)
    desc = "%s <- %s; busy=%s expected=%s; outputs=%r" % (role, P.describe(data), busy_before,
                                                         C.OPCODE_NAMES.get(expected_op, expected_op), outs)
    # Never more than one Pairing Failed, and every Pairing Failed we send ends the procedure.
    assert len(v.sent) <= 1, desc
    if v.sent and busy_before:
        assert not engine_after.busy, "sent Pairing Failed but still busy: " + desc
        assert any(f.reason == v.reason and f.local and f.cause == "sent" for f in v.failed), desc
    if not data:
        # No opcode at all: nothing to parse. Ignoring it (Zephyr) or failing with Invalid
        # Parameters are both acceptable; nothing else is.
        assert v.ignored or v.reason == C.INVALID_PARAMETERS, desc
        return "empty"
    op = data[0]
    if op not in P.FORMATS:
        # Core v5.2+ Vol 3 Part H 3.3: "If a packet is received with a Code that is reserved
        # for future use it shall be ignored" (Zephyr PR #30584; NimBLE's ble_sm_rx sends nothing).
        if v.ignored:
            return "reserved_ignored"
        if deviations is not None and TOLERATE_RESERVED_0X07:
            assert v.reason == C.COMMAND_NOT_SUPPORTED and len(outs) <= 2, desc
            deviations["reserved opcode answered 0x07 instead of ignored"] = deviations.get(
                "reserved opcode answered 0x07 instead of ignored", 0) + 1
            return "reserved_0x07"
        raise AssertionError("a reserved opcode must be ignored: " + desc)
    length_ok = len(data) == valid_length(op)
    if op == C.PAIRING_FAILED:
        # Never answered. While pairing: the procedure ends with the received reason.
        assert not v.sent, desc
        if busy_before:
            assert len(v.failed) == 1 and not v.failed[0].local and v.failed[0].cause == "received", desc
            if length_ok:
                assert v.failed[0].reason == data[1], desc
            assert not engine_after.busy, desc
        else:
            assert v.ignored, desc
        return "pairing_failed"
    if op not in ROLE_RX[role]:
        # A command this role never receives: Command Not Supported (NimBLE) / unexpected
        # (Zephyr: Unspecified Reason during pairing, ignored otherwise); a wrong length may be
        # reported first as Invalid Parameters.
        ok = {C.COMMAND_NOT_SUPPORTED, C.UNSPECIFIED_REASON} | (set() if length_ok else {C.INVALID_PARAMETERS})
        assert v.reason in ok or (not busy_before and v.ignored), desc
        if busy_before:
            assert v.reason is not None, desc
        return "wrong_role"
    if not length_ok:
        if busy_before:
            # Invalid Parameters "the command length is invalid" (Table 3.7); an implementation that
            # checks the state first (Zephyr) says Unspecified Reason for an unexpected command.
            allowed = {C.INVALID_PARAMETERS} if op == expected_op else {C.INVALID_PARAMETERS, C.UNSPECIFIED_REASON}
            if op == C.SECURITY_REQUEST:
                allowed = allowed | {None}
            assert v.reason in allowed, desc
        else:
            assert v.ignored or v.reason in (C.INVALID_PARAMETERS, C.UNSPECIFIED_REASON), desc
            assert not engine_after.busy, desc
        return "bad_length"
    # Right length, a command this role receives.
    if not busy_before:
        if op == C.PAIRING_REQUEST or op == C.SECURITY_REQUEST:
            # A new procedure from the peer: accepted, or refused with a content reason.
            assert v.reason is None or v.reason in CONTENT_REASONS[op], desc
            return "new_procedure"
        # Anything else outside a procedure: ignored (Zephyr), or Unspecified Reason (NimBLE);
        # either way the engine stays idle.
        assert v.ignored or v.reason == C.UNSPECIFIED_REASON, desc
        assert not engine_after.busy, desc
        return "idle_unexpected"
    if op == expected_op:
        assert v.reason is None or v.reason in CONTENT_REASONS[op], desc
        return "expected_content"
    if expected_op == "user":
        # The engine waits for its user or the link layer; a peer PDU may legitimately arrive
        # early (e.g. the initiator's confirm before the responder's user typed the passkey).
        assert v.reason is None or v.reason in CONTENT_REASONS[op] | {C.UNSPECIFIED_REASON}, desc
        return "early"
    if op == C.KEYPRESS_NOTIFICATION:
        # Allowed while passkey entry runs with the keypress bit negotiated; else unexpected.
        assert v.reason in (None, C.UNSPECIFIED_REASON, C.INVALID_PARAMETERS), desc
        return "keypress"
    if op == C.SECURITY_REQUEST:
        # A central may ignore a Security Request during pairing (NimBLE), or treat it as unexpected.
        assert v.reason in (None, C.UNSPECIFIED_REASON), desc
        return "security_request_busy"
    # A known, well-formed command the current state does not expect: Unspecified Reason.
    assert v.reason == C.UNSPECIFIED_REASON, desc
    return "unexpected"


CASES = [0]  # fuzz_case calls in this process (the figures printed at the end of a run)

MUST_DETECT = (C.PAIRING_CONFIRM, C.PAIRING_RANDOM, C.PAIRING_PUBLIC_KEY, C.PAIRING_DHKEY_CHECK)


def fuzz_case(scenario, step, role, data_list, replace=False, seed=0, deviations=None):
    """Drive `scenario` to `step`, inject the PDUs of data_list into engine `role` one after the
    other, check the answer to the first against the oracle (later ones: well-formed outputs,
    at most one Pairing Failed), let the pairing play out, check the end state, let the SMP timer
    expire, and check that a new pairing then succeeds. Returns the first PDU's category."""
    CASES[0] += 1
    trace = clean(scenario)
    d = Drive(scenario, seed=seed)
    d.start()
    for _ in range(min(step, len(trace))):
        if d.step() is None:
            break
    cat = None
    for i, data in enumerate(data_list):
        if callable(data):
            data = data(d, role)
        busy = d.engine[role].busy
        if i == 0:
            exp = expectation(trace, d.steps, role)
            outs = d.inject(role, data, replace=replace)
            cat = check_injection(data, role, busy, exp, outs, d.engine[role], deviations)
        else:
            outs = d.inject(role, data)
            assert len(Verdict(outs).sent) <= 1, outs
    d.run()
    general_checks(d)
    if replace and d.tampered in MUST_DETECT:
        # A MITM changed a confirm, random, public key or DHKey check in flight: authentication
        # must catch it; neither side may complete this pairing.
        assert not d.paired["central"] and not d.paired["peripheral"], (
            "pairing completed although a %s was altered in flight" % C.OPCODE_NAMES[d.tampered])
    d.expire()
    assert d.idle(), "an engine is still busy after the SMP timeout: %r" % (d.trace[-10:],)
    d.fresh_pairing_succeeds()
    assert d.both_paired() and d.consistent(), "no new pairing after fuzzing %s: %r" % (
        scenario, (d.failed, d.trace[-12:]))
    return cat


def general_checks(d):
    """State-independent properties of a disturbed run."""
    for role in ("central", "peripheral"):
        for r in d.sent_failures[role]:
            assert r in LEGAL_SENT, "%s sent Pairing Failed with reason 0x%02x" % (role, r)
        for f in d.failed[role]:
            if f.cause == "sent":
                assert f.reason in LEGAL_SENT, f
    if d.both_paired():
        assert d.consistent(), "both sides paired with different keys/methods: %r / %r" % (
            d.paired["central"], d.paired["peripheral"])
    for _ltk, _reply, ok, ks in d.encryptions:
        # never encrypt with a key shorter than either side's minimum
        if ok:
            assert ks >= max(d.cfg["central"].min_key_size, d.cfg["peripheral"].min_key_size), ks
