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
    in the same host delivery as the failed update: blesmp.link.delivery), SMP_TIMEOUT (>= 29 s
    without progress), KEY_TOO_SHORT, LEGACY_UNDER_SC_ONLY, WEAKER_THAN_BOND, AUTH_FAILED (a
    passkey/NC step happened, then the pairing failed: mismatch or the peer's user cancelled, the
    peer maybe leaving after), PEER_FAILED (anything else),
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

Memory: this module holds what runs with no connection (the IRQ dispatch, the secret-store
pass-through, the API). The procedures on a link live in blesmp.link, imported at the first
CONNECT and dropped on MicroPython when the last link is gone (README "Memory on the board").
"""

import sys
import time

import micropython
from micropython import const

from . import _drop, _log
from .secinfo import addr_key as _key7  # NimBLE's ble_addr_t as the store key: type, address LSB first

# blesmp.const is not imported here: its names are folded below, and the name tables for
# reprs/logs live in blesmp.text (imported only when text is needed).

# Copies of the blesmp.const values used here: const() folds them into the bytecode.
_BOND_ADDED_EVT = const(6)
_BOND_REMOVED_EVT = const(7)
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
_LEVEL_ENCRYPT = const(2)
_LEVEL_MITM = const(3)
_ATT_UNLIKELY_ERROR = const(0x0E)
_ROLE_CENTRAL = const(0)
_ROLE_PERIPHERAL = const(1)
_SEC_ENCRYPT = const(1)
_SEC_ENCRYPT_MITM = const(3)
_SEC_TYPE_OUR = const(1)
_SEC_TYPE_PEER = const(2)


class SecurityManager:
    """See the module docstring. SecurityManager(ble, **parameters): the parameters, their
    defaults and checks are one table, blesmp.config.PARAMS (docs/security-manager.md lists it)."""

    def __init__(self, ble, **kw):
        from . import config

        had_link = "blesmp.link" in sys.modules  # (config checks a static passkey with it)
        try:
            active = config.init(self, ble, kw)
        finally:
            _drop("config")
            if not had_link:
                _drop("link")
                _drop("bondrule")
        if active:
            ble.active(True)

    # -- configuration (esp_ble_gap_set_security_param) -----------------------------------
    def set_security_param(self, **kw):
        """Changes the security parameters io, bond, mitm, sc, min_key_size, sc_only, level (the
        firmware's are global: they apply to the next pairing on every link). Refuses impossible
        combinations with ValueError."""
        from . import config

        try:
            config.set_param(self, config.args(kw, 7))
        finally:
            _drop("config")

    io = _IO_NO_INPUT_OUTPUT
    bond = True
    mitm = False
    sc = True
    min_key_size = 16
    sc_only = False
    level = 1
    _notify_to = None  # (connection, thread) of a notify() in progress (see check)

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
        return self._lk().start(self, conn, level)

    pair = _start  # one function object for both names (each costs heap)

    def set_encryption(self, conn, action=_SEC_ENCRYPT):
        """esp_ble_set_encryption(addr, ESP_BLE_SEC_ENCRYPT / _NO_MITM / _MITM)."""
        return self._start(conn, _LEVEL_MITM if action == _SEC_ENCRYPT_MITM else _LEVEL_ENCRYPT)

    def require(self, conn, level, min_key_size=None, start=True):
        """The link must reach `level` (and key size): starts pairing if below; a link that ends
        below it (or is re-encrypted below it later) is disconnected (LEVEL_TOO_LOW)."""
        return self._lk().require(self, conn, level, min_key_size, start)

    def security_rsp(self, conn, accept):
        """esp_ble_gap_security_rsp: accept or refuse the pairing SEC_REQ_EVT announced. Refusing
        drops the link (the firmware has no other way) and stores no keys."""
        return self._lk().security_rsp(self, conn, accept)

    def passkey_reply(self, conn, accept, passkey=0):
        """esp_ble_passkey_reply: the passkey the peer displays (PASSKEY_REQ_EVT)."""
        return self._lk().passkey_reply(self, conn, accept, passkey)

    def confirm_reply(self, conn, accept):
        """esp_ble_confirm_reply: does the number of NC_REQ_EVT match the peer's? No -> the peer
        gets Pairing Failed 0x0C and AUTH_CMPL(REJECTED) comes at once."""
        return self._lk().confirm_reply(self, conn, accept)

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
        """GATT authorization for one characteristic value handle (an int, or an aioble
        Characteristic/Descriptor once registered): reads below `level` 1..4 (or key size 7..16)
        get the ATT error the spec names; authorize(conn, attr_handle, write) -> bool decides the
        rest (False -> 0x08). Bad arguments raise ValueError/TypeError. Notifications and
        indications: the firmware reads a value for them with conn 65535 (gatts_write(...,
        send_update=True), gatts_notify/indicate without data); such a read of a protected handle
        is refused unless every connection qualifies: notify() sends to one qualifying connection.
        Writes cannot be refused by stock firmware (the value is in the database before
        _IRQ_GATTS_WRITE): a write that fails the check is not passed to the application's
        handler, and the link is reported. Use the firmware's _FLAG_WRITE_ENCRYPTED /
        _FLAG_WRITE_AUTHENTICATED flags to keep writes out before they land."""
        from . import config

        try:
            h = config.protect_args(attr_handle, level, min_key_size, authorize)
        finally:
            _drop("config")
        self._authz[h] = (level, min_key_size, authorize)

    def check(self, conn, attr_handle, write=False):
        """0 if `conn` may access `attr_handle`, else the ATT error code. conn 65535 (the firmware
        reading a value to notify/indicate it): the connection notify() is sending to, else every
        connection must qualify."""
        rule = self._authz.get(attr_handle)
        if rule is None or conn == _CONN_HANDLE_NONE and not self._links:
            return 0
        return self._lk().gatt(self, rule, conn, attr_handle, write)

    def notify(self, conn, attr_handle, data=None, indicate=False):
        """gatts_notify / gatts_indicate for a protected value, sent only if `conn` qualifies
        (protect()); data None = the value in the database. Returns True if handed to the
        firmware, False if `conn` is below the level (nothing sent) or the firmware refused.
        Like gatts_notify, the firmware sends whether or not the peer subscribed."""
        return bool(self._links) and self._lk().notify(self, self._handle(conn), attr_handle, data, indicate)

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
            if self._links:  # deadlines belong to links: nothing to run at rest
                self._lk().tick(self)
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
        from .text import status

        status(self)

    # -- internals ---------------------------------------------------------------------------
    def _handle(self, conn):
        if isinstance(conn, int):
            return conn
        return getattr(conn, "_conn_handle", conn)  # aioble DeviceConnection

    def _emit(self, event, conn, value=None):
        cb = self.callback
        if cb is not None:
            try:
                cb(event, conn, value)
            except Exception as e:  # noqa: BLE001 (an application bug must not stop pairing)
                from .text import event_name

                _log("callback raised on %s" % event_name(event), e)

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

    def _on_store(self, event, bond):
        try:
            if event == "added" or event == "replaced":
                self._emit(_BOND_ADDED_EVT, None, bond)
            elif event == "removed" or event == "cleared":
                self._emit(_BOND_REMOVED_EVT, None, bond)
        except Exception as e:  # noqa: BLE001
            _log("bond event failed", e)

    # -- the IRQ handler ---------------------------------------------------------------------------
    def _irq(self, event, data):
        try:
            if self._links:
                # Is this IRQ part of the host delivery of the previous one? (blesmp.link.delivery:
                # a failed update's DISCONNECT in the same delivery is a link loss)
                try:
                    self._lk().delivery(self)
                except (Exception, KeyboardInterrupt) as e:  # noqa: BLE001 (e.g. MemoryError)
                    _log("IRQ %r failed" % (event,), e)
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
                if self._links:
                    self._lk().tick(self)
                if event == _IRQ_CENTRAL_CONNECT or event == _IRQ_PERIPHERAL_CONNECT:
                    h, t, a = data
                    # (type 255 = a failed connect; a malformed tuple is no connection either)
                    if isinstance(h, int) and t in (0, 1) and isinstance(a, (bytes, bytearray, memoryview)) \
                            and len(a) == 6:
                        role = _ROLE_PERIPHERAL if event == _IRQ_CENTRAL_CONNECT else _ROLE_CENTRAL
                        try:
                            self._links[h] = self._lk().Link(h, role, t, bytes(a))
                        except Exception as e:  # noqa: BLE001 (e.g. MemoryError loading the link-time code)
                            # Untracked, the link could pair past the policy (keys would go to the
                            # store unchecked): fail closed.
                            _log("conn %d cannot be tracked: disconnected" % h, e)
                            self._disconnect(h)
                elif event == _IRQ_CENTRAL_DISCONNECT or event == _IRQ_PERIPHERAL_DISCONNECT:
                    if self._links:
                        self._lk().on_disconnect(self, data[0])
                        if not self._links:
                            _drop("link")  # at rest again: give the link-time code's RAM back
                            _drop("bondrule")
                elif event == _IRQ_ENCRYPTION_UPDATE:
                    if self._links:
                        self._lk().on_encryption(self, *data)
                elif event == _IRQ_PASSKEY_ACTION:
                    forward = False
                    if self._links:
                        self._lk().on_passkey(self, *data)
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
        finally:
            # when this handler returned, the application's included: a slow one on a board does not
            # split a delivery (link.delivery measures from here; only links need it: a central's
            # scan results at rest pay no clock read)
            if self._links:
                self._t_end = self._ms()

    def _get_secret(self, data):
        self._in_store = True
        sec_type, index, key = data
        r = self.store.get_secret(sec_type, index, key)
        if r is not None and not isinstance(r, (bytes, bytearray, memoryview)):
            _log("store returned %r for a secret: treated as not found" % type(r))
            r = None
        if not self._links or key is None or len(key) != 7 or index != 0:
            return r  # at rest (the IRK, NimBLE's start-up look-ups): the store's answer
        return self._lk().on_get(self, sec_type, bytes(key), r)

    def _set_secret(self, data):
        self._in_store = True
        sec_type, key, value = data
        if self._links and value is not None and sec_type in (_SEC_TYPE_OUR, _SEC_TYPE_PEER) and key is not None:
            return self._lk().set_secret(self, sec_type, bytes(key), value)
        return self.store.set_secret(sec_type, key, value)

    def _lk(self):
        # The link-time code (blesmp.link): imported at the first CONNECT, dropped on MicroPython
        # when the last link is gone (see _irq), so the board at rest does not hold it.
        from . import link

        return link
