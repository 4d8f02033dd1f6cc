"""SecurityManager: pairing, bonding, security levels and GATT authorization on stock ESP32
MicroPython firmware, with ESP-IDF's GAP SMP vocabulary.

    from blesmp.manager import SecurityManager
    from blesmp.const import *
    sm = SecurityManager(bluetooth.BLE(), io=IO_DISPLAY_YESNO, mitm=True, callback=cb, handler=my_irq)

ESP-IDF mapping (README "SecurityManager" has the full table):
    esp_ble_gap_set_security_param  -> SecurityManager(...) / set_security_param(...)
    esp_ble_set_encryption          -> set_encryption(conn, SEC_ENCRYPT|SEC_ENCRYPT_NO_MITM|SEC_ENCRYPT_MITM)
    esp_ble_gap_security_rsp        -> security_rsp(conn, accept)
    esp_ble_passkey_reply           -> passkey_reply(conn, accept, passkey)
    esp_ble_confirm_reply           -> confirm_reply(conn, accept)
    esp_ble_remove_bond_device      -> remove_bond_device(addr_type, addr)
    esp_ble_get_bond_device_list    -> get_bond_device_list(); _num -> get_bond_device_num()
    ESP_GAP_BLE_*_EVT               -> callback(event, conn, value): SEC_REQ_EVT, PASSKEY_NOTIF_EVT,
                                       PASSKEY_REQ_EVT, NC_REQ_EVT, AUTH_CMPL_EVT (AuthResult),
                                       BOND_ADDED_EVT / BOND_REMOVED_EVT (Bond), PROMPT_CANCEL_EVT

What the firmware shows Python, and how the manager uses it:
  * Pairing start: NimBLE's bond-count check GET_SECRET(1, 0, 7 zero bytes) precedes every pairing;
    as peripheral it is followed by the repeat-pairing look-up GET_SECRET(2, 0, peer) which names
    the peer. As central, gap_pair() first looks up GET_SECRET(2, 0, peer): found -> re-encryption.
    A GET_SECRET(2, 0, peer) on a central link we did not call gap_pair() on = the peer sent a
    Security Request.
  * Re-encryption as peripheral: GET_SECRET(1, 0, peer) (the LTK request). If we have no bond the
    firmware sends a negative reply and no ENCRYPTION_UPDATE ever comes: AUTH_CMPL KEY_MISSING is
    reported at once.
  * Result: _IRQ_ENCRYPTION_UPDATE (conn, encrypted, authenticated, bonded, key_size), without the
    failure status and without an SC flag. `sc` comes from the key blob NimBLE stores
    (SET_SECRET, flags bit "sc"), from a numeric comparison having happened (NC exists only in
    LE Secure Connections) or, on re-encryption, from the stored bond. Without bonding and
    without NC it is unknown (None) and level 4 cannot be proven.
  * Failure reasons are inferred: REJECTED (we said no), PROMPT_TIMEOUT, LINK_LOST (DISCONNECT
    right after the failed update), SMP_TIMEOUT (>= 29 s without progress), KEY_TOO_SHORT,
    LEGACY_UNDER_SC_ONLY, WEAKER_THAN_BOND, AUTH_FAILED (a passkey/NC step happened, then the
    pairing failed: mismatch or the peer's user cancelled), PEER_FAILED (anything else),
    CENTRAL_NO_PROMPTS, REPEATED_ATTEMPTS, NOT_IN_WINDOW, NOT_ALLOWED, KEY_MISSING.
  * Rejecting on stock firmware: there is no hook before NimBLE answers a Pairing Request. The
    manager notices the pairing at its first store look-up, refuses every SET_SECRET of that
    pairing (keys are never stored), answers a numeric comparison with "no" (the peer gets
    Pairing Failed 0x0C) and disconnects the link (the peer sees HCI 0x13, not Pairing Failed
    0x09). AUTH_CMPL(REJECTED / REPEATED_ATTEMPTS / NOT_IN_WINDOW / NOT_ALLOWED) is reported at once.
  * Central role: the firmware never forwards passkey/NC prompts when the ESP32 is central
    (micropython#17805). Level >= 3 as central fails at once with CENTRAL_NO_PROMPTS; a central
    pairing that could need a prompt (our io != NoInputNoOutput: the peer may ask for MITM) fails
    after central_stall_ms (5 s) instead of stalling for the 30 s SMP timeout. A central
    re-encryption the peer refuses, which NimBLE turns into a fresh pairing (its bond-count
    look-up shows it), is reported as that pairing; it would replace the bond, so the
    repeat-pairing rule below applies to it as well (keys refused, link dropped: F8).
  * Repeat pairing: a refused pairing of a bonded peer answers the repeat-pairing look-up with
    "no bond", so NimBLE deletes nothing; an accepted one lets NimBLE delete (the store hides the
    bond) and store.pairing_done() restores it unless the new keys are stored.

Time: deadlines (prompt timeout, SMP watchdog, back-off) use time.ticks_ms and are checked on
every IRQ and by poll(). Something must call poll() while nothing else happens: by default a
machine.Timer (`timer=0`, period 250 ms; its callback is scheduled, not a hard IRQ, on ESP32);
`timer=None` leaves it to the application (blesmp.aio runs it in a task).

No exception escapes the IRQ handler: errors (Exception, KeyboardInterrupt) from the manager, the
store, agents and application callbacks are printed (sys.print_exception) and the event gets a
safe answer (GET_SECRET: None, SET_SECRET: False, READ_REQUEST: the manager's verdict, or
0x0E Unlikely Error if the manager itself failed on it: a protected value is never read by accident).
"""

import os
import sys
import time

import micropython
from micropython import const

from .blob import addr_key as _key7  # NimBLE's ble_addr_t as the store key: type, address LSB first
from .blob import info as blob_info

# blesmp.const is not imported here: its names are folded below, and the name tables for
# reprs/logs live in blesmp._cold (imported only when text is needed).

