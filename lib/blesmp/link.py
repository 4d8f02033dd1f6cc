# The security procedures on each link: pairing, re-encryption, prompts, policy, failure reasons,
# reports, and the GATT authorization of protected characteristics (what SecurityManager does
# while links exist). The manager imports it at the first CONNECT and
# drops it again on MicroPython when the last link is gone, so a board at rest (advertising, no
# connection) does not hold this code in its heap. Functions take the SecurityManager as `sm`.
# Not part of the API: see blesmp.manager.
import os
import sys
import time

from micropython import const

from . import _log
from .bondrule import may_replace
from .secinfo import addr_key as _key7
from .secinfo import info as blob_info

# Copies of the blesmp.const values used here: const() folds them into the bytecode.
_AUTH_CMPL_EVT = const(5)
_AUTH_FAILED = const(0x28)
_BUSY = const(0x2E)
_CENTRAL_NO_PROMPTS = const(0x2A)
_CONN_HANDLE_NONE = const(65535)
_IO_NO_INPUT_OUTPUT = const(3)
_KEY_MISSING = const(0x2D)
_KEY_TOO_SHORT = const(0x24)
_LEGACY_UNDER_SC_ONLY = const(0x25)
_LEVEL_TOO_LOW = const(0x29)
_LINK_LOST = const(0x22)
_NC_REQ_EVT = const(4)
_NOT_ALLOWED = const(0x2C)
_METHOD_NOT_ALLOWED = const(0x31)
_NOT_IN_WINDOW = const(0x2B)
_OK = const(0)
_PASSKEY_ACTION_DISPLAY = const(3)
_PASSKEY_ACTION_INPUT = const(2)
_PASSKEY_ACTION_NUMERIC_COMPARISON = const(4)
_PASSKEY_NOTIF_EVT = const(2)
_PASSKEY_REQ_EVT = const(3)
_PEER_FAILED = const(0x27)
_PROMPT_CANCEL_EVT = const(8)
_PROMPT_TIMEOUT = const(0x21)
_REJECTED = const(0x20)
_REPEATED_ATTEMPTS = const(0x09)
_ROLE_CENTRAL = const(0)
_ROLE_PERIPHERAL = const(1)
_SEC_REQ_EVT = const(1)
_SEC_TYPE_OUR = const(1)
_SEC_TYPE_PEER = const(2)
_SMP_TIMEOUT = const(0x23)
_SMP_TIMEOUT_MS = const(30000)
_STORE_FULL = const(0x30)
_UNSPECIFIED = const(0x08)
_WEAKER_THAN_BOND = const(0x26)

_ST_IDLE = const(0)
_ST_PAIRING = const(1)  # a pairing runs on the link
_ST_ENCRYPTING = const(2)  # re-encryption with a stored key
_ST_FAILING = const(3)  # failed update seen, waiting briefly for a DISCONNECT (link lost?)
_ST_REPORTED = const(4)  # failure already reported; absorb the firmware's late update
_ST_REQUESTED = const(5)  # we (peripheral) sent a Security Request; the central decides
_ST_WAITKEYS = const(6)  # encrypted+bonded, waiting for the SET_SECRETs (older esp-nimble order)

_F_LOCAL = const(1)  # we started it (gap_pair)
_F_ANSWERED = const(2)  # a passkey/NC step happened
_F_REJECT = const(4)  # the manager refuses this pairing
_F_KEYS = const(8)  # keys were stored by this pairing
_F_ACCEPTED = const(16)  # accept policy already checked
_F_CENTRAL_WD = const(32)  # deadline is the central-role stall watchdog
_F_PROMPT = const(64)  # deadline is a prompt timeout
_F_SECREQ = const(128)  # SEC_REQ already reported
_F_MARKED = const(256)  # the bond-count look-up of our own central pairing was seen
_F_SETSEEN = const(512)  # NimBLE handed over keys (stored or refused)
_F_DONE = const(1024)  # store.pairing_done() called for this procedure
_F_MOVED = const(2048)  # c.old is the bond of an identity the peer distributed (not its address)
_F_APART = const(4096)  # (_ST_FAILING) a later host delivery began after the failed update
_F_OURS = const(129)  # _F_LOCAL | _F_SECREQ: the application asked (the policy still runs: item 6)

_GRACE_MS = const(250)  # wait for a DISCONNECT after a failed update
_SAME_MS = const(3)  # an IRQ this soon after the previous handler returned: the same host delivery
_KEYS_WAIT_MS = const(500)  # wait for SET_SECRET after an update (older order)
_MARK_MS = const(1000)  # a bond-count look-up marks a pairing start for this long
_BACKOFF_SLOTS = const(8)
_ATT_INSUFFICIENT_AUTHENTICATION = const(0x05)
_ATT_INSUFFICIENT_AUTHORIZATION = const(0x08)
_ATT_INSUFFICIENT_ENCRYPTION = const(0x0F)
_ATT_INSUFFICIENT_KEY_SIZE = const(0x0C)

_ZERO7 = bytes(7)
_ANY = b"\xff\xff\xff\xff\xff\xff\xff"  # the back-off slot all peers without a bond share


def level_of(enc, auth, sc, key_size):
    """Security level 1..4 (Zephyr L1..L4) of a link state; sc None = unknown (not level 4)."""
    if not enc:
        return 1
    if not auth:
        return 2
    if sc and key_size == 16:
        return 4
    return 3


