"""The SMP engine: one object per connection, sans-IO (see the package docstring for the API).

Received PDUs are checked against `pdu.LENGTHS[op]`, the exact length of each opcode, then
dispatched through `_WAITS[wait][op]`: the handler the engine's current wait accepts (the state
machine as a table; each handler sets the next wait). A reserved opcode is ignored (Core v5.2+
Vol 3 Part H 3.3; NimBLE sends nothing either), a wrong length is answered with Invalid
Parameters (0x0A), an opcode this role never receives with Command Not Supported (0x07), and an
opcode the current wait does not accept with Unspecified Reason (0x08), all before any handler
runs. Handlers run under a catch-all that turns any internal error into Pairing Failed 0x08.
"""

import os

from cryptography.hazmat.primitives.asymmetric import ec

from blesmp import crypto

from . import const as C
from . import pdu as P
from .attempts import RepeatedAttempts
from .methods import select
from .types import (
    DisplayPasskey,
    Failed,
    Keypress,
    Keys,
    LtkReply,
    NumericComparison,
    Paired,
    PairingRequestReceived,
    PairingResult,
    PasskeyRequest,
    SecurityRequestReceived,
    Send,
    StartEncryption,
)

_ZERO16 = bytes(16)
# the P-256 debug key pair's public key (Vol 3 Part H 2.3.5.6.1): a link keyed with it is readable by anyone
_DEBUG_X = bytes.fromhex("20b003d2f297be2c5e2c83a7e9f9a5b9eff49111acf4fddbcc0301480e359de6")
_DEBUG_Y = bytes.fromhex("dc809c49652aeb6d63329abf5a52155c766345c28fed3024741c8ed01589d28b")
_CURVE = ec.SECP256R1()
_AUTH_FAILURES = (C.PASSKEY_ENTRY_FAILED, C.CONFIRM_VALUE_FAILED, C.DHKEY_CHECK_FAILED, C.NUMERIC_COMPARISON_FAILED)

# phases
_IDLE = 0
_SEC_REQ = 1  # peripheral sent a Security Request, waiting for a Pairing Request
_WAIT_RSP = 2  # central sent a Pairing Request
_HELD = 3  # peripheral holds a Pairing Request for accept_pairing()
_PAIRING = 4  # phase 2 (authentication) running
_ENCRYPT = 5  # waiting for the link to be encrypted with the STK/LTK
_KEYDIST = 6  # phase 3
_DEAD = 7  # SMP timeout or link lost: no more SMP on this link

# waits: the PDU the engine needs next (_WAITS below says which opcodes each accepts)
_W_NOTHING = 0  # a local step: the user, a held Pairing Request, the encryption
_W_SECURITY_REQUEST = 1  # central at rest
_W_PAIRING_REQUEST = 2  # peripheral at rest, or after its Security Request
_W_PAIRING_RESPONSE = 3
_W_PUBLIC_KEY = 4
_W_CONFIRM = 5
_W_RANDOM = 6
_W_DHKEY_CHECK = 7

# the opcodes each role may receive (others: Command Not Supported)
_RX_CENTRAL = frozenset(range(0x02, 0x0F))
_RX_PERIPHERAL = frozenset(op for op in range(0x01, 0x0F) if op not in (0x02, 0x0B))

# key distribution PDUs in their mandatory order, by key bit
_KEY_PDUS = (
    (C.KEY_ENC, (C.ENCRYPTION_INFORMATION, C.CENTRAL_IDENTIFICATION)),
    (C.KEY_ID, (C.IDENTITY_INFORMATION, C.IDENTITY_ADDRESS_INFORMATION)),
    (C.KEY_SIGN, (C.SIGNING_INFORMATION,)),
)


def _mask(key, size):
    """Encryption key size reduction: keep the `size` least significant octets."""
    if size >= 16:
        return key
    return bytes(16 - size) + key[16 - size :]


def _u128(n):
    return n.to_bytes(16, "big")


class _Abort(Exception):
    """Raised inside a handler: fail the pairing with this reason."""

    def __init__(self, reason):
        Exception.__init__(self, reason)
        self.reason = reason