# Copies of the blesmp.const values used here: const() folds them into the bytecode.
_AUTH_CMPL_EVT = const(5)
_AUTH_FAILED = const(0x28)
_BOND_ADDED_EVT = const(6)
_BOND_REMOVED_EVT = const(7)
_BUSY = const(0x2E)
_CENTRAL_NO_PROMPTS = const(0x2A)
_CONN_HANDLE_NONE = const(65535)
_IO_NO_INPUT_OUTPUT = const(3)
_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_ENCRYPTION_UPDATE = const(28)
_IRQ_GATTS_READ_REQUEST = const(4)
_IRQ_GATTS_WRITE = const(3)
_IRQ_GET_SECRET = const(29)
_IRQ_PASSKEY_ACTION = const(31)
_IRQ_PERIPHERAL_CONNECT = const(7)
_IRQ_PERIPHERAL_DISCONNECT = const(8)
_IRQ_SET_SECRET = const(30)
_KEY_MISSING = const(0x2D)
_KEY_TOO_SHORT = const(0x24)
_LEGACY_UNDER_SC_ONLY = const(0x25)
_LEVEL_ENCRYPT = const(2)
_LEVEL_MITM = const(3)
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
_ATT_UNLIKELY_ERROR = const(0x0E)
_ROLE_CENTRAL = const(0)
_ROLE_PERIPHERAL = const(1)
_SEC_ENCRYPT = const(1)
_SEC_ENCRYPT_MITM = const(3)
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
_F_OURS = const(145)  # _F_LOCAL | _F_ACCEPTED | _F_SECREQ: the application asked, nobody to ask

_GRACE_MS = const(250)  # wait for a DISCONNECT after a failed update
_KEYS_WAIT_MS = const(500)  # wait for SET_SECRET after an update (older order)
_MARK_MS = const(1000)  # a bond-count look-up marks a pairing start for this long
_BACKOFF_SLOTS = const(8)

_ZERO7 = bytes(7)


def _log(msg, exc=None):
    print("blesmp:", msg)
    if exc is not None:
        pe = getattr(sys, "print_exception", None)
        if pe is not None:
            pe(exc)
        else:  # CPython (the simulator)
            print("  %s: %s" % (type(exc).__name__, exc))


def _drop(name):
    # Cold code imported for one call (blesmp._setup): give its RAM back on the board. CPython
    # keeps it (there is no heap to save there, and tests re-import cheaply).
    if sys.implementation.name != "micropython":
        return
    sys.modules.pop("blesmp." + name, None)
    try:
        del sys.modules["blesmp"].__dict__[name]
    except Exception:  # noqa: BLE001
        pass


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
        self.bonded = c.bonded
        self.key_size = c.key_size
        self.sc = c.sc
        self.level = level_of(c.enc, c.auth, c.sc, c.key_size)
        self.reencrypt = c.state == _ST_ENCRYPTING

    def __repr__(self):
        from ._cold import repr_of  # the text lives in the cold module

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