def random_passkey(rng=None):
    """A passkey uniform over 0..999999 from os.urandom (rejection sampling: no modulo bias)."""
    rng = rng or os.urandom
    while True:
        b = rng(3)
        v = (b[0] << 16) | (b[1] << 8) | b[2]
        if v < 16000000:  # 16 * 10**6 <= 2**24
            return v % 1000000


class AuthResult:
    """The AUTH_CMPL_EVT value (ESP-IDF esp_ble_auth_cmpl_t): success, reason (const.reason_name),
    level 1..4, key_size, authenticated, bonded, sc (1, 0 or None = unknown), encrypted,
    repaired (re-encryption with a stored key rather than a pairing), addr_type/addr (identity)."""

    if sys.implementation.name != "micropython":  # MicroPython ignores __slots__: no tuple in RAM
        __slots__ = ("conn", "addr_type", "addr", "success", "reason", "level", "key_size", "encrypted",
                     "authenticated", "bonded", "sc", "reencrypt")

    def __init__(self, c, success, reason):
        self.conn = c.handle
        self.addr_type = c.addr_type
        self.addr = c.addr
        self.success = success
        self.reason = reason
        self.encrypted = c.enc
        self.authenticated = c.auth
        self.bonded = c.bonded if success else 0  # (a failed procedure stored nothing)
        self.key_size = c.key_size
        self.sc = c.sc
        self.level = level_of(c.enc, c.auth, c.sc, c.key_size)
        self.reencrypt = c.state == _ST_ENCRYPTING

    def __repr__(self):
        from .text import repr_of  # the text lives in the cold module

        return repr_of(self)


class Link:
    """What state(conn) returns: one connection's security state."""

    if sys.implementation.name != "micropython":
        __slots__ = ("handle", "role", "addr_type", "addr", "key", "enc", "auth", "bonded", "key_size",
                     "sc", "state", "proc", "flags", "t0", "deadline", "action", "number", "want",
                     "want_ks", "old", "result")

    def __init__(self, handle, role, addr_type, addr):
        self.handle = handle
        self.role = role
        self.addr_type = addr_type
        self.addr = addr
        self.key = _key7(addr_type, addr)
        self.enc = self.auth = self.bonded = self.key_size = 0
        self.sc = None
        self.state = _ST_IDLE
        self.proc = _ST_IDLE  # the procedure a failed update belongs to (while _ST_FAILING)
        self.flags = 0
        self.t0 = 0
        self.deadline = None
        self.action = 0  # pending prompt (passkey action) or 0
        self.number = 0
        self.want = 1  # level the application requires on this link
        self.want_ks = 0
        self.old = None  # (key_size, auth, sc) of the bond a repeat pairing would replace
        self.result = None  # last AuthResult

    @property
    def level(self):
        return level_of(self.enc, self.auth, self.sc, self.key_size)

    @property
    def busy(self):
        return self.state not in (_ST_IDLE, _ST_REPORTED)

    __repr__ = AuthResult.__repr__  # one stub for both classes (each function costs heap)

def check_pk(pk):
    if not isinstance(pk, int) or not 0 <= pk <= 999999:
        raise ValueError("passkey must be an int 0..999999")


def start(sm, conn, level=None):
    # SecurityManager.pair (see its docstring)
    c = sm.state(conn)
    if c is None:
        raise ValueError("not connected: %r" % (conn,))
    if level is not None:
        if not 1 <= level <= 4:
            raise ValueError("level must be 1..4")
        c.want = level
    if c.busy:
        return True  # already running: its AUTH_CMPL will come
    want = max(c.want, sm.level)
    if c.role == _ROLE_CENTRAL and want >= 3 and not sm.central_prompts:
        begin(sm, c, _F_OURS)
        fail(sm, c, _CENTRAL_NO_PROMPTS, disconnect=False)
        return False
    if c.enc and c.level >= want and c.key_size >= min_ks(sm, c):
        begin(sm, c, _F_OURS)
        c.state = _ST_ENCRYPTING
        report(sm, c, True, _OK)
        return True
    # As central the pairing is the application's own decision (accepted); as peripheral the
    # central answers our Security Request with a pairing: the policy runs for it (item 6).
    begin(sm, c, _F_OURS | _F_ACCEPTED if c.role == _ROLE_CENTRAL else _F_OURS)
    if c.role == _ROLE_PERIPHERAL:
        c.state = _ST_REQUESTED
        c.deadline = time.ticks_add(sm._ms(), _SMP_TIMEOUT_MS)
    try:
        sm._ble.gap_pair(c.handle)
    except OSError as e:
        c.state = _ST_PAIRING
        fail(sm, c, _BUSY if e.args and e.args[0] in (114, 120) else _UNSPECIFIED, disconnect=False)
        return False
    return True


def require(sm, conn, level, min_key_size=None, go=True):
    # SecurityManager.require (see its docstring)
    c = sm.state(conn)
    if c is None:
        raise ValueError("not connected: %r" % (conn,))
    if not 1 <= level <= 4:
        raise ValueError("level must be 1..4")
    c.want = level
    if min_key_size is not None:
        c.want_ks = min_key_size
    if go and (c.level < level or (c.enc and c.key_size < min_ks(sm, c))):
        return start(sm, c.handle)
    return True


