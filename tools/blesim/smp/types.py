"""Configuration, key records and the engine's output classes.

Every byte string here is MSB-first (the specification's printed order); EDIV and
Rand are ints. Output objects compare equal by class and fields, and print readably.
"""

from . import const as C


class _Record:
    __slots__ = ()

    def _fields(self):
        return tuple(getattr(self, n) for n in self.__slots__)

    def __eq__(self, other):
        return type(other) is type(self) and other._fields() == self._fields()

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash((type(self).__name__,) + tuple(_h(v) for v in self._fields()))

    def __repr__(self):
        items = ", ".join("%s=%s" % (n, _fmt(getattr(self, n))) for n in self.__slots__)
        return "%s(%s)" % (type(self).__name__, items)


def _h(v):
    return v if not isinstance(v, (list, dict, bytearray)) else repr(v)


def _fmt(v):
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    return repr(v)


# ---------------------------------------------------------------- configuration


class SmpConfig(_Record):
    """What one side offers and requires. Defaults match NimBLE under MicroPython
    after `ble.config(bond=True, mitm=False, io=3, le_secure=True)`.

    io_cap: 0 DisplayOnly, 1 DisplayYesNo, 2 KeyboardOnly, 3 NoInputNoOutput, 4 KeyboardDisplay.
    oob: None or an OobData. The OOB flag we send is "we have the peer's LESC OOB data"
        (oob.peer_r set) when sc=True, and "we have the OOB TK" (oob.tk set) when sc=False.
    bonding, mitm, sc, keypress, ct2: the AuthReq bits we set.
    max_key_size: the Maximum Encryption Key Size we offer (7..16).
    min_key_size: the smallest negotiated size we accept (else Pairing Failed 0x06).
    init_key_dist, resp_key_dist: key distribution bits we request/accept (ENC=1, ID=2, SIGN=4).
    sc_only: refuse legacy pairing (Pairing Failed 0x03).
    require_mitm: refuse an unauthenticated method (Pairing Failed 0x03). NimBLE does not.
    passkey: the passkey we display (int 0..999999); None = ask with PasskeyRequest(display=True),
        as NimBLE does (the application chooses it); "random" = draw one from rng.
    pairable: False answers every Pairing Request / Security Request with 0x05.
    allow_debug_key: False refuses a peer using the spec's LESC debug public key (Pairing Failed 0x03);
        True (NimBLE's behaviour) pairs, and PairingResult.debug says so.
    hold_pairing_request: peripheral only; True = stop after PairingRequestReceived until
        accept_pairing() is called. False = answer at once (PairingRequestReceived still comes
        first in the output list, before the Send of the Pairing Response).
    keys_without_bonding: False (the default) = no keys are requested, offered or exchanged
        unless both sides set the bonding flag. True = NimBLE's behaviour (ble_sm_pair_req_fill,
        ble_sm_pair_rsp_fill, ble_sm_pair_cfg): the key distribution fields carry the configured
        keys whatever the bonding flag, keys are exchanged as the Pairing Response says, and a
        legacy pairing that exchanges no key is not a bond.
    """

    __slots__ = (
        "io_cap", "oob", "bonding", "mitm", "sc", "keypress", "ct2", "max_key_size", "min_key_size",
        "init_key_dist", "resp_key_dist", "sc_only", "require_mitm", "passkey", "pairable",
        "hold_pairing_request", "allow_debug_key", "keys_without_bonding",
    )

    def __init__(self, io_cap=3, oob=None, bonding=True, mitm=False, sc=True, keypress=False, ct2=False,
                 max_key_size=16, min_key_size=7, init_key_dist=7, resp_key_dist=7, sc_only=False,
                 require_mitm=False, passkey=None, pairable=True, hold_pairing_request=False,
                 allow_debug_key=True, keys_without_bonding=False):
        if io_cap not in (0, 1, 2, 3, 4):
            raise ValueError("io_cap must be 0..4")
        if not 7 <= max_key_size <= 16:
            raise ValueError("max_key_size must be 7..16")
        if not 7 <= min_key_size <= 16:
            raise ValueError("min_key_size must be 7..16")
        if passkey is not None and passkey != "random" and not (isinstance(passkey, int) and 0 <= passkey <= 999999):
            raise ValueError("passkey must be None, 'random' or 0..999999")
        self.io_cap = io_cap
        self.oob = oob
        self.bonding = bool(bonding)
        self.mitm = bool(mitm)
        self.sc = bool(sc or sc_only)
        self.keypress = bool(keypress)
        self.ct2 = bool(ct2)
        self.max_key_size = max_key_size
        self.min_key_size = min_key_size
        self.init_key_dist = init_key_dist & 0x07
        self.resp_key_dist = resp_key_dist & 0x07
        self.sc_only = bool(sc_only)
        self.require_mitm = bool(require_mitm)
        self.passkey = passkey
        self.pairable = bool(pairable)
        self.hold_pairing_request = bool(hold_pairing_request)
        self.allow_debug_key = bool(allow_debug_key)
        self.keys_without_bonding = bool(keys_without_bonding)

    def auth_req(self):
        a = 0
        if self.bonding:
            a |= C.AUTH_BONDING
        if self.mitm:
            a |= C.AUTH_MITM
        if self.sc:
            a |= C.AUTH_SC
        if self.keypress:
            a |= C.AUTH_KEYPRESS
        if self.ct2:
            a |= C.AUTH_CT2
        return a