class SecurityManager:
    """See the module docstring. Arguments (all keyword):

    store          a BondStore (lib/blesmp/store.py); None = BondStore("bonds.db", max_bonds=...)
    io, bond, mitm, sc   -> ble.config(io=, bond=, mitm=, le_secure=) (ESP_BLE_SM_IOCAP_MODE,
                   ESP_BLE_SM_AUTHEN_REQ_MODE)
    min_key_size   7..16 (default 16): shorter keys are disconnected (KNOB)
    sc_only        Mode 1 Level 4: every encrypted link must reach level 4 (sets mitm, sc, 16)
    level          level every encrypted link must reach (1 = no requirement)
    max_bonds      passed to the default store
    agent          where passkeys and confirmations come from (blesmp.agents)
    callback       callback(event, conn, value) for the *_EVT events
    handler        the application's own IRQ handler; the manager chains to it
    window         True: new pairings only while open_window() is open ("press to pair")
    allow          None or a list of (addr_type, addr) identities allowed to pair
    repeat         "stronger" (default): a bonded peer may re-pair only if the new bond is at least
                   as strong, and outside the window only if authenticated; "deny"; "allow"
    prompt_timeout_ms  default 25000, below the 30 s SMP timeout
    backoff_ms     waiting interval after a failed pairing (from the first; doubles per further
                   failure, 64x max; per peer identity where known)
    resolver       optional blesmp.resolver.Resolver: a bonded peer's RPA counts as its identity
                   for the back-off
    methods        None (all) or the allowed association models: a set of METHOD_JUST_WORKS,
                   METHOD_PASSKEY, METHOD_NUMERIC_COMPARISON (or their bits OR-ed). A pairing that
                   turns out to use another one is refused before any code is shown or asked for
                   (Just Works: when it completes): METHOD_NOT_ALLOWED, keys refused, link dropped
    insecure_static_passkey   an int shown for every DISPLAY pairing instead of a fresh random one
                   (defeats passkey entry against an active attacker; for demos only)
    central_prompts   True only on firmware that forwards prompts to a central (patched)
    timer          machine.Timer id driving poll() every 250 ms, or None
    clock          the millisecond tick source (default time.ticks_ms)
    active         call ble.active(True) after installing the handler (default True)
    """

    def __init__(self, ble, store=None, io=_IO_NO_INPUT_OUTPUT, bond=True, mitm=False, sc=True,
                 min_key_size=16, sc_only=False, level=1, max_bonds=8, agent=None, callback=None,
                 handler=None, window=False, allow=None, repeat="stronger", prompt_timeout_ms=25000,
                 backoff_ms=2000, insecure_static_passkey=None, central_prompts=False,
                 central_stall_ms=5000, timer=0, clock=None, active=True, resolver=None, methods=None):
        self._ble = ble
        self.resolver = resolver  # optional blesmp.resolver.Resolver: back-off by identity
        m = 7
        if methods is not None:  # METHOD_* bits: OR them (a set or a list of them, or one int)
            m = 0
            for x in ((methods,) if isinstance(methods, int) else methods):
                m |= x
            if not 0 < m < 8:
                raise ValueError("methods: METHOD_JUST_WORKS, METHOD_PASSKEY, METHOD_NUMERIC_COMPARISON")
        self.methods = m
        self._ms = clock or time.ticks_ms  # a ticks_ms-like clock (tests pass a fake one)
        from . import _setup

        try:
            _setup.init(self, store, max_bonds, allow, repeat, insecure_static_passkey)
            self.agent = agent
            self.callback = callback
            self.handler = handler
            self.window = window
            self._win_until = None
            self.prompt_timeout_ms = prompt_timeout_ms
            self.backoff_ms = backoff_ms
            self.central_prompts = central_prompts
            self.central_stall_ms = central_stall_ms
            self._links = {}
            self._backoff = {}  # key7 -> [failures, until_ms or None]
            self._mark = None  # ticks of the last bond-count look-up (a pairing is starting)
            self._disc = []  # handles to disconnect once outside a store callback
            self._flush_cb = self._flush
            self._flush_queued = False
            self._in_store = False
            self._authz = {}  # attr handle -> (level, min_key_size, authorize callback)
            _setup.set_param(self, io, bond, mitm, sc, min_key_size, sc_only, level)
            sub = getattr(self.store, "subscribe", None)
            if sub is not None:
                sub(self._on_store)
            ble.irq(self._irq)  # before active(True): the store sees the IRK restore at start-up
            self._timer = _setup.timer(self, timer)
        finally:
            _drop("_setup")
        if active:
            ble.active(True)

    # -- configuration (esp_ble_gap_set_security_param) -----------------------------------
    def set_security_param(self, io=None, bond=None, mitm=None, sc=None, min_key_size=None,
                           sc_only=None, level=None):
        """Changes the security parameters (the firmware's are global: they apply to the next
        pairing on every link). Refuses impossible combinations with ValueError."""
        from . import _setup

        try:
            _setup.set_param(self, io, bond, mitm, sc, min_key_size, sc_only, level)
        finally:
            _drop("_setup")

    io = _IO_NO_INPUT_OUTPUT
    bond = True
    mitm = False
    sc = True
    min_key_size = 16
    sc_only = False
    level = 1

    # -- public API ------------------------------------------------------------------------
    def irq(self, handler):
        """Sets the application's own IRQ handler (what it would have passed to ble.irq)."""
        self.handler = handler

    def register_callback(self, callback):
        """esp_ble_gap_register_callback: callback(event, conn, value)."""
        self.callback = callback

    def state(self, conn):
        """The Link of a connection handle (None if unknown): level, enc, auth, bonded, key_size, sc."""
        return self._links.get(self._handle(conn))

    def connections(self):
        return list(self._links.values())

    def _start(self, conn, level=None):
        """Secures a link (esp_ble_set_encryption): pairs, or re-encrypts with a stored bond.
        As peripheral this sends a Security Request; the central decides. The result comes as
        AUTH_CMPL_EVT (and in state(conn).result). Returns False if it could not start (an
        AUTH_CMPL with the reason was reported). Public as pair(); internal callers use _start
        (blesmp.aio overrides pair with a coroutine)."""
        c = self.state(conn)
        if c is None:
            raise ValueError("not connected: %r" % (conn,))
        if level is not None:
            if not 1 <= level <= 4:
                raise ValueError("level must be 1..4")
            c.want = level
        if c.busy:
            return True  # already running: its AUTH_CMPL will come
        want = max(c.want, self.level)
        if c.role == _ROLE_CENTRAL and want >= 3 and not self.central_prompts:
            self._begin(c, _F_OURS)
            self._fail(c, _CENTRAL_NO_PROMPTS, disconnect=False)
            return False
        if c.enc and c.level >= want and c.key_size >= self._min_ks(c):
            self._begin(c, _F_OURS)
            c.state = _ST_ENCRYPTING
            self._report(c, True, _OK)
            return True
        self._begin(c, _F_OURS)
        if c.role == _ROLE_PERIPHERAL:
            c.state = _ST_REQUESTED
            c.deadline = time.ticks_add(self._ms(), _SMP_TIMEOUT_MS)
        try:
            self._ble.gap_pair(c.handle)
        except OSError as e:
            c.state = _ST_PAIRING
            self._fail(c, _BUSY if e.args and e.args[0] in (114, 120) else _UNSPECIFIED, disconnect=False)
            return False
        return True

    pair = _start  # one function object for both names (each costs heap)

    def set_encryption(self, conn, action=_SEC_ENCRYPT):
        """esp_ble_set_encryption(addr, ESP_BLE_SEC_ENCRYPT / _NO_MITM / _MITM)."""
        return self._start(conn, _LEVEL_MITM if action == _SEC_ENCRYPT_MITM else _LEVEL_ENCRYPT)

    def require(self, conn, level, min_key_size=None, start=True):
        """The link must reach `level` (and key size): starts pairing if below; a link that ends
        below it (or is re-encrypted below it later) is disconnected (LEVEL_TOO_LOW)."""
        c = self.state(conn)
        if c is None:
            raise ValueError("not connected: %r" % (conn,))
        if not 1 <= level <= 4:
            raise ValueError("level must be 1..4")
        c.want = level
        if min_key_size is not None:
            c.want_ks = min_key_size
        if start and (c.level < level or (c.enc and c.key_size < self._min_ks(c))):
            return self._start(c.handle)
        return True

    def security_rsp(self, conn, accept):
        """esp_ble_gap_security_rsp: accept or refuse the pairing SEC_REQ_EVT announced. Refusing
        drops the link (the firmware has no other way) and stores no keys."""
        c = self.state(conn)
        if c is None or not c.busy:
            return False
        if accept:
            c.flags |= _F_ACCEPTED
        else:
            self._reject(c, _REJECTED)
        return True

    def passkey_reply(self, conn, accept, passkey=0):
        """esp_ble_passkey_reply: the passkey the peer displays (PASSKEY_REQ_EVT)."""
        c = self.state(conn)
        if c is None or c.action != _PASSKEY_ACTION_INPUT:
            return False
        if accept:
            self._check_pk(passkey)
        c.action = 0
        c.flags = (c.flags | _F_ANSWERED) & ~_F_PROMPT
        if not accept:
            self._reject(c, _REJECTED)
            return True
        self._watchdog(c)
        try:
            self._ble.gap_passkey(c.handle, _PASSKEY_ACTION_INPUT, passkey)
        except OSError as e:
            _log("gap_passkey failed", e)
            return False
        return True

    def confirm_reply(self, conn, accept):
        """esp_ble_confirm_reply: does the number of NC_REQ_EVT match the peer's? No -> the peer
        gets Pairing Failed 0x0C and AUTH_CMPL(REJECTED) comes at once."""
        c = self.state(conn)
        if c is None or c.action != _PASSKEY_ACTION_NUMERIC_COMPARISON:
            return False
        c.action = 0
        c.flags = (c.flags | _F_ANSWERED) & ~_F_PROMPT
        try:
            self._ble.gap_passkey(c.handle, _PASSKEY_ACTION_NUMERIC_COMPARISON, 1 if accept else 0)
        except OSError as e:
            _log("gap_passkey failed", e)
        if accept:
            self._watchdog(c)
        else:
            c.flags |= _F_REJECT
            self._fail(c, _REJECTED, disconnect=False)
        return True

    def open_window(self, seconds=60):
        """Opens the pairing window (user action, e.g. a button): new pairings are accepted
        for `seconds` when window=True."""
        self._win_until = time.ticks_add(self._ms(), int(seconds * 1000))

    def close_window(self):
        self._win_until = None

    def window_open(self):
        return self._win_until is not None and time.ticks_diff(self._win_until, self._ms()) > 0

    def allow(self, addr_type, addr):
        """Adds a peer identity to the allow-list (creating it: then only listed peers pair)."""
        if self._allow is None:
            self._allow = []
        self._allow.append(_key7(addr_type, bytes(addr)))

    def protect(self, attr_handle, level=_LEVEL_ENCRYPT, min_key_size=0, authorize=None):
        """GATT authorization for one characteristic value handle: reads below `level` (or key
        size) get the ATT error the spec names; authorize(conn, attr_handle, write) -> bool decides
        the rest (False -> 0x08). Writes cannot be refused by stock firmware (the value is in the
        database before _IRQ_GATTS_WRITE): a write that fails the check is not passed to the
        application's handler, and the link is reported. Use the firmware's _FLAG_WRITE_ENCRYPTED /
        _FLAG_WRITE_AUTHENTICATED flags to keep writes out before they land."""
        from ._gatt import check  # noqa: F401 (loaded here, at set-up, rather than in the IRQ)

        self._authz[attr_handle] = (level, min_key_size, authorize)

    def check(self, conn, attr_handle, write=False):
        """0 if `conn` may access `attr_handle`, else the ATT error code."""
        rule = self._authz.get(attr_handle)
        if rule is None or conn == _CONN_HANDLE_NONE:
            return 0
        from ._gatt import check  # loaded by protect() already: no file access in the IRQ

        return check(self, self._links.get(conn), rule, conn, attr_handle, write)

    # bonds (esp_ble_get_bond_device_list / _num, esp_ble_remove_bond_device)
    def get_bond_device_list(self):
        return self.store.bonds()

    def get_bond_device_num(self):
        return len(self.store.bonds())

    def remove_bond_device(self, addr_type, addr):
        """Deletes a bond and drops its link if connected. The firmware keeps the peer's IRK in its
        resolving list until the next restart (it has no gap_unpair)."""
        addr = bytes(addr)
        ok = self.store.remove(addr_type, addr)
        k = _key7(addr_type, addr)
        for c in list(self._links.values()):
            if c.key == k:
                self._disconnect(c.handle)
        return ok

    def clear_bonds(self):
        self.store.clear()

    def poll(self):
        """Runs due deadlines (prompt timeouts, watchdogs). Cheap; call it every ~250 ms if no
        timer does."""
        try:
            self._tick()
            self._flush(None)
        except Exception as e:  # noqa: BLE001 (never let a poll kill the caller's loop)
            _log("poll failed", e)

    def deinit(self):
        """Stops the timer, leaves the store and gives ble.irq back to the application's handler."""
        if self._timer is not None:
            self._timer.deinit()
            self._timer = None
        unsub = getattr(self.store, "unsubscribe", None)
        if unsub is not None:
            unsub(self._on_store)
        self._ble.irq(self.handler)

    def status(self):
        """Prints the configuration, the connections with their security, and the bonds."""
        from ._cold import status

        status(self)

    # -- internals ---------------------------------------------------------------------------
    def _handle(self, conn):
        if isinstance(conn, int):
            return conn
        return getattr(conn, "_conn_handle", conn)  # aioble DeviceConnection

    @staticmethod
    def _check_pk(pk):
        if not isinstance(pk, int) or not 0 <= pk <= 999999:
            raise ValueError("passkey must be an int 0..999999")

    def _min_ks(self, c):
        return max(self.min_key_size, c.want_ks)

    def _emit(self, event, conn, value=None):
        cb = self.callback
        if cb is not None:
            try:
                cb(event, conn, value)
            except Exception as e:  # noqa: BLE001 (an application bug must not stop pairing)
                from ._cold import event_name

                _log("callback raised on %s" % event_name(event), e)

    def _agent(self, name, *args):
        a = self.agent
        f = getattr(a, name, None) if a is not None else None
        if f is None:
            return None
        try:
            return f(self, *args)
        except Exception as e:  # noqa: BLE001
            _log("agent.%s raised" % name, e)
            return None

    def _disconnect(self, handle):
        if self._in_store:
            # No BLE calls from inside a secret-store callback (NimBLE holds its host lock).
            if handle not in self._disc:
                self._disc.append(handle)
            if not self._flush_queued:
                try:
                    micropython.schedule(self._flush_cb, None)
                    self._flush_queued = True
                except RuntimeError:
                    pass  # queue full: the next IRQ or poll() flushes
            return
        try:
            self._ble.gap_disconnect(handle)
        except OSError:
            pass

    def _flush(self, _):
        self._flush_queued = False
        while self._disc:
            h = self._disc.pop(0)
            try:
                self._ble.gap_disconnect(h)
            except OSError:
                pass

    def _begin(self, c, flags):
        # A new procedure on c (pairing unless proven otherwise).
        c.state = _ST_PAIRING
        c.flags = flags
        c.t0 = self._ms()
        c.action = 0
        c.number = 0
        c.old = None
        self._watchdog(c)

    def _watchdog(self, c):
        # No SMP progress for 30 s: the firmware's SMP timer fires; ours a bit later, in case the
        # firmware's update never comes (link gone quiet).
        c.t0 = self._ms()
        c.flags &= ~(_F_PROMPT | _F_CENTRAL_WD)
        if c.role == _ROLE_CENTRAL and not self.central_prompts and self.io != _IO_NO_INPUT_OUTPUT:
            c.flags |= _F_CENTRAL_WD
            c.deadline = time.ticks_add(c.t0, self.central_stall_ms)
        else:
            c.deadline = time.ticks_add(c.t0, _SMP_TIMEOUT_MS + 2000)

    def _report(self, c, success, reason):
        r = AuthResult(c, success, reason)
        c.result = r
        c.state = _ST_IDLE if success else _ST_REPORTED
        c.deadline = None
        if c.action:
            c.action = 0
            self._emit(_PROMPT_CANCEL_EVT, c.handle)
            self._agent("cancel", c.handle)
        k = self._bkey(c)
        if success:
            self._backoff.pop(k, None)
        elif not r.reencrypt and reason not in (_REPEATED_ATTEMPTS, _CENTRAL_NO_PROMPTS, _BUSY, _NOT_IN_WINDOW,
                                                _NOT_ALLOWED, _KEY_MISSING):
            # Count the failed pairing (policy refusals are not attempts: opening the window works at
            # once; a failed re-encryption is no pairing: nothing was guessed).
            b = self._backoff.get(k)
            if b is None:
                if len(self._backoff) >= _BACKOFF_SLOTS:
                    # forget the entry with the fewest failures
                    drop = min(self._backoff, key=lambda x: self._backoff[x][0])
                    del self._backoff[drop]
                b = self._backoff[k] = [0, None]
            b[0] += 1
            if self.backoff_ms:
                # The spec's waiting interval (Vol 3 Part H 2.3.6) after every failed pairing:
                # backoff_ms after the first, doubling with every further one, up to 64x.
                b[1] = time.ticks_add(self._ms(), self.backoff_ms << min(b[0] - 1, 6))
        self._emit(_AUTH_CMPL_EVT, c.handle, r)
        self._agent("done", r)

    def _bkey(self, c):
        # The back-off is per peer identity where known: c.key is the identity address once the
        # firmware resolved the peer or it distributed its keys; else an RPA of a bonded peer is
        # resolved with the application's resolver (if given); else the connection address.
        rv = self.resolver
        if rv is not None and c.addr_type == 1 and c.addr[0] & 0xC0 == 0x40:
            try:
                b = rv.resolve(1, c.addr)
                if b is not None:
                    return _key7(b.addr_type, b.addr)
            except Exception as e:  # noqa: BLE001
                _log("resolver failed", e)
        return c.key

    def _fail(self, c, reason, disconnect=True):
        # Our own decision that the procedure failed: tell the store, report, maybe drop the link.
        self._store_done(c, False)
        self._report(c, False, reason)
        if disconnect:
            self._disconnect(c.handle)  # _F_REJECT + _ST_REPORTED = the link is being dropped
        else:
            c.flags &= ~_F_REJECT

    def _reject(self, c, reason):
        c.flags |= _F_REJECT
        if c.action == _PASSKEY_ACTION_NUMERIC_COMPARISON:
            try:
                self._ble.gap_passkey(c.handle, _PASSKEY_ACTION_NUMERIC_COMPARISON, 0)
            except OSError:
                pass
        self._fail(c, reason)

    def _store_done(self, c, ok):
        # The store's re-pairing transaction: a failed pairing brings a hidden bond back; keys a
        # failed pairing managed to store are removed again. Returns the store's answer.
        if c.flags & _F_DONE:
            return None
        c.flags |= _F_DONE
        f = getattr(self.store, "pairing_done", None)
        if f is None:
            return None
        try:
            r = f(c.addr_type, c.addr, ok, c.bonded)
            if not ok and r == "stored" and c.old is None:
                self.store.remove(c.addr_type, c.addr)
            return r
        except Exception as e:  # noqa: BLE001
            _log("store.pairing_done raised", e)
            return None

    def _incoming(self, c, repeat_blob):
        # A pairing the peer started (or a Security Request to us as central). False = refused.
        if c.state == _ST_REPORTED and c.flags & _F_REJECT:
            return False  # refused already; the link is on its way down
        if c.state == _ST_REQUESTED:
            c.state = _ST_PAIRING  # the central answered our Security Request by pairing
            self._watchdog(c)
        elif not c.busy or c.state == _ST_REPORTED:
            self._begin(c, 0)
        elif c.flags & _F_ACCEPTED:
            return True
        if repeat_blob is not None:
            info = blob_info(repeat_blob)
            if info[0]:
                c.old = info
        # The policy: 0 if a pairing from this peer may go ahead, else the reason to refuse it.
        repeat = c.old is not None
        b = self._backoff.get(self._bkey(c))
        reason = 0
        if c.flags & _F_LOCAL:
            pass  # the application asked for this pairing
        elif b is not None and b[1] is not None and time.ticks_diff(b[1], self._ms()) > 0:
            reason = _REPEATED_ATTEMPTS
        elif self._allow is not None and c.key not in self._allow:
            reason = _NOT_ALLOWED
        elif repeat and self.repeat == "deny":
            reason = _WEAKER_THAN_BOND
        elif self.window and not repeat and not self.window_open():
            reason = _NOT_IN_WINDOW
        if not (c.flags & _F_SECREQ):
            c.flags |= _F_SECREQ
            self._emit(_SEC_REQ_EVT, c.handle, (c.addr_type, c.addr))
            if c.flags & _F_REJECT or c.state == _ST_REPORTED:
                return False  # the application refused in its callback (security_rsp)
            ok = self._agent("accept", c.handle, c.addr_type, c.addr)
            if ok is False and not reason:
                reason = _REJECTED
        if reason:
            self._reject(c, reason)
            return False
        c.flags |= _F_ACCEPTED
        return True

    def _weaker(self, c, ks, auth, sc):
        # Would keys of this strength replace c.old (the bond a repeat pairing deletes) badly?
        if c.old is None or self.repeat == "allow":
            return False
        if self.repeat == "deny":
            return True  # (as central, esp-nimble's key-missing re-pair gets here: F8)
        oks, oauth, osc = c.old
        if ks < oks or (oauth and not auth) or (osc and sc == 0):
            return True
        # Outside the pairing window nobody vouches for the peer: only an authenticated pairing
        # (the user saw a code) may replace a bond (Zephyr: no unauthenticated overwrite).
        return not auth and not self.window_open()

    def _finish(self, c):
        # The link is encrypted (c.enc etc. are current): apply the policy, report.
        reenc = c.state == _ST_ENCRYPTING
        if c.flags & _F_REJECT:
            self._fail(c, _REJECTED)
            return
        reason = 0
        want = max(c.want, self.level)
        lvl = c.level
        if lvl == 3 and c.sc is None and c.key_size == 16:
            # SC cannot be told apart from legacy without stored keys or an NC step (the firmware
            # has no SC flag): an authenticated 16-byte link is taken for level 4 (documented gap).
            lvl = 4
        if c.key_size < self._min_ks(c):
            reason = _KEY_TOO_SHORT
        elif self.sc_only and c.sc == 0:
            reason = _LEGACY_UNDER_SC_ONLY
        elif lvl < want:
            reason = _LEVEL_TOO_LOW
        elif not reenc and not (c.auth or self.methods & 1):
            reason = _METHOD_NOT_ALLOWED  # Just Works (no prompt) while methods= excludes it
        elif not reenc and self._weaker(c, c.key_size, c.auth, c.sc):
            reason = _WEAKER_THAN_BOND
        if not reason and not reenc and c.bonded:
            r = self._store_done(c, True)
            if r == "refused":
                # The store kept the old bond (weaker replacement) or is full (when_full="refuse").
                reason = _WEAKER_THAN_BOND if c.old is not None else _STORE_FULL
        if reason:
            self._fail(c, reason)
            return
        self._store_done(c, True)
        self._report(c, True, _OK)

    def _tick(self):
        now = self._ms()
        for c in list(self._links.values()):
            d = c.deadline
            if d is None or time.ticks_diff(d, now) > 0:
                continue
            c.deadline = None
            st = c.state
            if st == _ST_FAILING:
                c.state = c.proc
                self._fail_update(c)
            elif st == _ST_WAITKEYS:
                c.state = _ST_PAIRING
                self._finish(c)
            elif st in (_ST_PAIRING, _ST_ENCRYPTING, _ST_REQUESTED):
                if c.flags & _F_PROMPT:
                    nc = c.action == _PASSKEY_ACTION_NUMERIC_COMPARISON
                    c.flags |= _F_REJECT
                    if nc:  # a clean refusal: the peer gets Pairing Failed 0x0C
                        try:
                            self._ble.gap_passkey(c.handle, _PASSKEY_ACTION_NUMERIC_COMPARISON, 0)
                        except OSError:
                            pass
                    self._fail(c, _PROMPT_TIMEOUT, disconnect=not nc)
                elif c.flags & _F_CENTRAL_WD:
                    from ._cold import CENTRAL_STALL

                    _log(CENTRAL_STALL % c.handle)
                    self._fail(c, _CENTRAL_NO_PROMPTS)
                elif st == _ST_REQUESTED:
                    self._report(c, False, _PEER_FAILED)  # the central ignored our Security Request
                else:
                    self._fail(c, _SMP_TIMEOUT)

    def _fail_update(self, c):
        # A failed ENCRYPTION_UPDATE, the link apparently still up.
        if c.flags & _F_REJECT:
            reason = _REJECTED
        elif time.ticks_diff(self._ms(), c.t0) >= _SMP_TIMEOUT_MS - 1000:
            reason = _SMP_TIMEOUT
        elif c.flags & _F_ANSWERED:
            reason = _AUTH_FAILED
        elif c.state == _ST_ENCRYPTING:
            reason = _KEY_MISSING  # the peer refused our stored key (it lost the bond)
        else:
            reason = _PEER_FAILED
        self._store_done(c, False)
        self._report(c, False, reason)

    def _poll_cb(self, _t):
        self.poll()

    def _on_store(self, event, bond):
        try:
            if event == "added" or event == "replaced":
                self._emit(_BOND_ADDED_EVT, None, bond)
            elif event == "removed" or event == "cleared":
                self._emit(_BOND_REMOVED_EVT, None, bond)
        except Exception as e:  # noqa: BLE001
            _log("bond event failed", e)

    def _find_key(self, key, role=None):
        for c in self._links.values():
            if c.key == key and (role is None or c.role == role):
                return c
        return None

    # -- the IRQ handler ---------------------------------------------------------------------------
    def _irq(self, event, data):
        try:
            if event == _IRQ_GET_SECRET:
                return self._get_secret(data)
            if event == _IRQ_SET_SECRET:
                return self._set_secret(data)
        except (Exception, KeyboardInterrupt) as e:  # noqa: BLE001
            _log("secret store event failed", e)
            return None if event == _IRQ_GET_SECRET else False
        finally:
            self._in_store = False
        forward = True
        deny = 0
        try:
            if self._disc:
                self._flush(None)
            self._tick()
            if event == _IRQ_CENTRAL_CONNECT or event == _IRQ_PERIPHERAL_CONNECT:
                h, t, a = data
                # (type 255 = a failed connect; a malformed tuple is no connection either)
                if isinstance(h, int) and t in (0, 1) and isinstance(a, (bytes, bytearray, memoryview)) \
                        and len(a) == 6:
                    role = _ROLE_PERIPHERAL if event == _IRQ_CENTRAL_CONNECT else _ROLE_CENTRAL
                    self._links[h] = Link(h, role, t, bytes(a))
            elif event == _IRQ_CENTRAL_DISCONNECT or event == _IRQ_PERIPHERAL_DISCONNECT:
                self._on_disconnect(data[0])
            elif event == _IRQ_ENCRYPTION_UPDATE:
                self._on_encryption(*data)
            elif event == _IRQ_PASSKEY_ACTION:
                forward = False
                self._on_passkey(*data)
            elif event == _IRQ_GATTS_READ_REQUEST:
                deny = self.check(data[0], data[1], False)
            elif event == _IRQ_GATTS_WRITE:
                if self.check(data[0], data[1], True):
                    forward = False
                    _log("conn %d wrote protected handle %d below its level: write not forwarded" % (
                        data[0], data[1]))
        except (Exception, KeyboardInterrupt) as e:  # noqa: BLE001 (never let the firmware remove the handler)
            _log("IRQ %r failed" % (event,), e)
            if event == _IRQ_GATTS_READ_REQUEST:
                deny = _ATT_UNLIKELY_ERROR  # fail closed: the verdict is unknown
        ret = None
        h = self.handler
        if forward and h is not None:
            try:
                ret = h(event, data)
            except (Exception, KeyboardInterrupt) as e:  # noqa: BLE001
                _log("application IRQ handler raised on event %r" % (event,), e)
                ret = None
        if event == _IRQ_GATTS_READ_REQUEST:
            if deny:
                return deny
            return ret if isinstance(ret, int) else 0
        return ret

    def _get_secret(self, data):
        self._in_store = True
        sec_type, index, key = data
        kb = bytes(key) if key is not None else None
        r = self.store.get_secret(sec_type, index, key)
        if r is not None and not isinstance(r, (bytes, bytearray, memoryview)):
            _log("store returned %r for a secret: treated as not found" % type(r))
            r = None
        if kb is None or len(kb) != 7 or index != 0:
            return r
        now = self._ms()
        if sec_type == _SEC_TYPE_OUR and kb == _ZERO7:
            # NimBLE's bond-count check: a pairing is starting. Our own central gap_pair makes
            # one too: that one does not announce an incoming pairing.
            for c in self._links.values():
                if c.role != _ROLE_CENTRAL or c.flags & _F_MARKED:
                    continue
                if c.state == _ST_ENCRYPTING:
                    # The peripheral refused our stored key and NimBLE pairs afresh by itself.
                    c.state = _ST_PAIRING
                    self._watchdog(c)
                if c.state == _ST_PAIRING and time.ticks_diff(now, c.t0) < _MARK_MS:
                    c.flags |= _F_MARKED
                    return r
            self._mark = now
            return r
        if sec_type == _SEC_TYPE_PEER:
            marked = self._mark is not None and time.ticks_diff(now, self._mark) < _MARK_MS
            c = self._find_key(kb, _ROLE_PERIPHERAL) if marked else None
            if c is not None:
                self._mark = None
                # An incoming pairing; r = the bond it would replace. Refused: say "no bond", so
                # that NimBLE does not delete the bond for a pairing that will not complete.
                return r if self._incoming(c, r) else None
            c = self._find_key(kb, _ROLE_CENTRAL)
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
                    self._begin(c, 0)
                    c.state = _ST_ENCRYPTING
                    c.sc = info[2]
                    c.old = info
                    self._emit(_SEC_REQ_EVT, c.handle, (c.addr_type, c.addr))
                else:
                    self._incoming(c, None)
            return r
        if sec_type == _SEC_TYPE_OUR:
            c = self._find_key(kb, _ROLE_PERIPHERAL)
            if c is None:
                return r
            # The central's LTK request: re-encryption with a stored bond.
            self._begin(c, 0)
            c.state = _ST_ENCRYPTING
            if r is None:
                self._report(c, False, _KEY_MISSING)  # negative reply: no update will come
            else:
                c.sc = blob_info(r)[2]
        return r

    def _set_secret(self, data):
        self._in_store = True
        sec_type, key, value = data
        if value is not None and sec_type in (_SEC_TYPE_OUR, _SEC_TYPE_PEER) and key is not None:
            kb = bytes(key)
            c = self._find_key(kb)
            if c is None:
                # The peer distributed an identity address other than its connection address.
                for x in self._links.values():
                    if x.state in (_ST_PAIRING, _ST_WAITKEYS):
                        c = x
                        break
            if c is not None:
                info = blob_info(value)
                c.flags |= _F_SETSEEN
                if c.flags & _F_REJECT:
                    return False  # never store keys of a refused pairing
                if info[0]:
                    ks, auth, sc = info
                    c.sc = sc
                    if (ks < self._min_ks(c) or (self.sc_only and not sc) or self._weaker(c, ks, auth, sc)
                            or level_of(1, auth, sc, ks) < max(c.want, self.level)
                            or not (auth or self.methods & 1)):
                        return False  # _finish reports why and drops the link
                if len(kb) == 7 and c.key != kb:
                    c.key = kb  # now known by its identity address
                    c.addr_type = kb[0]
                    c.addr = bytes(kb[6 - i] for i in range(6))
                ok = self.store.set_secret(sec_type, key, value)
                if ok:
                    c.flags |= _F_KEYS
                if sec_type == _SEC_TYPE_PEER and c.state == _ST_WAITKEYS:
                    c.state = _ST_PAIRING
                    c.deadline = None
                    self._finish(c)  # inside a store callback: disconnects are deferred
                return ok
        return self.store.set_secret(sec_type, key, value)

    def _on_disconnect(self, h):
        c = self._links.pop(h, None)
        if c is None:
            return
        self._disc = [x for x in self._disc if x != h]
        st = c.state
        if st == _ST_FAILING:
            c.state = c.proc
            self._store_done(c, False)
            self._report(c, False, _REJECTED if c.flags & _F_REJECT else _LINK_LOST)
        elif st == _ST_WAITKEYS:
            c.state = _ST_PAIRING
            self._finish(c)
        elif st in (_ST_PAIRING, _ST_ENCRYPTING, _ST_REQUESTED):
            self._store_done(c, False)
            self._report(c, False, _REJECTED if c.flags & _F_REJECT else _LINK_LOST)

    def _on_encryption(self, h, enc, auth, bonded, ks):
        c = self._links.get(h)
        if c is None or not isinstance(ks, int):
            return  # (a malformed tuple: a key size that is no int would break every later check)
        st = c.state
        if enc and st == _ST_REPORTED and c.flags & _F_REJECT:
            self._disconnect(h)  # a refused pairing completed before the link dropped
            return
        if enc and st == _ST_FAILING:
            # The pairing failed (e.g. in key distribution) yet the link layer reports encryption:
            # report the failure and do not trust the half-made link.
            c.state = c.proc
            self._fail_update(c)
            self._disconnect(h)
            return
        if enc:
            c.enc, c.auth, c.bonded, c.key_size = 1, 1 if auth else 0, 1 if bonded else 0, ks
            if st == _ST_IDLE or st == _ST_REPORTED or st == _ST_REQUESTED:
                # An encryption nobody announced (e.g. central re-encrypting after our Security
                # Request without a look-up we could see): treat as re-encryption.
                if st != _ST_REQUESTED:
                    self._begin(c, 0)
                c.state = _ST_ENCRYPTING  # (sc from the stored bond: below)
            elif st == _ST_PAIRING and bonded and not (c.flags & (_F_SETSEEN | _F_REJECT)):
                # Older esp-nimble: the update comes before the SET_SECRETs. Wait for them.
                c.state = _ST_WAITKEYS
                c.deadline = time.ticks_add(self._ms(), _KEYS_WAIT_MS)
                return
            if c.sc is None and c.state == _ST_ENCRYPTING:
                try:  # a re-encryption is as SC as the bond it used
                    b = self.store.find(c.addr_type, c.addr)
                except Exception:  # noqa: BLE001
                    b = None
                if b is not None:
                    c.sc = 1 if b.sc else 0
            self._finish(c)
            return
        # Not encrypted: the procedure failed (the firmware does not say why).
        c.enc = c.auth = c.bonded = c.key_size = 0
        if st == _ST_REPORTED:
            c.state = _ST_IDLE  # the late update of a failure already reported
            return
        if st == _ST_IDLE:
            self._begin(c, 0)
            st = _ST_PAIRING
        if st == _ST_FAILING or st == _ST_WAITKEYS:
            return
        c.proc = st  # remember the procedure while waiting for a possible DISCONNECT
        c.state = _ST_FAILING
        c.deadline = time.ticks_add(self._ms(), _GRACE_MS)

    def _on_passkey(self, h, action, number):
        c = self._links.get(h)
        if c is None:
            return
        if c.state not in (_ST_PAIRING, _ST_REQUESTED) or not (c.flags & _F_ACCEPTED):
            self._incoming(c, None)
        if c.flags & _F_REJECT or c.state != _ST_PAIRING:
            if action == _PASSKEY_ACTION_NUMERIC_COMPARISON:
                self._ble.gap_passkey(h, action, 0)
            return
        m = 4 if action == _PASSKEY_ACTION_NUMERIC_COMPARISON else 2
        if not self.methods & m:
            # F4 (method confusion): the peer's IO capabilities chose a method the application does
            # not allow. Refuse before any code is shown or asked for: keys refused, link dropped
            # (a comparison is answered "no" first: the peer gets Pairing Failed 0x0C).
            c.flags |= _F_REJECT
            if m == 4:
                try:
                    self._ble.gap_passkey(h, action, 0)
                except OSError:
                    pass
            self._fail(c, _METHOD_NOT_ALLOWED)
            return
        c.state = _ST_PAIRING
        c.flags |= _F_PROMPT
        c.flags &= ~_F_CENTRAL_WD
        c.t0 = self._ms()
        c.deadline = time.ticks_add(c.t0, self.prompt_timeout_ms)
        if action == _PASSKEY_ACTION_DISPLAY:
            pk = self._static if self._static is not None else random_passkey()
            c.number = pk
            self._ble.gap_passkey(h, action, pk)
            c.flags |= _F_ANSWERED
            self._emit(_PASSKEY_NOTIF_EVT, h, pk)
            self._agent("display", h, pk)
        elif action == _PASSKEY_ACTION_INPUT:
            c.action = action
            self._emit(_PASSKEY_REQ_EVT, h, None)
            if c.action == action:
                pk = self._agent("enter", h)
                if pk is not None and c.action == action:
                    self.passkey_reply(h, True, pk)
        elif action == _PASSKEY_ACTION_NUMERIC_COMPARISON:
            c.action = action
            c.number = number
            c.sc = 1  # numeric comparison exists only in LE Secure Connections
            self._emit(_NC_REQ_EVT, h, number)
            if c.action == action:
                ok = self._agent("confirm", h, number)
                if ok is not None and c.action == action:
                    self.confirm_reply(h, bool(ok))
        else:
            _log("conn %d: passkey action %r not supported by the firmware" % (h, action))