def security_rsp(sm, conn, accept):
    # SecurityManager.security_rsp (see its docstring)
    c = sm.state(conn)
    if c is None or not c.busy:
        return False
    if accept:
        c.flags |= _F_ACCEPTED
    else:
        reject(sm, c, _REJECTED)
    return True


def passkey_reply(sm, conn, accept, passkey=0):
    # SecurityManager.passkey_reply (see its docstring)
    c = sm.state(conn)
    if c is None or c.action != _PASSKEY_ACTION_INPUT:
        return False
    if accept:
        check_pk(passkey)
    c.action = 0
    c.flags = (c.flags | _F_ANSWERED) & ~_F_PROMPT
    if not accept:
        reject(sm, c, _REJECTED)
        return True
    watchdog(sm, c)
    try:
        sm._ble.gap_passkey(c.handle, _PASSKEY_ACTION_INPUT, passkey)
    except OSError as e:
        _log("gap_passkey failed", e)
        return False
    return True


def confirm_reply(sm, conn, accept):
    # SecurityManager.confirm_reply (see its docstring)
    c = sm.state(conn)
    if c is None or c.action != _PASSKEY_ACTION_NUMERIC_COMPARISON:
        return False
    c.action = 0
    c.flags = (c.flags | _F_ANSWERED) & ~_F_PROMPT
    try:
        sm._ble.gap_passkey(c.handle, _PASSKEY_ACTION_NUMERIC_COMPARISON, 1 if accept else 0)
    except OSError as e:
        _log("gap_passkey failed", e)
    if accept:
        watchdog(sm, c)
    else:
        c.flags |= _F_REJECT
        fail(sm, c, _REJECTED, disconnect=False)
    return True


def min_ks(sm, c):
    return max(sm.min_key_size, c.want_ks)


def agent(sm, name, *args):
    a = sm.agent
    f = getattr(a, name, None) if a is not None else None
    if f is None:
        return None
    try:
        return f(sm, *args)
    except Exception as e:  # noqa: BLE001
        _log("agent.%s raised" % name, e)
        return None


def begin(sm, c, flags):
    # A new procedure on c (pairing unless proven otherwise).
    if c.state == _ST_FAILING:
        # A new procedure within the grace after a failed update: that failure ends now
        # (reported, counted), and the new one is a procedure of its own (item 3).
        c.state = c.proc
        fail_update(sm, c)
    c.state = _ST_PAIRING
    c.flags = flags
    c.t0 = sm._ms()
    c.action = 0
    c.number = 0
    c.old = None
    watchdog(sm, c)


def watchdog(sm, c):
    # No SMP progress for 30 s: the firmware's SMP timer fires; ours a bit later, in case the
    # firmware's update never comes (link gone quiet).
    c.t0 = sm._ms()
    c.flags &= ~(_F_PROMPT | _F_CENTRAL_WD)
    if c.role == _ROLE_CENTRAL and not sm.central_prompts and sm.io != _IO_NO_INPUT_OUTPUT:
        c.flags |= _F_CENTRAL_WD
        c.deadline = time.ticks_add(c.t0, sm.central_stall_ms)
    else:
        c.deadline = time.ticks_add(c.t0, _SMP_TIMEOUT_MS + 2000)


def report(sm, c, success, reason):
    r = AuthResult(c, success, reason)
    c.result = r
    c.state = _ST_IDLE if success else _ST_REPORTED
    c.deadline = None
    if c.action:
        c.action = 0
        sm._emit(_PROMPT_CANCEL_EVT, c.handle)
        agent(sm, "cancel", c.handle)
    k = bkey(sm, c)
    if success:
        sm._backoff.pop(k, None)
        if c.auth and not r.reencrypt:
            sm._backoff.pop(_ANY, None)  # a user saw a code and it matched
    elif not r.reencrypt and reason not in (_REPEATED_ATTEMPTS, _CENTRAL_NO_PROMPTS, _BUSY, _NOT_IN_WINDOW,
                                            _NOT_ALLOWED, _KEY_MISSING):
        # Count the failed pairing (policy refusals are not attempts: opening the window works at
        # once; a failed re-encryption is no pairing: nothing was guessed). A peer without a bond
        # also counts in one slot all such peers share: an attacker changing its random address
        # for every guess gets no fresh slot (new peers wait with it; bonded peers do not).
        count(sm, k)
        if strength(sm, k) is None:
            count(sm, _ANY)
    sm._emit(_AUTH_CMPL_EVT, c.handle, r)
    agent(sm, "done", r)


def count(sm, k):
    b = sm._backoff.get(k)
    if b is None:
        if len(sm._backoff) >= _BACKOFF_SLOTS:
            # forget the entry with the fewest failures (never the shared one)
            drop = min((x for x in sm._backoff if x != _ANY), key=lambda x: sm._backoff[x][0])
            del sm._backoff[drop]
        b = sm._backoff[k] = [0, None]
    b[0] += 1
    if sm.backoff_ms:
        # The spec's waiting interval (Vol 3 Part H 2.3.6) after every failed pairing:
        # backoff_ms after the first, doubling with every further one, up to 64x.
        b[1] = time.ticks_add(sm._ms(), sm.backoff_ms << min(b[0] - 1, 6))