class SmpEngine:
    __slots__ = (
        "role", "central", "config", "local_addr", "peer_addr", "identity", "rng", "attempts", "_ecc",
        "_phase", "_wait", "_deadline", "encrypted", "key_size", "_out", "_dead_cause",
        # negotiation
        "_preq", "_pres", "_sc", "_method", "_pk_roles", "_ks", "_bonded", "_init_kd", "_resp_kd",
        "_keypress",
        # legacy / SC secrets
        "_tk", "_passkey", "_need_passkey", "_typing", "_our_rand", "_peer_rand", "_peer_confirm", "_our_confirm",
        "_pk_round", "_pub", "_peer_pub", "_dhkey", "_mackey", "_ltk", "_stk", "_ra", "_rb",
        "_nc_state", "_peer_check",
        # key distribution
        "_local_keys", "_peer_keys", "_rx_keys",
    )

    def __init__(self, role, config, local_addr, peer_addr, identity=None, rng=os.urandom, attempts=None,
                 ecc_key=None):
        if role not in ("central", "peripheral"):
            raise ValueError("role must be 'central' or 'peripheral'")
        for name, a in (("local_addr", local_addr), ("peer_addr", peer_addr)):
            if len(a) != 2 or a[0] not in (0, 1) or len(a[1]) != 6:
                raise ValueError(name + " must be (type 0/1, 6 bytes)")
        self.role = role
        self.central = role == "central"
        self._phase = _IDLE
        self.config = config
        self.local_addr = (local_addr[0], bytes(local_addr[1]))
        self.peer_addr = (peer_addr[0], bytes(peer_addr[1]))
        self.identity = identity
        self.rng = rng
        self.attempts = attempts if attempts is not None else RepeatedAttempts()
        self._ecc = ecc_key
        self._pub = None
        self.encrypted = False
        self.key_size = 0
        self._deadline = None
        self._out = []
        self._dead_cause = None
        self._reset(_IDLE)

    # ------------------------------------------------------------ helpers

    @staticmethod
    def generate_key():
        """A fresh P-256 private key (cryptography object) for the ecc_key argument."""
        return ec.generate_private_key(_CURVE)

    @staticmethod
    def public_key_bytes(ecc_key):
        """(x, y), 32 bytes each MSB-first, of a P-256 private key."""
        n = ecc_key.public_key().public_numbers()
        return n.x.to_bytes(32, "big"), n.y.to_bytes(32, "big")

    @staticmethod
    def sc_oob_local(ecc_key, r):
        """LE SC OOB data of this device for key ecc_key and random r (16 bytes): returns (r, c),
        c = f4(PKx, PKx, r, 0). Give (r, c) to the peer out of band; keep r as OobData.local_r."""
        x = SmpEngine.public_key_bytes(ecc_key)[0]
        return bytes(r), crypto.f4(x, x, bytes(r), 0)

    def _reset(self, phase):
        self._phase = phase
        self._wait = _W_NOTHING
        self._preq = self._pres = None
        self._sc = False
        self._method = None
        self._pk_roles = None
        self._ks = 16
        self._bonded = False
        self._init_kd = self._resp_kd = 0
        self._keypress = False
        self._tk = None
        self._passkey = None
        self._need_passkey = False
        self._typing = False
        self._our_rand = self._peer_rand = self._peer_confirm = self._our_confirm = None
        self._pk_round = 0
        self._peer_pub = None
        self._dhkey = self._mackey = self._ltk = self._stk = None
        self._ra = self._rb = _ZERO16
        self._nc_state = 0  # 0 n/a, 1 waiting for the user, 2 accepted
        self._peer_check = None
        self._local_keys = self._peer_keys = None
        self._rx_keys = []
        if phase == _IDLE:
            self._wait = _W_SECURITY_REQUEST if self.central else _W_PAIRING_REQUEST
        if phase in (_IDLE, _DEAD):
            self._deadline = None

    @property
    def deadline(self):
        return self._deadline

    @property
    def busy(self):
        return self._phase not in (_IDLE, _DEAD)

    @property
    def dead(self):
        return self._phase == _DEAD

    @property
    def authenticated(self):
        """The pairing in progress uses a MITM-protected method (known once the method is chosen)."""
        return self.busy and self._method is not None and self._method != C.JUST_WORKS

    def expects(self, op):
        """Whether the current state waits for opcode `op`. A firmware model that ignores the
        other PDUs, as esp-nimble does, asks this before `receive`."""
        return op in _WAITS[self._wait]

    def _send(self, pdu, now):
        self._out.append(Send(pdu))
        if self._phase not in (_IDLE, _DEAD):
            self._deadline = now + C.TIMEOUT

    def _emit(self, ev):
        self._out.append(ev)

    def _take(self):
        out = self._out
        self._out = []
        return out

    def _failed(self, reason, cause, now):
        """End the procedure (the Pairing Failed PDU, if any, is already queued)."""
        if reason in _AUTH_FAILURES:
            self.attempts.failed(self.peer_addr, now)
        self._emit(Failed(reason, cause != "received", cause))
        self._reset(_IDLE)

    def _abort(self, reason, now):
        self._out.append(Send(P.pairing_failed(reason)))
        if self._phase in (_IDLE, _DEAD):
            return
        self._failed(reason, "sent", now)

    def _expired(self, now):
        if self._deadline is not None and now >= self._deadline and self._phase not in (_IDLE, _DEAD):
            self._emit(Failed(None, True, "timeout"))
            self._reset(_DEAD)
            self._dead_cause = "timeout"
            return True
        return self._phase == _DEAD

    def _guard(self, fn, now, *args):
        """Run a step; any _Abort or internal error becomes Pairing Failed, never an exception."""
        if self._expired(now):
            return self._take()
        try:
            fn(now, *args)
        except _Abort as e:
            self._abort(e.reason, now)
        except Exception:  # noqa: BLE001 (no exception may escape the engine)
            self._abort(C.UNSPECIFIED_REASON, now)
        return self._take()

    # ------------------------------------------------------------ public calls

    def tick(self, now):
        self._expired(now)
        return self._take()

    def link_lost(self, now):
        if self._phase not in (_IDLE, _DEAD):
            self._emit(Failed(None, True, "link_lost"))
        self._reset(_DEAD)
        self._dead_cause = self._dead_cause or "link_lost"
        self.encrypted = False
        return self._take()

    def pair(self, now):
        if self._phase == _DEAD:
            return [Failed(None, True, self._dead_cause)]
        return self._guard(self._pair, now)

    def _pair(self, now):
        cfg = self.config
        if self.central:
            if self._phase != _IDLE:
                return
            if self.attempts.blocked(self.peer_addr, now):
                self._emit(Failed(C.REPEATED_ATTEMPTS, True, "blocked"))
                return
            init_kd, resp_kd = self._our_dist(cfg.init_key_dist), cfg.resp_key_dist
            if not cfg.bonding and not cfg.keys_without_bonding:
                init_kd = resp_kd = 0
            self._preq = P.pairing_request(cfg.io_cap, self._oob_flag(), cfg.auth_req(), cfg.max_key_size,
                                           init_kd, resp_kd)
            self._phase = _WAIT_RSP
            self._wait = _W_PAIRING_RESPONSE
            self._send(self._preq, now)
        else:
            if self._phase not in (_IDLE, _SEC_REQ):
                return
            self._phase = _SEC_REQ
            self._wait = _W_PAIRING_REQUEST
            self._send(P.security_request(cfg.auth_req()), now)

    def fail(self, reason, now):
        if self._phase == _DEAD:
            return []
        self._abort(reason, now)
        return self._take()

    def accept_pairing(self, accept, now, reason=C.PAIRING_NOT_SUPPORTED):
        if self._phase != _HELD:
            return []
        if not accept:
            return self._guard(self._refuse, now, reason)
        return self._guard(self._answer_request, now)

    def _refuse(self, now, reason):
        raise _Abort(reason)

    def passkey(self, value, now):
        if value is not None and not (isinstance(value, int) and 0 <= value <= 999999):
            raise ValueError("passkey must be 0..999999 or None")
        return self._guard(self._passkey_in, now, value)

    def confirm(self, accept, now):
        return self._guard(self._confirm_in, now, accept)

    def keypress(self, kind, now):
        if not (self._keypress and self._typing and 0 <= kind <= 4) or self._phase != _PAIRING:
            return []
        self._send(P.keypress(kind), now)
        return self._take()

    def encrypt(self, ltk, ediv, rand, key_size, now):
        """Central: re-encrypt with a stored key (no pairing procedure)."""
        if not self.central or self._phase != _IDLE:
            return []  # only a central, and not in the middle of a pairing
        return [StartEncryption(_mask(bytes(ltk), key_size), ediv, rand, key_size)]

    def ltk_request(self, ediv, rand, now):
        if self._expired(now):
            return self._take() + [LtkReply(None)]
        if self.central or self._phase != _ENCRYPT or ediv or rand:
            return [LtkReply(None)]
        return [LtkReply(self._stk, self._ks)]

    def encryption_changed(self, ok, key_size, now):
        if self._expired(now):
            return self._take()
        self.encrypted = bool(ok)
        self.key_size = key_size if ok else 0
        if self._phase == _SEC_REQ and ok:
            self._reset(_IDLE)  # the central answered our Security Request by encrypting with a bond
            return []
        if self._phase != _ENCRYPT:
            return []
        if not ok:
            self._failed(None, "encryption_failed", now)
            return self._take()
        return self._guard(self._start_key_dist, now)

    def receive(self, pdu, now):
        if self._expired(now):
            return self._take()
        if not pdu:
            return []  # no opcode: nothing to answer (as Zephyr does)
        op = pdu[0]
        length = P.LENGTHS[op]  # 0: a reserved opcode
        if not length:
            return []  # reserved opcode: "shall be ignored" (Vol 3 Part H 3.3, Core v5.2+)
        if len(pdu) != length:
            if op == C.PAIRING_FAILED:  # never answer a Pairing Failed, even a malformed one
                if self._phase not in (_IDLE, _DEAD):
                    self._failed(C.UNSPECIFIED_REASON, "received", now)
                return self._take()
            self._abort(C.INVALID_PARAMETERS, now)
            return self._take()
        if op not in (_RX_CENTRAL if self.central else _RX_PERIPHERAL):
            self._abort(C.COMMAND_NOT_SUPPORTED, now)
            return self._take()
        if op == C.PAIRING_FAILED:
            if self._phase not in (_IDLE, _DEAD):
                self._failed(pdu[1], "received", now)
            return self._take()
        handler = _WAITS[self._wait].get(op)
        if handler is None:
            if op == C.SECURITY_REQUEST and self._phase != _IDLE:
                return []  # a central may ignore a Security Request while it is busy
            if op == C.KEYPRESS_NOTIFICATION and self._phase == _PAIRING and self._keypress:
                self._deadline = now + C.TIMEOUT
                return self._guard(_KEYPRESS, now, self, pdu)
            if self._phase == _IDLE:
                return []  # no procedure: a straggler of one that ended (e.g. after Pairing Failed)
            self._abort(C.UNSPECIFIED_REASON, now)
            return self._take()
        if self._phase not in (_IDLE, _DEAD):
            self._deadline = now + C.TIMEOUT
        return self._guard(handler, now, self, pdu)

    # ------------------------------------------------------------ negotiation

    def _oob_flag(self):
        oob = self.config.oob
        if oob is None:
            return 0
        if self.config.sc:  # LE SC: "we have the peer's OOB data"
            return 1 if oob.peer_r is not None else 0
        return 1 if oob.tk is not None else 0  # legacy: "we have the OOB TK"

    def _our_dist(self, bits):
        """The key distribution bits we can actually send."""
        if self.identity is None:
            bits &= ~C.KEY_ID
        return bits & 0x07

    def _check_fields(self, io_cap, oob, max_ks):
        if io_cap > 4 or oob > 1:
            raise _Abort(C.INVALID_PARAMETERS)
        if not 7 <= max_ks <= 16:
            raise _Abort(C.ENCRYPTION_KEY_SIZE)

    def _rx_pairing_request(self, now, pdu):
        cfg = self.config
        self._phase = _HELD
        self._wait = _W_NOTHING
        self._deadline = now + C.TIMEOUT
        self._check_fields(pdu[1], pdu[2], pdu[4])
        if not cfg.pairable:
            raise _Abort(C.PAIRING_NOT_SUPPORTED)
        if self.attempts.blocked(self.peer_addr, now):
            raise _Abort(C.REPEATED_ATTEMPTS)
        self._preq = bytes(pdu)
        self._emit(PairingRequestReceived(pdu[1], pdu[2], pdu[3], pdu[4], pdu[5], pdu[6]))
        if not cfg.hold_pairing_request:
            self._answer_request(now)

    def _answer_request(self, now):
        cfg = self.config
        req = self._preq
        bonding = cfg.bonding and bool(req[3] & C.AUTH_BONDING)
        if bonding or cfg.keys_without_bonding:
            init_kd = req[5] & cfg.init_key_dist
            resp_kd = req[6] & self._our_dist(cfg.resp_key_dist)
        else:
            init_kd = resp_kd = 0
        self._pres = P.pairing_response(cfg.io_cap, self._oob_flag(), cfg.auth_req(), cfg.max_key_size,
                                        init_kd, resp_kd)
        self._negotiate()
        self._phase = _PAIRING
        self._send(self._pres, now)
        self._begin(now)

    def _rx_pairing_response(self, now, pdu):
        self._check_fields(pdu[1], pdu[2], pdu[4])
        req = self._preq
        if pdu[5] & ~req[5] & 0x0F or pdu[6] & ~req[6] & 0x0F:
            raise _Abort(C.INVALID_PARAMETERS)
        self._pres = bytes(pdu)
        self._wait = _W_NOTHING
        self._negotiate()
        self._phase = _PAIRING
        self._begin(now)

    def _negotiate(self):
        cfg = self.config
        req, rsp = self._preq, self._pres
        self._sc = bool(req[3] & rsp[3] & C.AUTH_SC)
        if cfg.sc_only and not self._sc:
            raise _Abort(C.AUTHENTICATION_REQUIREMENTS)
        self._ks = min(req[4], rsp[4])
        if self._ks < cfg.min_key_size:
            raise _Abort(C.ENCRYPTION_KEY_SIZE)
        self._bonded = bool(req[3] & rsp[3] & C.AUTH_BONDING)
        self._init_kd = rsp[5] & 0x07
        self._resp_kd = rsp[6] & 0x07
        if cfg.keys_without_bonding:
            if not self._sc and not (self._init_kd or self._resp_kd):
                self._bonded = False  # ble_sm_pair_cfg: a legacy bond needs at least one key
        elif not self._bonded:
            self._init_kd = self._resp_kd = 0
        self._method, self._pk_roles = select(
            self._sc, req[1], rsp[1], req[2], rsp[2], bool(req[3] & C.AUTH_MITM), bool(rsp[3] & C.AUTH_MITM))
        if cfg.require_mitm and self._method == C.JUST_WORKS:
            raise _Abort(C.AUTHENTICATION_REQUIREMENTS)
        self._keypress = bool(req[3] & rsp[3] & C.AUTH_KEYPRESS)
        if self._method == C.OOB:
            self._setup_oob()

    def _setup_oob(self):
        oob = self.config.oob
        req, rsp = self._preq, self._pres
        peer_flag = (rsp if self.central else req)[2]
        our_flag = (req if self.central else rsp)[2]
        if not self._sc:
            if oob is None or oob.tk is None:
                raise _Abort(C.OOB_NOT_AVAILABLE)
            self._tk = oob.tk
            return
        # LE SC: our r counts if the peer has our data (its flag), the peer's if we have its data
        ours = _ZERO16
        theirs = _ZERO16
        if peer_flag:
            if oob is None or oob.local_r is None:
                raise _Abort(C.OOB_NOT_AVAILABLE)
            ours = oob.local_r
        if our_flag:
            theirs = oob.peer_r
        if self.central:
            self._ra, self._rb = ours, theirs
        else:
            self._ra, self._rb = theirs, ours

    def _begin(self, now):
        """Phase 2 starts (both sides know the Pairing Request and Response)."""
        if self._method == C.PASSKEY:
            roles = self._pk_roles
            we_display = (roles == C.INIT_DISPLAYS) == self.central and roles != C.BOTH_INPUT
            if we_display:
                p = self.config.passkey
                if p == "random":
                    p = int.from_bytes(self.rng(4), "big") % 1000000
                if p is None:
                    self._need_passkey = True
                    self._emit(PasskeyRequest(True))
                else:
                    self._set_passkey(p)
            else:
                self._need_passkey = True
                self._typing = True
                self._emit(PasskeyRequest(False))
        elif self._method == C.JUST_WORKS and not self._sc:
            self._tk = _ZERO16
        if self._sc:
            self._wait = _W_PUBLIC_KEY
            if self.central:
                self._send_public_key(now)
        else:
            if self.central:
                self._legacy_send_confirm(now)
            else:
                self._wait = _W_CONFIRM

    def _set_passkey(self, value):
        self._passkey = value
        self._need_passkey = False
        self._typing = False
        if self._sc:
            self._ra = self._rb = _u128(value)
        else:
            self._tk = _u128(value)
        if (self._pk_roles == C.INIT_DISPLAYS) == self.central and self._pk_roles != C.BOTH_INPUT:
            self._emit(DisplayPasskey(value))

    def _passkey_in(self, now, value):
        if self._phase != _PAIRING or not self._need_passkey:
            return
        if value is None:
            raise _Abort(C.PASSKEY_ENTRY_FAILED)
        self._set_passkey(value)
        if self._sc:
            if self._dhkey is not None:
                if self.central and self._pk_round == 0 and self._our_confirm is None:
                    self._sc_passkey_send_confirm(now)
                elif not self.central and self._peer_confirm is not None and self._our_confirm is None:
                    self._sc_passkey_answer_confirm(now)
        else:
            if self.central:
                self._legacy_send_confirm(now)
            elif self._peer_confirm is not None:
                self._legacy_answer_confirm(now)

    def _confirm_in(self, now, accept):
        if self._phase != _PAIRING or self._nc_state != 1:
            return
        if not accept:
            raise _Abort(C.NUMERIC_COMPARISON_FAILED)
        self._nc_state = 2
        if self.central:
            self._send_dhkey_check(now)
        elif self._peer_check is not None:
            self._answer_dhkey_check(now)

    # ------------------------------------------------------------ legacy pairing

    def _c1(self, r):
        ia, ra = (self.local_addr, self.peer_addr) if self.central else (self.peer_addr, self.local_addr)
        return crypto.c1(self._tk, r, self._preq[::-1], self._pres[::-1], ia[0], ra[0], ia[1], ra[1])

    def _legacy_send_confirm(self, now):
        if self._tk is None:
            return
        self._our_rand = self.rng(16)
        self._our_confirm = self._c1(self._our_rand)
        self._wait = _W_CONFIRM
        self._send(P.value16(C.PAIRING_CONFIRM, self._our_confirm), now)

    def _legacy_answer_confirm(self, now):
        if self._tk is None:
            return
        self._our_rand = self.rng(16)
        self._our_confirm = self._c1(self._our_rand)
        self._wait = _W_RANDOM
        self._send(P.value16(C.PAIRING_CONFIRM, self._our_confirm), now)

    # ------------------------------------------------------------ LE Secure Connections

    def _ensure_key(self):
        if self._ecc is None:
            self._ecc = ec.generate_private_key(_CURVE)
        if self._pub is None:
            self._pub = self.public_key_bytes(self._ecc)

    def _send_public_key(self, now):
        self._ensure_key()
        self._send(P.public_key(self._pub[0], self._pub[1]), now)

    def _pk(self):
        """(PKax, PKbx): initiator's and responder's X coordinates."""
        if self.central:
            return self._pub[0], self._peer_pub[0]
        return self._peer_pub[0], self._pub[0]

    def _rx_public_key(self, now, pdu):
        x = bytes(pdu[32:0:-1])
        y = bytes(pdu[64:32:-1])
        self._ensure_key()
        if x == self._pub[0]:
            raise _Abort(C.AUTHENTICATION_REQUIREMENTS)  # our own key reflected (CVE-2020-26558)
        if x == _DEBUG_X and y == _DEBUG_Y and not self.config.allow_debug_key:
            raise _Abort(C.AUTHENTICATION_REQUIREMENTS)  # the spec's debug key pair: anyone can decrypt
        try:
            peer = ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, b"\x04" + x + y)
            self._dhkey = self._ecc.exchange(ec.ECDH(), peer)
        except Exception:  # noqa: BLE001 (not a point on P-256)
            raise _Abort(C.DHKEY_CHECK_FAILED) from None
        self._peer_pub = (x, y)
        if not self.central:
            self._send_public_key(now)
        method = self._method
        if method == C.OOB:
            oob = self.config.oob
            our_flag = (self._preq if self.central else self._pres)[2]
            if our_flag:
                if crypto.f4(x, x, oob.peer_r, 0) != oob.peer_c:
                    raise _Abort(C.CONFIRM_VALUE_FAILED)
            if self.central:
                self._our_rand = self.rng(16)
                self._wait = _W_RANDOM
                self._send(P.value16(C.PAIRING_RANDOM, self._our_rand), now)
            else:
                self._wait = _W_RANDOM
        elif method == C.PASSKEY:
            self._wait = _W_CONFIRM
            if self.central and self._passkey is not None:
                self._sc_passkey_send_confirm(now)
        else:  # Just Works / Numeric Comparison
            if self.central:
                self._wait = _W_CONFIRM
            else:
                self._our_rand = self.rng(16)
                pka, pkb = self._pk()
                self._our_confirm = crypto.f4(pkb, pka, self._our_rand, 0)
                self._wait = _W_RANDOM
                self._send(P.value16(C.PAIRING_CONFIRM, self._our_confirm), now)

    def _z(self):
        return 0x80 | ((self._passkey >> self._pk_round) & 1)

    def _sc_passkey_send_confirm(self, now):
        pka, pkb = self._pk()
        self._our_rand = self.rng(16)
        self._our_confirm = crypto.f4(pka, pkb, self._our_rand, self._z())
        self._wait = _W_CONFIRM
        self._send(P.value16(C.PAIRING_CONFIRM, self._our_confirm), now)

    def _sc_passkey_answer_confirm(self, now):
        pka, pkb = self._pk()
        self._our_rand = self.rng(16)
        self._our_confirm = crypto.f4(pkb, pka, self._our_rand, self._z())
        self._wait = _W_RANDOM
        self._send(P.value16(C.PAIRING_CONFIRM, self._our_confirm), now)

    def _rx_confirm(self, now, pdu):
        self._peer_confirm = bytes(pdu[16:0:-1])
        if not self._sc:
            if self.central:  # Sconfirm: reveal Mrand
                self._wait = _W_RANDOM
                self._send(P.value16(C.PAIRING_RANDOM, self._our_rand), now)
            else:
                self._wait = _W_NOTHING
                self._legacy_answer_confirm(now)
            return
        if self._method == C.PASSKEY:
            if self.central:
                self._wait = _W_RANDOM
                self._send(P.value16(C.PAIRING_RANDOM, self._our_rand), now)
            else:
                self._wait = _W_NOTHING
                if self._passkey is not None:
                    self._sc_passkey_answer_confirm(now)
            return
        # JW / NC: the responder's Cb; the initiator now reveals Na
        self._our_rand = self.rng(16)
        self._wait = _W_RANDOM
        self._send(P.value16(C.PAIRING_RANDOM, self._our_rand), now)

    def _rx_random(self, now, pdu):
        r = bytes(pdu[16:0:-1])
        self._peer_rand = r
        if not self._sc:
            self._legacy_random(now, r)
            return
        pka, pkb = self._pk()
        method = self._method
        if method == C.PASSKEY:
            z = self._z()
            if self.central:
                if not self._confirmed(crypto.f4(pkb, pka, r, z)):
                    raise _Abort(C.CONFIRM_VALUE_FAILED)
                self._pk_round += 1
                if self._pk_round < 20:
                    self._peer_confirm = None
                    self._sc_passkey_send_confirm(now)
                else:
                    self._send_dhkey_check(now)
            else:
                if not self._confirmed(crypto.f4(pka, pkb, r, z)):
                    raise _Abort(C.CONFIRM_VALUE_FAILED)
                self._send(P.value16(C.PAIRING_RANDOM, self._our_rand), now)
                self._pk_round += 1
                self._peer_confirm = None
                self._wait = _W_CONFIRM if self._pk_round < 20 else _W_DHKEY_CHECK
            return
        if self.central:
            if method != C.OOB and not self._confirmed(crypto.f4(pkb, pka, r, 0)):
                raise _Abort(C.CONFIRM_VALUE_FAILED)
            if method == C.NUMERIC_COMPARISON:
                self._nc_state = 1
                self._emit(NumericComparison(crypto.g2(pka, pkb, self._our_rand, r) % 1000000))
                self._wait = _W_NOTHING
                return
            self._send_dhkey_check(now)
        else:
            if method == C.OOB:
                self._our_rand = self.rng(16)
            self._send(P.value16(C.PAIRING_RANDOM, self._our_rand), now)
            self._wait = _W_DHKEY_CHECK
            if method == C.NUMERIC_COMPARISON:
                self._nc_state = 1
                self._emit(NumericComparison(crypto.g2(pka, pkb, r, self._our_rand) % 1000000))

    def _confirmed(self, value):
        # Constant-time, like the DHKey checks: no timing hint about the confirm.
        return self._peer_confirm is not None and crypto.ct_eq(value, self._peer_confirm, 16)

    def _legacy_random(self, now, r):
        if not self._confirmed(self._c1(r)):
            raise _Abort(C.CONFIRM_VALUE_FAILED)
        if self.central:
            self._stk = _mask(crypto.s1(self._tk, r, self._our_rand), self._ks)
            self._phase = _ENCRYPT
            self._wait = _W_NOTHING
            self._emit(StartEncryption(self._stk, 0, 0, self._ks))
        else:
            self._stk = _mask(crypto.s1(self._tk, self._our_rand, r), self._ks)
            self._send(P.value16(C.PAIRING_RANDOM, self._our_rand), now)
            self._phase = _ENCRYPT
            self._wait = _W_NOTHING

    def _stage2_values(self):
        na, nb = (self._our_rand, self._peer_rand) if self.central else (self._peer_rand, self._our_rand)
        a, b = (self.local_addr, self.peer_addr) if self.central else (self.peer_addr, self.local_addr)
        a = bytes((a[0],)) + a[1]
        b = bytes((b[0],)) + b[1]
        if self._mackey is None:
            self._mackey, self._ltk = crypto.f5(self._dhkey, na, nb, a, b)
        io_a = bytes((self._preq[3], self._preq[2], self._preq[1]))
        io_b = bytes((self._pres[3], self._pres[2], self._pres[1]))
        ea = crypto.f6(self._mackey, na, nb, self._rb, io_a, a, b)
        eb = crypto.f6(self._mackey, nb, na, self._ra, io_b, b, a)
        return ea, eb

    def _send_dhkey_check(self, now):
        ea, eb = self._stage2_values()
        self._peer_check = eb
        self._wait = _W_DHKEY_CHECK
        self._send(P.value16(C.PAIRING_DHKEY_CHECK, ea), now)

    def _rx_dhkey_check(self, now, pdu):
        value = bytes(pdu[16:0:-1])
        if self.central:
            if not crypto.ct_eq(value, self._peer_check, 16):
                raise _Abort(C.DHKEY_CHECK_FAILED)
            self._stk = _mask(self._ltk, self._ks)
            self._phase = _ENCRYPT
            self._wait = _W_NOTHING
            self._emit(StartEncryption(self._stk, 0, 0, self._ks))
            return
        ea, eb = self._stage2_values()
        if not crypto.ct_eq(value, ea, 16):
            raise _Abort(C.DHKEY_CHECK_FAILED)
        self._peer_check = eb
        self._wait = _W_NOTHING
        if self._nc_state == 1:
            return  # wait for the user
        self._answer_dhkey_check(now)

    def _answer_dhkey_check(self, now):
        self._stk = _mask(self._ltk, self._ks)
        self._phase = _ENCRYPT
        self._wait = _W_NOTHING
        self._send(P.value16(C.PAIRING_DHKEY_CHECK, self._peer_check), now)

    # ------------------------------------------------------------ key distribution

    def _start_key_dist(self, now):
        self._phase = _KEYDIST
        if self._sc:  # LE SC: the LTK comes from f5, EncKey is ignored
            self._init_kd &= ~C.KEY_ENC
            self._resp_kd &= ~C.KEY_ENC
        ours, theirs = (self._init_kd, self._resp_kd) if self.central else (self._resp_kd, self._init_kd)
        self._local_keys = Keys()
        self._peer_keys = Keys()
        if self._sc:
            self._local_keys.ltk = self._peer_keys.ltk = self._stk
        self._rx_keys = [op for bit, ops in _KEY_PDUS if theirs & bit for op in ops]
        self._deadline = now + C.TIMEOUT
        if not self.central:
            self._send_keys(ours, now)
        self._next_key(now)

    def _send_keys(self, bits, now):
        k = self._local_keys
        if bits & C.KEY_ENC:
            k.ltk = _mask(self.rng(16), self._ks)
            k.ediv = int.from_bytes(self.rng(2), "big")
            k.rand = int.from_bytes(self.rng(8), "big")
            self._send(P.value16(C.ENCRYPTION_INFORMATION, k.ltk), now)
            self._send(P.central_identification(k.ediv, k.rand), now)
        if bits & C.KEY_ID:
            ident = self.identity
            k.irk = ident.irk
            k.identity = (ident.addr_type, ident.addr)
            self._send(P.value16(C.IDENTITY_INFORMATION, ident.irk), now)
            self._send(P.identity_address(ident.addr_type, ident.addr), now)
        if bits & C.KEY_SIGN:
            csrk = self.identity.csrk if self.identity is not None and self.identity.csrk is not None else None
            k.csrk = csrk if csrk is not None else self.rng(16)
            self._send(P.value16(C.SIGNING_INFORMATION, k.csrk), now)

    def _next_key(self, now):
        if self._rx_keys:
            self._wait = _KEY_WAITS[self._rx_keys[0]]
            return
        self._wait = _W_NOTHING
        if self.central:
            self._send_keys(self._init_kd, now)
        self._complete(now)

    def _rx_key(self, now, pdu):
        op = pdu[0]
        k = self._peer_keys
        if op == C.ENCRYPTION_INFORMATION:
            k.ltk = bytes(pdu[16:0:-1])
        elif op == C.CENTRAL_IDENTIFICATION:
            k.ediv = int.from_bytes(pdu[1:3], "little")
            k.rand = int.from_bytes(pdu[3:11], "little")
        elif op == C.IDENTITY_INFORMATION:
            k.irk = bytes(pdu[16:0:-1])
        elif op == C.IDENTITY_ADDRESS_INFORMATION:
            t = pdu[1]
            addr = bytes(pdu[7:1:-1])
            if t > 1 or (t == 1 and addr[0] & 0xC0 != 0xC0):
                raise _Abort(C.INVALID_PARAMETERS)  # an identity address is public or static random
            k.identity = (t, addr)
        else:
            k.csrk = bytes(pdu[16:0:-1])
        self._rx_keys.pop(0)
        self._next_key(now)

    def _complete(self, now):
        result = PairingResult(
            self._method, self._sc, self._method != C.JUST_WORKS, self._ks, self._bonded, self._local_keys,
            self._peer_keys, self._stk, self.role, self.central)
        result.debug = self._peer_pub is not None and self._peer_pub == (_DEBUG_X, _DEBUG_Y)
        self.attempts.succeeded(self.peer_addr)
        self._emit(Paired(result))
        self._reset(_IDLE)

    # ------------------------------------------------------------ received commands

    def _rx_security_request(self, now, pdu):
        if self.attempts.blocked(self.peer_addr, now):
            raise _Abort(C.REPEATED_ATTEMPTS)
        self._emit(SecurityRequestReceived(pdu[1]))

    def _rx_keypress(self, now, pdu):
        if pdu[1] > 4:
            raise _Abort(C.INVALID_PARAMETERS)
        self._emit(Keypress(pdu[1]))


