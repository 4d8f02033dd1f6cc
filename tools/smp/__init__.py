"""tools.smp: a sans-IO LE Security Manager Protocol engine (Bluetooth Core Vol 3 Part H).

A library of its own: the simulator's firmware model (tools/blesim) pairs with it, the tests
(host_tests/smp, hardening) drive it directly, and the fuzzer (tools/fuzz.py) attacks it.
Its cryptographic functions are the board's (lib/blesmp/crypto.py), so lib/ goes on sys.path.

One SmpEngine per connection. No sockets, threads, sleeps or clocks inside: PDUs, user
input, link-layer events and the time (`now`, seconds on the caller's virtual clock) go in
as method calls; every method returns a list of output objects, in the order they happen.
No exception escapes a method for anything the peer sends (a malformed or unexpected PDU is
answered as the specification says); only programming errors by the caller (a bad config,
a passkey > 999999) raise ValueError.

    from tools.smp import SmpEngine, SmpConfig, Identity, OobData
    from tools.smp import (Send, StartEncryption, LtkReply, DisplayPasskey, PasskeyRequest,
        NumericComparison, Keypress, SecurityRequestReceived, PairingRequestReceived, Paired, Failed,
        PairingResult, Keys, RepeatedAttempts)
    from tools.smp import const, pdu    # opcodes, reasons, IO caps; PDU codec + describe()

Byte order: every key, random and address is MSB-first (the spec's printed order, the order
MicroPython IRQs use). EDIV and Rand are ints. Only Send.pdu is on-air (LSB-first fields);
the codec in `pdu.py` converts, once.

Construction
    SmpEngine(role, config, local_addr, peer_addr, identity=None, rng=os.urandom,
              attempts=None, ecc_key=None)
    role        "central" | "peripheral"
    config      SmpConfig(io_cap=3, oob=None, bonding=True, mitm=False, sc=True, keypress=False,
                ct2=False, max_key_size=16, min_key_size=7, init_key_dist=7, resp_key_dist=7,
                sc_only=False, require_mitm=False, passkey=None, pairable=True,
                hold_pairing_request=False, allow_debug_key=True)   -- see types.SmpConfig
    local_addr, peer_addr   (type 0 public / 1 random, 6 bytes MSB-first): the CONNECTION
                addresses (the ones the link layer uses; they feed c1/f5/f6)
    identity    Identity(irk, addr_type, addr, csrk=None) = what we distribute with the ID/SIGN
                keys; None = we never offer the ID key (SIGN still works with a random CSRK)
    rng         rng(n) -> n random bytes (randoms, legacy LTK/EDIV/Rand, passkey "random")
    attempts    a RepeatedAttempts shared by all connections of one device (per-peer waiting
                interval that doubles after each authentication failure); None = a private one
    ecc_key     a cryptography EllipticCurvePrivateKey (P-256) to use for LESC; None = a fresh
                key per engine (SmpEngine.generate_key() makes one; reuse one per device as
                NimBLE does, and always for LESC OOB)

Calls (each returns a list of outputs)
    pair(now)                    central: send Pairing Request; peripheral: send Security Request
    receive(pdu, now)            an SMP PDU from the peer (bytes, opcode first)
    passkey(value, now)          answer PasskeyRequest: int 0..999999, or None to refuse
                                 (Pairing Failed 0x01). For display=True the engine then emits
                                 DisplayPasskey(value).
    confirm(accept, now)         answer NumericComparison (False -> Pairing Failed 0x0C)
    accept_pairing(accept, now, reason=0x05)
                                 peripheral with hold_pairing_request: answer the held request
    keypress(type, now)          send a Keypress Notification (only while we are typing a passkey
                                 and both sides set the keypress bit; otherwise [])
    encryption_changed(ok, key_size, now)
                                 the link layer's Encryption Change, both roles
    ltk_request(ediv, rand, now) peripheral: the controller's LE LTK Request. During pairing the
                                 engine answers [LtkReply(stk_or_ltk, key_size)]; otherwise
                                 [LtkReply(None)] = "not mine": the firmware model looks up its
                                 bond store (NimBLE: GET_SECRET(1,0,peer)) and answers itself.
    encrypt(ltk, ediv, rand, key_size, now)
                                 central: re-encrypt with stored keys -> [StartEncryption(...)];
                                 the engine only remembers that the link is being encrypted
    fail(reason, now)            abort: send Pairing Failed(reason) -> [Send, Failed(reason, True,
                                 "sent")]; also to answer a Security Request with a refusal
    tick(now)                    let time pass; after 30 s without SMP progress -> [Failed(None,
                                 True, "timeout")], after which the engine accepts no SMP traffic
                                 on this link (receive() returns [], pair() -> Failed "timeout")
    link_lost(now)               the link dropped: [Failed(None, True, "link_lost")] if pairing;
                                 the engine is then dead too (pair() -> Failed "link_lost")
    deadline                     property: the virtual time tick() must be called at, or None
    busy                         property: a procedure (pairing, or our Security Request) is running
    dead                         property: timed out or link lost (make a new engine per connection)
    encrypted, key_size          attributes: the last encryption_changed() state
    SmpEngine.generate_key(), SmpEngine.public_key_bytes(k) -> (x, y), SmpEngine.sc_oob_local(k, r) -> (r, c)

Outputs (types.py; all have __slots__, __eq__ and a readable repr)
    Send(pdu)                                bytes to send on CID 6
    StartEncryption(ltk, ediv, rand, key_size)   central -> link layer (STK/LTK with ediv=rand=0
                                             during pairing)
    LtkReply(ltk, key_size)                  peripheral -> link layer; ltk None = not the engine's
    DisplayPasskey(passkey)                  show the number
    PasskeyRequest(display)                  display=False: type the peer's number (action INPUT);
                                             display=True: choose our number (action DISPLAY)
    NumericComparison(number)                show and ask yes/no (action NUMCMP)
    Keypress(type)                           peer keypress notification
    SecurityRequestReceived(auth_req) (.bonding .mitm .sc)      central only
    PairingRequestReceived(io_cap, oob, auth_req, max_key_size, init_key_dist, resp_key_dist)
                                             (.bonding .mitm .sc) peripheral only; always before the
                                             Pairing Response in the same list, so a repeat-pairing
                                             check (NimBLE's REPEAT_PAIRING) can run before anything
                                             is sent; hold_pairing_request=True makes it wait
    Paired(result)                           result: PairingResult(method, sc, authenticated,
                                             key_size, bonded, local: Keys, peer: Keys, stk, role,
                                             initiator, debug); .ltk = the key to re-encrypt with;
                                             .debug = the peer used the spec's LESC debug key
    Failed(reason, local, cause)             cause "sent"|"received"|"timeout"|"link_lost"|
                                             "encryption_failed"|"blocked"
    Keys(ltk, ediv, rand, irk, identity, csrk)   identity = (addr_type, addr) or None

Re-encryption with stored keys (no pairing): central -> encrypt(ltk, ediv, rand, key_size, now)
with the bond's keys (legacy: PairingResult.peer.ltk/.ediv/.rand = what the peripheral
distributed; LESC: the shared LTK, ediv = rand = 0); the peripheral's ltk_request() answers
LtkReply(None) outside pairing, so the firmware model answers from its bond store; both sides'
encryption_changed() just record the state. A peripheral whose Security Request is answered by
such an encryption goes back to idle (no timeout).

Strictness: a reserved opcode is ignored (Core v5.2+ Vol 3 Part H 3.3, as NimBLE); wrong
length -> 0x0A; a known opcode this role never receives -> 0x07; a known opcode the state does
not expect -> 0x08 while a procedure runs, silently dropped when idle (a straggler of a procedure
that already failed); Pairing Failed is never answered. Peer public key not on P-256 -> 0x0B (as
NimBLE); the peer's key equal to ours (reflection) -> 0x03; the spec's debug key ->
PairingResult.debug (or 0x03 with allow_debug_key=False). Key size: a Maximum Encryption Key
Size outside 7..16, or a negotiated min(max_i, max_r) below config.min_key_size -> 0x06. STK/LTK
are masked to the negotiated size (most significant octets zeroed). After any failure the engine
is idle and sends nothing more for that procedure. LE SC: EncKey is ignored (both sides get the
f5 LTK); the LinkKey bit and CT2 are negotiated but nothing BR/EDR is derived.

Display passkey (how the firmware model supplies it): NimBLE does not generate the passkey
it displays. With config.passkey=None (the NimBLE-like default) the engine emits
PasskeyRequest(display=True) when this side must display; the firmware model raises
_IRQ_PASSKEY_ACTION(conn, 3, 0); the application's gap_passkey(conn, 3, n) becomes
engine.passkey(n, now) and the engine emits DisplayPasskey(n) and proceeds. With an int
config.passkey (or "random"), DisplayPasskey comes at once, no request.

Order of one successful pairing (central initiator, peripheral responder):
    central.pair -> Send(Pairing Request) ... exchanges ... central: StartEncryption(stk/ltk);
    link layer: peripheral.ltk_request(0, 0) -> LtkReply(key); both encryption_changed(True, ks);
    responder sends its keys, then the initiator; each side emits Paired when its part is done.
    No keys to distribute -> Paired right at encryption_changed.

Repeated Attempts: after an authentication failure (0x01, 0x04, 0x0B, 0x0C sent or received)
RepeatedAttempts.failed(peer) starts a waiting interval (2 s, doubling to 64 s, cleared by a
successful pairing). While it runs, a peripheral answers a Pairing Request with Pairing Failed
0x09 and a central answers a Security Request with 0x09; a central's pair() gives
[Failed(0x09, True, "blocked")] without sending anything.
"""

import os as _os
import sys as _sys

_LIB = _os.path.join(_os.path.dirname(_os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))), "lib")
if _LIB not in _sys.path:
    _sys.path.insert(0, _LIB)

from . import const, pdu  # noqa: E402
from .attempts import RepeatedAttempts  # noqa: E402
from .engine import SmpEngine  # noqa: E402
from .types import (  # noqa: E402
    DisplayPasskey,
    Failed,
    Identity,
    Keypress,
    Keys,
    LtkReply,
    NumericComparison,
    OobData,
    Paired,
    PairingRequestReceived,
    PairingResult,
    PasskeyRequest,
    SecurityRequestReceived,
    Send,
    SmpConfig,
    StartEncryption,
)

__all__ = (
    "const", "pdu", "RepeatedAttempts", "SmpEngine", "SmpConfig", "Identity", "OobData", "Keys",
    "PairingResult", "Send", "StartEncryption", "LtkReply", "DisplayPasskey", "PasskeyRequest",
    "NumericComparison", "Keypress", "SecurityRequestReceived", "PairingRequestReceived", "Paired",
    "Failed",
)