def waiting(sm, k):
    b = sm._backoff.get(k)
    return b is not None and b[1] is not None and time.ticks_diff(b[1], sm._ms()) > 0


def strength(sm, k):
    # (key_size, authenticated, sc) of the bond stored under key k (also one NimBLE has just
    # deleted for a repeat pairing: the store only hides it), None if there is none.
    st = sm.store
    try:
        f = getattr(st, "_find", None)
        if f is not None:
            e = f(k)
            if e is None:
                return None
            from .bond import _strength

            s = _strength(e)
        else:
            b = st.find(k[0], bytes(k[6 - i] for i in range(6)))
            if b is None:
                return None
            s = (b.key_size, b.authenticated, b.sc)
        return s if s[0] else None
    except Exception as e:  # noqa: BLE001
        _log("store look-up failed", e)
        return None


def bkey(sm, c):
    # The back-off is per peer identity where known: c.key is the identity address once the
    # firmware resolved the peer or it distributed its keys; else an RPA of a bonded peer is
    # resolved with the application's resolver (if given); else the connection address.
    rv = sm.resolver
    if rv is not None and c.addr_type == 1 and c.addr[0] & 0xC0 == 0x40:
        try:
            b = rv.resolve(1, c.addr)
            if b is not None:
                return _key7(b.addr_type, b.addr)
        except Exception as e:  # noqa: BLE001
            _log("resolver failed", e)
    return c.key


def fail(sm, c, reason, disconnect=True):
    # Our own decision that the procedure failed: tell the store, report, maybe drop the link.
    if disconnect:
        c.flags |= _F_REJECT  # + _ST_REPORTED = the link is being dropped: GATT refuses it now
    else:
        c.flags &= ~_F_REJECT
    store_done(sm, c, False)
    report(sm, c, False, reason)
    if disconnect:
        sm._disconnect(c.handle)


def reject(sm, c, reason):
    c.flags |= _F_REJECT
    if c.action == _PASSKEY_ACTION_NUMERIC_COMPARISON:
        try:
            sm._ble.gap_passkey(c.handle, _PASSKEY_ACTION_NUMERIC_COMPARISON, 0)
        except OSError:
            pass
    fail(sm, c, reason)


def store_done(sm, c, ok):
    # The store's re-pairing transaction: a failed pairing brings a hidden bond back; keys a
    # failed pairing managed to store are removed again. Returns the store's answer.
    if c.flags & _F_DONE:
        return None
    c.flags |= _F_DONE
    f = getattr(sm.store, "pairing_done", None)
    if f is None:
        return None
    try:
        r = f(c.addr_type, c.addr, ok, c.bonded)
        if not ok and r == "stored" and c.old is None:
            sm.store.remove(c.addr_type, c.addr)
        return r
    except Exception as e:  # noqa: BLE001
        _log("store.pairing_done raised", e)
        return None


def incoming(sm, c, repeat_blob):
    # A pairing starts on c (the peer's, an answer to our Security Request or our own gap_pair:
    # the policy runs for every one). repeat_blob: the bond NimBLE's repeat-pairing look-up found.
    # False = refused (reported, the link is being dropped).
    st = c.state
    if st == _ST_REPORTED and c.flags & _F_REJECT:
        return False  # refused already; the link is on its way down
    if st == _ST_REQUESTED:
        c.state = _ST_PAIRING  # the central answered our Security Request by pairing
        watchdog(sm, c)
    elif st == _ST_ENCRYPTING:
        c.state = _ST_PAIRING  # the stored key was refused: NimBLE pairs afresh (the peer's doing)
        c.flags &= ~_F_ACCEPTED
        watchdog(sm, c)
    elif st != _ST_PAIRING and st != _ST_WAITKEYS:
        begin(sm, c, 0)  # (closes a failure still in its grace first)
    if repeat_blob is not None:
        info = blob_info(repeat_blob)
        if info[0]:
            c.old = info
    if c.old is None:
        c.old = strength(sm, c.key)  # (no look-up seen: the bond a pairing would replace)
    if c.flags & _F_ACCEPTED:
        return True
    # The policy: 0 if a pairing from this peer may go ahead, else the reason to refuse it.
    repeat = c.old is not None
    k = bkey(sm, c)
    reason = 0
    if waiting(sm, k) or (waiting(sm, _ANY) and strength(sm, k) is None):
        reason = _REPEATED_ATTEMPTS
    elif sm._allow is not None and c.key not in sm._allow:
        reason = _NOT_ALLOWED
    elif repeat and sm.repeat == "deny":
        reason = _WEAKER_THAN_BOND
    elif sm.window and not repeat and not sm.window_open():
        reason = _NOT_IN_WINDOW
    if not (c.flags & _F_SECREQ):
        c.flags |= _F_SECREQ
        sm._emit(_SEC_REQ_EVT, c.handle, (c.addr_type, c.addr))
        if c.flags & _F_REJECT or c.state == _ST_REPORTED:
            return False  # the application refused in its callback (security_rsp)
    if not reason and agent(sm, "accept", c.handle, c.addr_type, c.addr) is False:
        reason = _REJECTED
    if reason:
        reject(sm, c, reason)
        return False
    c.flags |= _F_ACCEPTED
    return True