def _bind(name):
    fn = getattr(SmpEngine, name)

    def call(now, self, pdu):
        fn(self, now, pdu)

    return call


# What each wait accepts, and who handles it: the engine's state machine as data (h11 keeps its
# transitions the same way). Handlers move the engine to its next wait.
_WAITS = {
    _W_NOTHING: {},
    _W_SECURITY_REQUEST: {C.SECURITY_REQUEST: "_rx_security_request"},
    _W_PAIRING_REQUEST: {C.PAIRING_REQUEST: "_rx_pairing_request"},
    _W_PAIRING_RESPONSE: {C.PAIRING_RESPONSE: "_rx_pairing_response"},
    _W_PUBLIC_KEY: {C.PAIRING_PUBLIC_KEY: "_rx_public_key"},
    _W_CONFIRM: {C.PAIRING_CONFIRM: "_rx_confirm"},
    _W_RANDOM: {C.PAIRING_RANDOM: "_rx_random"},
    _W_DHKEY_CHECK: {C.PAIRING_DHKEY_CHECK: "_rx_dhkey_check"},
}
# key distribution: one wait per PDU, in the mandatory order (_KEY_PDUS)
_KEY_WAITS = {}
for _bit, _ops in _KEY_PDUS:
    for _op in _ops:
        _KEY_WAITS[_op] = len(_WAITS)
        _WAITS[len(_WAITS)] = {_op: "_rx_key"}
_WAITS = {w: {op: _bind(name) for op, name in ons.items()} for w, ons in _WAITS.items()}
_KEYPRESS = _bind("_rx_keypress")  # accepted beside any wait of phase 2 once both sides set the flag