class OobData(_Record):
    """Out-of-band data.
    tk: legacy OOB Temporary Key (16 bytes), used when both sides set the OOB flag in legacy pairing.
    local_r: our LESC OOB random (16 bytes) that the peer received out of band (None: peer has nothing).
        Our confirm is f4(PKx, PKx, local_r, 0) (see SmpEngine.sc_oob_local).
    peer_r, peer_c: the peer's LESC OOB random and confirm we received (None: we have nothing).
    """

    __slots__ = ("tk", "local_r", "peer_r", "peer_c")

    def __init__(self, tk=None, local_r=None, peer_r=None, peer_c=None):
        for n, v in (("tk", tk), ("local_r", local_r), ("peer_r", peer_r), ("peer_c", peer_c)):
            if v is not None and len(v) != 16:
                raise ValueError(n + " must be 16 bytes")
        self.tk = None if tk is None else bytes(tk)
        self.local_r = None if local_r is None else bytes(local_r)
        self.peer_r = None if peer_r is None else bytes(peer_r)
        self.peer_c = None if peer_c is None else bytes(peer_c)


class Identity(_Record):
    """Our identity for key distribution: IRK (16 bytes), identity address (type 0/1, 6 bytes),
    CSRK (16 bytes, or None = a random one per pairing)."""

    __slots__ = ("irk", "addr_type", "addr", "csrk")

    def __init__(self, irk, addr_type, addr, csrk=None):
        if len(irk) != 16 or len(addr) != 6 or addr_type not in (0, 1):
            raise ValueError("identity: irk 16 bytes, addr_type 0/1, addr 6 bytes")
        self.irk = bytes(irk)
        self.addr_type = addr_type
        self.addr = bytes(addr)
        self.csrk = None if csrk is None else bytes(csrk)


class Keys(_Record):
    """Keys distributed by one side. ltk/irk/csrk: 16 bytes or None; ediv: int 0..65535;
    rand: int 0..2**64-1; identity: (addr_type, addr 6 bytes) or None.
    For LE Secure Connections both sides' ltk is the f5 LTK with ediv = rand = 0."""

    __slots__ = ("ltk", "ediv", "rand", "irk", "identity", "csrk")

    def __init__(self, ltk=None, ediv=0, rand=0, irk=None, identity=None, csrk=None):
        self.ltk = ltk
        self.ediv = ediv
        self.rand = rand
        self.irk = irk
        self.identity = identity
        self.csrk = csrk


class PairingResult(_Record):
    """The outcome of a successful pairing (field of Paired).
    method: "just_works" | "passkey" | "numeric_comparison" | "oob"; sc: LE Secure Connections;
    authenticated: MITM-protected method; key_size: negotiated size; bonded: both sides set Bonding;
    local: Keys we distributed (NimBLE's OUR_SEC); peer: Keys the peer distributed (PEER_SEC);
    stk: the key the link was encrypted with during this pairing (legacy STK or LESC LTK, masked);
    role: "central" | "peripheral"; initiator: True for the side that sent the Pairing Request;
    debug: the peer used the specification's LESC debug key pair (the link is not confidential:
    a bond made with it should not be stored, or not replace a real one)."""

    __slots__ = ("method", "sc", "authenticated", "key_size", "bonded", "local", "peer", "stk", "role", "initiator",
                 "debug")

    def __init__(self, method, sc, authenticated, key_size, bonded, local, peer, stk, role, initiator):
        self.method = method
        self.sc = sc
        self.authenticated = authenticated
        self.key_size = key_size
        self.bonded = bonded
        self.local = local
        self.peer = peer
        self.stk = stk
        self.role = role
        self.initiator = initiator
        self.debug = False

    @property
    def ltk(self):
        """The LTK this side will use to re-encrypt: LESC: the shared LTK. Legacy: central -> the
        peer's (peripheral's) LTK; peripheral -> its own distributed LTK."""
        if self.sc:
            return self.local.ltk
        return self.peer.ltk if self.role == "central" else self.local.ltk