def weaker(sm, old, ks, auth, sc, moved=0):
    # Would keys of this strength replace the bond of strength `old` (None: no bond) against the
    # repeat-pairing policy? (As central, esp-nimble's key-missing re-pair gets here: F8.)
    return old is not None and not may_replace(old, (ks, auth, sc), sm.repeat, sm.window_open(), moved)


def finish(sm, c):
    # The link is encrypted (c.enc etc. are current): apply the policy, report.
    reenc = c.state == _ST_ENCRYPTING
    if c.flags & _F_REJECT:
        fail(sm, c, _REJECTED)
        return
    reason = 0
    want = max(c.want, sm.level)
    lvl = c.level
    if lvl == 3 and c.sc is None and c.key_size == 16 and not sm.sc_only:
        # SC cannot be told apart from legacy without stored keys or an NC step (the firmware
        # has no SC flag): an authenticated 16-byte link is taken for level 4 (documented gap),
        # except under sc_only, where unknown means refused (below).
        lvl = 4
    if c.key_size < min_ks(sm, c):
        reason = _KEY_TOO_SHORT
    elif sm.sc_only and not c.sc:
        reason = _LEGACY_UNDER_SC_ONLY  # legacy, or unknown (no bond, no comparison): item 4
    elif lvl < want:
        reason = _LEVEL_TOO_LOW
    elif not reenc and not (c.auth or sm.methods & 1):
        reason = _METHOD_NOT_ALLOWED  # Just Works (no prompt) while methods= excludes it
    elif not reenc and weaker(sm, c.old, c.key_size, c.auth, c.sc, c.flags & _F_MOVED):
        reason = _WEAKER_THAN_BOND
    if not reason and not reenc and c.bonded:
        r = store_done(sm, c, True)
        if r == "refused":
            # The store kept the old bond (weaker replacement) or is full (when_full="refuse").
            reason = _WEAKER_THAN_BOND if c.old is not None else _STORE_FULL
    if reason:
        fail(sm, c, reason)
        return
    store_done(sm, c, True)
    report(sm, c, True, _OK)


def tick(sm):
    now = sm._ms()
    for c in list(sm._links.values()):
        d = c.deadline
        if d is None or time.ticks_diff(d, now) > 0:
            continue
        c.deadline = None
        st = c.state
        if st == _ST_FAILING:
            c.state = c.proc
            fail_update(sm, c)
        elif st == _ST_WAITKEYS:
            c.state = _ST_PAIRING
            finish(sm, c)
        elif st in (_ST_PAIRING, _ST_ENCRYPTING, _ST_REQUESTED):
            if c.flags & _F_PROMPT:
                nc = c.action == _PASSKEY_ACTION_NUMERIC_COMPARISON
                c.flags |= _F_REJECT
                if nc:  # a clean refusal: the peer gets Pairing Failed 0x0C
                    try:
                        sm._ble.gap_passkey(c.handle, _PASSKEY_ACTION_NUMERIC_COMPARISON, 0)
                    except OSError:
                        pass
                fail(sm, c, _PROMPT_TIMEOUT, disconnect=not nc)
            elif c.flags & _F_CENTRAL_WD:
                from .text import CENTRAL_STALL

                _log(CENTRAL_STALL % c.handle)
                fail(sm, c, _CENTRAL_NO_PROMPTS)
            elif st == _ST_REQUESTED:
                report(sm, c, False, _PEER_FAILED)  # the central ignored our Security Request
            else:
                fail(sm, c, _SMP_TIMEOUT)


def fail_update(sm, c):
    # A failed ENCRYPTION_UPDATE, the link apparently still up.
    if c.flags & _F_REJECT:
        reason = _REJECTED
    elif time.ticks_diff(sm._ms(), c.t0) >= _SMP_TIMEOUT_MS - 1000:
        reason = _SMP_TIMEOUT
    elif c.flags & _F_ANSWERED:
        reason = _AUTH_FAILED
    elif c.state == _ST_ENCRYPTING:
        reason = _KEY_MISSING  # the peer refused our stored key (it lost the bond)
    else:
        reason = _PEER_FAILED
    store_done(sm, c, False)
    report(sm, c, False, reason)


def find_key(sm, key, role=None):
    for c in sm._links.values():
        if c.key == key and (role is None or c.role == role):
            return c
    return None


def set_secret(sm, sec_type, kb, value):
    # SET_SECRET(sec_type 1 or 2, kb, value) while links exist: keys of a pairing on one of them
    # are checked against the policy before the store gets them. Returns what the firmware gets.
    c = None
    for x in sm._links.values():
        if x.state in (_ST_PAIRING, _ST_WAITKEYS) and (c is None or x.key == kb):
            c = x  # a pairing link (the one named kb if several pair; another one may be named kb)
    if c is None:
        c = find_key(sm, kb)
        if c is not None and not rewrite(sm, sec_type, kb, value) and not incoming(sm, c, None):
            # New keys are evidence of a pairing nobody announced (no look-up we saw): the
            # policy runs now, and a refusal keeps them out.
            return False
    if c is None:
        return sm.store.set_secret(sec_type, kb, value)
    info = blob_info(value)
    c.flags |= _F_SETSEEN
    if c.flags & _F_REJECT:
        return False  # never store keys of a refused pairing
    if info[0]:
        ks, auth, sc = info
        c.sc = sc
        if c.key != kb:
            # The peer distributed an identity address: keys for an identity that is already
            # bonded follow the repeat-pairing rule of that bond, whoever connected (item 1).
            old = strength(sm, kb)
            if old is not None and (c.old is None or weaker(sm, old, ks, auth, sc, 1)):
                c.old = old  # (finish() names the reason)
                c.flags |= _F_MOVED
        if (ks < min_ks(sm, c) or (sm.sc_only and not sc) or weaker(sm, c.old, ks, auth, sc, c.flags & _F_MOVED)
                or level_of(1, auth, sc, ks) < max(c.want, sm.level)
                or not (auth or sm.methods & 1)):
            return False  # finish() reports why and drops the link
    if len(kb) == 7 and c.key != kb:
        c.key = kb  # now known by its identity address
        c.addr_type = kb[0]
        c.addr = bytes(kb[6 - i] for i in range(6))
    st = sm.store
    v = sm.repeat == "allow" or sm.window_open()
    if v:
        st.vouched = True  # (the store applies the same rule: may_replace)
    try:
        ok = st.set_secret(sec_type, kb, value)
    finally:
        if v:
            st.vouched = False
    if ok:
        c.flags |= _F_KEYS
    if sec_type == _SEC_TYPE_PEER and c.state == _ST_WAITKEYS:
        c.state = _ST_PAIRING
        c.deadline = None
        finish(sm, c)  # inside a store callback: disconnects are deferred
    return ok


def rewrite(sm, sec_type, kb, value):
    # NimBLE rewrites a stored bond outside any pairing (esp-nimble's sign counter after a
    # signed write): same LTK as the stored one. That is no pairing.
    try:
        r = sm.store.get_secret(sec_type, 0, kb)
    except Exception:  # noqa: BLE001
        return False
    return r is not None and len(r) == len(value) and bytes(r[24:40]) == bytes(value[24:40])


def delivery(sm):
    # At the start of every IRQ while links exist. The DISCONNECT IRQ has no reason code, so what
    # tells a link loss from a peer that leaves after a failed pairing is when it comes: NimBLE
    # raises a link loss's failed update and its DISCONNECT in one host call (ble_gap_conn_broken:
    # ble_sm_connection_broken, then the DISCONNECT event), back to back; a peer that leaves after
    # Pairing Failed (phones do, at once) is a later HCI event, a connection interval (>= 7.5 ms)
    # on. An IRQ more than _SAME_MS after the previous handler returned starts a new delivery.
    # Limits: a disconnection already queued when the failed update's handler returns (a handler
    # slower than a connection interval; a peer whose Pairing Failed and LL_TERMINATE_IND share a
    # connection event) passes for a link loss; a board whose main thread keeps the GIL for more
    # than _SAME_MS between the two IRQs of a link loss reports the failure's reason instead.
    d = time.ticks_diff(sm._ms(), sm._t_end)
    if 0 <= d <= _SAME_MS:
        return
    # NimBLE makes a pairing's bond-count and repeat-pairing look-ups in one call
    # (ble_sm_pair_req_rx); a request it refused in between makes no repeat look-up, and a later
    # look-up (a bonded peer's permission check) is no pairing start.
    sm._mark = None
    for c in sm._links.values():
        if c.state == _ST_FAILING:
            c.flags |= _F_APART


def on_disconnect(sm, h):
    c = sm._links.pop(h, None)
    if c is None:
        return
    sm._disc = [x for x in sm._disc if x != h]
    st = c.state
    if st == _ST_FAILING:
        c.state = c.proc
        if c.flags & _F_APART:
            # The peer left in a later delivery than the failed update (a phone whose user typed a
            # wrong passkey does): the link was not lost, the pairing failed first (delivery).
            fail_update(sm, c)
            return
        store_done(sm, c, False)
        report(sm, c, False, _REJECTED if c.flags & _F_REJECT else _LINK_LOST)
    elif st == _ST_WAITKEYS:
        c.state = _ST_PAIRING
        finish(sm, c)
    elif st in (_ST_PAIRING, _ST_ENCRYPTING, _ST_REQUESTED):
        store_done(sm, c, False)
        report(sm, c, False, _REJECTED if c.flags & _F_REJECT else _LINK_LOST)