# ---------------------------------------------------------------- outputs


class Send(_Record):
    """Send this SMP PDU (bytes, opcode first, on-air order) on the SMP channel (CID 6)."""

    __slots__ = ("pdu",)

    def __init__(self, pdu):
        self.pdu = pdu


class StartEncryption(_Record):
    """Central: ask the link layer to encrypt (HCI LE Enable Encryption) with this key.
    ltk 16 bytes MSB-first (already masked to key_size); ediv int; rand int."""

    __slots__ = ("ltk", "ediv", "rand", "key_size")

    def __init__(self, ltk, ediv, rand, key_size):
        self.ltk = ltk
        self.ediv = ediv
        self.rand = rand
        self.key_size = key_size


class LtkReply(_Record):
    """Peripheral: answer the controller's LE LTK Request with this key (None = negative reply /
    not the engine's business: consult the bond store). key_size is the size to report."""

    __slots__ = ("ltk", "key_size")

    def __init__(self, ltk, key_size=16):
        self.ltk = ltk
        self.key_size = key_size


class DisplayPasskey(_Record):
    """Show this 6-digit passkey to the user (int 0..999999)."""

    __slots__ = ("passkey",)

    def __init__(self, passkey):
        self.passkey = passkey


class PasskeyRequest(_Record):
    """The engine needs a passkey: call passkey(value or None, now).
    display=False: the user types the number shown on the peer (NimBLE action 2, INPUT).
    display=True: choose the number this side displays (NimBLE action 3, DISPLAY, passkey 0)."""

    __slots__ = ("display",)

    def __init__(self, display=False):
        self.display = display


class NumericComparison(_Record):
    """Show this 6-digit number and ask yes/no: call confirm(accept, now) (NimBLE action 4)."""

    __slots__ = ("number",)

    def __init__(self, number):
        self.number = number


class Keypress(_Record):
    """The peer sent a Keypress Notification (type 0..4)."""

    __slots__ = ("type",)

    def __init__(self, type):  # noqa: A002 (the spec's name)
        self.type = type


class SecurityRequestReceived(_Record):
    """Central: the peripheral sent a Security Request with this AuthReq. The engine does nothing
    more: call pair(now), encrypt(...) with a stored key, or fail(reason, now)."""

    __slots__ = ("auth_req", "bonding", "mitm", "sc")

    def __init__(self, auth_req):
        self.auth_req = auth_req
        self.bonding = bool(auth_req & C.AUTH_BONDING)
        self.mitm = bool(auth_req & C.AUTH_MITM)
        self.sc = bool(auth_req & C.AUTH_SC)


class PairingRequestReceived(_Record):
    """Peripheral: a valid Pairing Request arrived (fields decoded). Comes before the engine's
    answer in the same output list; with config.hold_pairing_request the engine waits for
    accept_pairing(accept, now)."""

    __slots__ = ("io_cap", "oob", "auth_req", "max_key_size", "init_key_dist", "resp_key_dist",
                 "bonding", "mitm", "sc")

    def __init__(self, io_cap, oob, auth_req, max_key_size, init_key_dist, resp_key_dist):
        self.io_cap = io_cap
        self.oob = oob
        self.auth_req = auth_req
        self.max_key_size = max_key_size
        self.init_key_dist = init_key_dist
        self.resp_key_dist = resp_key_dist
        self.bonding = bool(auth_req & C.AUTH_BONDING)
        self.mitm = bool(auth_req & C.AUTH_MITM)
        self.sc = bool(auth_req & C.AUTH_SC)


class Paired(_Record):
    """Pairing (and key distribution) completed. result: PairingResult."""

    __slots__ = ("result",)

    def __init__(self, result):
        self.result = result


class Failed(_Record):
    """Pairing ended without success.
    reason: the Pairing Failed reason (int), or None for a timeout / link loss.
    local: True if this side detected it (we sent Pairing Failed, timed out, ...), False if the
        peer sent Pairing Failed.
    cause: "sent" | "received" | "timeout" | "link_lost" | "encryption_failed" | "blocked"
        ("blocked": pair() refused locally by the Repeated Attempts interval; nothing was sent)."""

    __slots__ = ("reason", "local", "cause")

    def __init__(self, reason, local, cause):
        self.reason = reason
        self.local = local
        self.cause = cause

    def __repr__(self):
        return "Failed(reason=%s %s, local=%r, cause=%r)" % (
            "None" if self.reason is None else "0x%02x" % self.reason, C.reason_name(self.reason), self.local,
            self.cause)