def on_encryption(sm, h, enc, auth, bonded, ks):
    c = sm._links.get(h)
    if c is None or not isinstance(ks, int):
        return  # (a malformed tuple: a key size that is no int would break every later check)
    st = c.state
    if enc and st == _ST_REPORTED and c.flags & _F_REJECT:
        sm._disconnect(h)  # a refused pairing completed before the link dropped
        return
    if enc and st == _ST_FAILING:
        # The pairing failed (e.g. in key distribution) yet the link layer reports encryption:
        # report the failure and do not trust the half-made link.
        c.state = c.proc
        fail_update(sm, c)
        sm._disconnect(h)
        return
    if enc:
        c.enc, c.auth, c.bonded, c.key_size = 1, 1 if auth else 0, 1 if bonded else 0, ks
        if st == _ST_IDLE or st == _ST_REPORTED or st == _ST_REQUESTED:
            # An encryption is a re-encryption only when the store answered its LTK look-up
            # (that made the state _ST_ENCRYPTING). This one ends a pairing nobody announced:
            # MicroPython's unix NimBLE (BLE_SM_BONDING=0) makes no bond-count look-up at a
            # pairing start, and the repeat-pairing look-up cannot be told from a GATT
            # permission check. The policy runs now; a refusal drops the link.
            if not incoming(sm, c, None):
                return
            st = c.state
        if st == _ST_PAIRING and bonded and not (c.flags & (_F_SETSEEN | _F_REJECT)):
            # Older esp-nimble: the update comes before the SET_SECRETs. Wait for them.
            c.state = _ST_WAITKEYS
            c.deadline = time.ticks_add(sm._ms(), _KEYS_WAIT_MS)
            return
        if c.state == _ST_PAIRING and not bonded and time.ticks_diff(sm._ms(), c.t0) >= _SMP_TIMEOUT_MS - 1000:
            # Encrypted, nothing bonded, 30 s after the last step: NimBLE's SMP timer ended the
            # key distribution (the update has no status; the link is encrypted since the
            # start of it): a failure, not an unbonded pairing (item 8)
            fail(sm, c, _SMP_TIMEOUT)
            return
        if c.sc is None and c.state == _ST_ENCRYPTING:
            try:  # a re-encryption is as SC as the bond it used
                b = sm.store.find(c.addr_type, c.addr)
            except Exception:  # noqa: BLE001
                b = None
            if b is not None:
                c.sc = 1 if b.sc else 0
        finish(sm, c)
        return
    # Not encrypted: the procedure failed (the firmware does not say why).
    c.enc = c.auth = c.bonded = c.key_size = 0
    if st == _ST_REPORTED:
        c.state = _ST_IDLE  # the late update of a failure already reported
        return
    if st == _ST_IDLE:
        begin(sm, c, 0)
        st = _ST_PAIRING
    if st == _ST_FAILING or st == _ST_WAITKEYS:
        return
    c.proc = st  # remember the procedure while waiting for a possible DISCONNECT
    c.state = _ST_FAILING
    c.flags &= ~_F_APART
    c.deadline = time.ticks_add(sm._ms(), _GRACE_MS)


def on_passkey(sm, h, action, number):
    c = sm._links.get(h)
    if c is None:
        return
    if c.state not in (_ST_PAIRING, _ST_REQUESTED) or not (c.flags & _F_ACCEPTED):
        incoming(sm, c, None)
    if c.flags & _F_REJECT or c.state != _ST_PAIRING:
        if action == _PASSKEY_ACTION_NUMERIC_COMPARISON:
            sm._ble.gap_passkey(h, action, 0)
        return
    m = 4 if action == _PASSKEY_ACTION_NUMERIC_COMPARISON else 2
    if not sm.methods & m:
        # F4 (method confusion): the peer's IO capabilities chose a method the application does
        # not allow. Refuse before any code is shown or asked for: keys refused, link dropped
        # (a comparison is answered "no" first: the peer gets Pairing Failed 0x0C).
        c.flags |= _F_REJECT
        if m == 4:
            try:
                sm._ble.gap_passkey(h, action, 0)
            except OSError:
                pass
        fail(sm, c, _METHOD_NOT_ALLOWED)
        return
    c.state = _ST_PAIRING
    c.flags |= _F_PROMPT
    c.flags &= ~_F_CENTRAL_WD
    c.t0 = sm._ms()
    c.deadline = time.ticks_add(c.t0, sm.prompt_timeout_ms)
    if action == _PASSKEY_ACTION_DISPLAY:
        pk = sm._static if sm._static is not None else random_passkey()
        c.number = pk
        sm._ble.gap_passkey(h, action, pk)
        c.flags |= _F_ANSWERED
        sm._emit(_PASSKEY_NOTIF_EVT, h, pk)
        agent(sm, "display", h, pk)
    elif action == _PASSKEY_ACTION_INPUT:
        c.action = action
        sm._emit(_PASSKEY_REQ_EVT, h, None)
        if c.action == action:
            pk = agent(sm, "enter", h)
            if pk is not None and c.action == action:
                passkey_reply(sm, h, True, pk)
    elif action == _PASSKEY_ACTION_NUMERIC_COMPARISON:
        c.action = action
        c.number = number
        c.sc = 1  # numeric comparison exists only in LE Secure Connections
        sm._emit(_NC_REQ_EVT, h, number)
        if c.action == action:
            ok = agent(sm, "confirm", h, number)
            if ok is not None and c.action == action:
                confirm_reply(sm, h, bool(ok))
    else:
        _log("conn %d: passkey action %r not supported by the firmware" % (h, action))


def on_get(sm, sec_type, kb, r):
    # GET_SECRET(sec_type, 0, kb) answered r by the store, while links exist: what the look-up
    # tells about a pairing starting on one of them. Returns what the firmware gets.
    now = sm._ms()
    if sec_type == _SEC_TYPE_OUR and kb == _ZERO7:
        # NimBLE's bond-count check: a pairing is starting. Our own central gap_pair makes
        # one too: that one does not announce an incoming pairing.
        for c in sm._links.values():
            if c.role != _ROLE_CENTRAL or c.flags & _F_MARKED:
                continue
            if c.state == _ST_ENCRYPTING:
                # The peripheral refused our stored key and NimBLE pairs afresh by itself:
                # a pairing like any other (the policy runs; the repeat rule guards the bond).
                incoming(sm, c, None)
            if c.state == _ST_PAIRING and time.ticks_diff(now, c.t0) < _MARK_MS:
                c.flags |= _F_MARKED
                return r
        sm._mark = now
        return r
    if sec_type == _SEC_TYPE_PEER:
        marked = sm._mark is not None and time.ticks_diff(now, sm._mark) < _MARK_MS
        c = find_key(sm, kb, _ROLE_PERIPHERAL)
        if c is not None and (marked or c.state == _ST_REQUESTED):
            # The repeat-pairing look-up after NimBLE's bond-count look-up (if it makes one:
            # BLE_SM_BONDING builds), or the central answering our Security Request. Else it
            # may be a GATT permission check: the pairing is noticed at its next step.
            sm._mark = None
            # An incoming pairing; r = the bond it would replace. Refused: say "no bond", so
            # that NimBLE does not delete the bond for a pairing that will not complete.
            return r if incoming(sm, c, r) else None
        c = find_key(sm, kb, _ROLE_CENTRAL)
        if c is None:
            return r
        info = blob_info(r)
        found = info[0] > 0
        if c.state == _ST_PAIRING and c.flags & _F_LOCAL:
            if found:
                c.state = _ST_ENCRYPTING  # gap_pair with a bond: re-encryption
                c.sc = info[2]
                c.old = info  # a key-missing re-pair would replace it: repeat rule (F8)
        elif not c.busy or c.state == _ST_REPORTED:
            # The peripheral sent a Security Request: NimBLE encrypts or pairs by itself.
            if found:
                begin(sm, c, 0)
                c.state = _ST_ENCRYPTING
                c.sc = info[2]
                c.old = info
                sm._emit(_SEC_REQ_EVT, c.handle, (c.addr_type, c.addr))
            else:
                incoming(sm, c, None)
        return r
    if sec_type == _SEC_TYPE_OUR:
        c = find_key(sm, kb, _ROLE_PERIPHERAL)
        if c is None:
            return r
        # The central's LTK request: re-encryption with a stored bond.
        begin(sm, c, 0)
        c.state = _ST_ENCRYPTING
        if r is None:
            report(sm, c, False, _KEY_MISSING)  # negative reply: no update will come
        else:
            c.sc = blob_info(r)[2]
    return r


def check(sm, c, rule, conn, attr_handle, write):
    # GATT authorization (SecurityManager.check): c is the Link of conn or None; rule is
    # (level, min_key_size, authorize) from protect()
    level, mks, authorize = rule
    if c is None or (c.state == _ST_REPORTED and c.flags & _F_REJECT):
        # (a link refused after it was encrypted is refused here at once, not at its DISCONNECT)
        return _ATT_INSUFFICIENT_AUTHENTICATION
    if c.level < level:
        if not c.enc:
            return _ATT_INSUFFICIENT_ENCRYPTION if has_bond(sm, c) else _ATT_INSUFFICIENT_AUTHENTICATION
        return _ATT_INSUFFICIENT_AUTHENTICATION
    if mks and c.key_size < mks:
        return _ATT_INSUFFICIENT_KEY_SIZE
    if authorize is not None:
        ok = False
        try:
            ok = authorize(conn, attr_handle, write)
        except Exception as e:  # noqa: BLE001 (an application error denies)
            _log("authorize callback raised", e)
        if not ok:
            return _ATT_INSUFFICIENT_AUTHORIZATION
    return 0


def has_bond(sm, c):
    try:
        return sm.store.find(c.addr_type, c.addr) is not None
    except Exception:  # noqa: BLE001
        return False


def _tid():
    # The calling thread: on ESP32 the NimBLE task runs IRQs too (notifications it sends by itself)
    try:
        import _thread

        return _thread.get_ident()
    except ImportError:
        return 0


def gatt(sm, rule, conn, attr_handle, write):
    # SecurityManager.check for a protected handle. conn 65535: the firmware reads the value to
    # notify or indicate it (ble_gattc_notify_custom / ble_gattc_indicate_custom with no data, also
    # for every subscriber of gatts_write(send_update=True)) and Python is not told to whom (nor who
    # subscribed: NimBLE keeps the CCCDs): the link notify() is sending to in this thread, else
    # every link must qualify.
    if conn == _CONN_HANDLE_NONE:
        n = sm._notify_to
        if n is None or n[1] != _tid():
            for c in sm._links.values():
                r = check(sm, c, rule, c.handle, attr_handle, False)
                if r:
                    return r
            return 0
        conn = n[0]
    return check(sm, sm._links.get(conn), rule, conn, attr_handle, write)


def notify(sm, conn, attr_handle, data, indicate):
    # SecurityManager.notify (see its docstring)
    h = getattr(attr_handle, "_value_handle", attr_handle)
    if sm.check(conn, h):
        return False
    sm._notify_to = (conn, _tid())  # the firmware's read (conn 65535) in this call, in this thread
    try:
        (sm._ble.gatts_indicate if indicate else sm._ble.gatts_notify)(conn, h, data)
        return True
    except OSError:
        return False
    finally:
        sm._notify_to = None
