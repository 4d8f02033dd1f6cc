# The blesmp lock: a peripheral application on stock ESP32 MicroPython firmware.
#
# GATT
#   Lock service   5ec0a000-b1e5-4d50-9000-00000000a000
#     lock state   ...a001  read/write "locked"/"unlocked", only at security level 3+
#                  (encrypted and authenticated: passkey or numeric comparison). Two
#                  locks: the firmware flags READ/WRITE_AUTHENTICATED (NimBLE refuses
#                  before Python sees the request) and SecurityManager.protect(level 3,
#                  16-byte key) on every read that gets through.
#   Battery        0x180F / level 0x2A19: public, readable by anyone.
# Pairing: bonding on, MITM requested, LE Secure Connections; the IO capability is
# the board's (board.json, default DisplayYesNo). The passkey is shown on the
# console ("PASSKEY 123456") and blinked on the LED; a numeric comparison is
# confirmed with the BOOT button or yes()/no() at the REPL. Bonds live in
# bonds.db in flash (blesmp.store.BondStore), so a bonded phone reconnects
# encrypted after a power cycle.
#
# At the REPL (after Ctrl-C, or through `make repl`):
#   status()  bonds()  forget(i or "aa:bb:..")  yes()  no()  passkey(123456)
#   lock()  unlock()  help_app()
import sys
import time

import bluetooth
import boardio
from micropython import const

from blesmp import const as C
from blesmp.manager import SecurityManager

_FLAG_READ = const(0x0002)
_FLAG_WRITE = const(0x0008)
_FLAG_READ_AUTHENTICATED = const(0x0400)
_FLAG_WRITE_AUTHENTICATED = const(0x2000)

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_GATTS_WRITE = const(3)

_LOCK_SERVICE_STR = "5ec0a000-b1e5-4d50-9000-00000000a000"
LOCK_SERVICE = bluetooth.UUID(_LOCK_SERVICE_STR)
LOCK_STATE = bluetooth.UUID("5ec0a001-b1e5-4d50-9000-00000000a000")
BATTERY_SERVICE = bluetooth.UUID(0x180F)
BATTERY_LEVEL = bluetooth.UUID(0x2A19)

NAME = "blesmp-lock"

# What a failure reason means, for people (AuthResult.reason -> sentence).
EXPLAIN = {
    C.AUTH_FAILED: "the passkey typed on the other device did not match the one shown here "
                   "(or its user cancelled): nothing was stored, the link stays unencrypted",
    C.PASSKEY_ENTRY_FAILED: "the other device's user cancelled the passkey entry",
    C.CONFIRM_VALUE_FAILED: "the passkey typed on the other device did not match the one shown here",
    C.NUMERIC_COMPARISON_FAILED: "the numbers on the two screens did not match (or someone said no)",
    C.REJECTED: "refused here (by you, the app or the pairing policy)",
    C.PROMPT_TIMEOUT: "nobody answered the passkey / confirmation prompt in time",
    C.LINK_LOST: "the connection dropped in the middle of pairing",
    C.SMP_TIMEOUT: "the other device stopped answering for 30 s",
    C.KEY_TOO_SHORT: "the other device offered an encryption key shorter than allowed",
    C.WEAKER_THAN_BOND: "a weaker pairing would have replaced an existing, stronger bond",
    C.PEER_FAILED: "the other device gave up on the pairing",
    C.LEVEL_TOO_LOW: "the link got encrypted, but below the security level this app needs",
    C.KEY_MISSING: "the other device tried to reuse a bond this lock no longer has: remove the "
                   "lock from its Bluetooth settings and pair again",
    C.REPEATED_ATTEMPTS: "too many failed attempts: wait a little before trying again",
}

APP = None  # the running LockApp (the REPL helpers below act on it)


def explain(reason):
    return EXPLAIN.get(reason, C.reason_name(reason))


def _hex(b):
    return ":".join("%02x" % x for x in b)


class LockApp:
    def __init__(self, ble=None, io=None, name=NAME, store=None, board=None, level=3, out=None):
        self.ble = ble or bluetooth.BLE()
        self.board = board if board is not None else boardio.load()
        self.io = boardio.io_capability(self.board, 1) if io is None else io
        self.name = name
        self.out = out or print
        self.led = boardio.Led(self.board.get("led"))
        self.button = boardio.Button(self.board.get("button"))
        self.locked = True
        self.battery = 87
        self.conns = {}
        self.pending = None  # (conn, action, number) waiting for the user
        self.results = []
        if store is None:
            from blesmp.store import BondStore

            store = BondStore("bonds.db")
        self.sm = SecurityManager(self.ble, store=store, io=self.io, bond=True, mitm=self.io != C.IO_NO_INPUT_OUTPUT,
                                  sc=True, callback=self._event, handler=self._irq, timer=None)
        ((self.h_state,), (self.h_battery,)) = self.ble.gatts_register_services((
            (LOCK_SERVICE, ((LOCK_STATE, _FLAG_READ | _FLAG_WRITE | _FLAG_READ_AUTHENTICATED
                             | _FLAG_WRITE_AUTHENTICATED),)),
            (BATTERY_SERVICE, ((BATTERY_LEVEL, _FLAG_READ),)),
        ))
        self.sm.protect(self.h_state, level)
        self.ble.gatts_write(self.h_state, b"locked")
        self.ble.gatts_write(self.h_battery, bytes((self.battery,)))
        self.advertise()
        self.say("READY %s io=%d addr=%s bonds=%d" % (name, self.io, self._mac(), len(self.sm.get_bond_device_list())))

    # -- output ----------------------------------------------------------------------------
    def say(self, msg):
        self.out(msg)

    def _mac(self):
        try:
            t, a = self.ble.config("mac")
            return "%d/%s" % (t, _hex(a))
        except Exception:  # noqa: BLE001
            return "?"

    # -- advertising -----------------------------------------------------------------------
    def advertise(self):
        # flags + complete name; the 128-bit service UUID goes in the scan response
        name = self.name.encode()
        adv = bytes((2, 0x01, 0x06, len(name) + 1, 0x09)) + name
        uuid = bytes(reversed(bytes.fromhex(_LOCK_SERVICE_STR.replace("-", ""))))  # LSB first on the air
        self.ble.gap_advertise(100000, adv_data=adv, resp_data=bytes((len(uuid) + 1, 0x07)) + uuid)

    # -- BLE events --------------------------------------------------------------------------
    def _irq(self, event, data):
        if event == _IRQ_CENTRAL_CONNECT:
            h, t, a = data
            self.conns[h] = (t, bytes(a))
            self.say("CONNECTED conn=%d peer=%d/%s" % (h, t, _hex(a)))
        elif event == _IRQ_CENTRAL_DISCONNECT:
            h = data[0]
            self.conns.pop(h, None)
            if self.pending and self.pending[0] == h:
                self.pending = None
                self.led.solid(0)
            self.say("DISCONNECTED conn=%d" % h)
            self.advertise()
        elif event == _IRQ_GATTS_WRITE:
            h, attr = data
            if attr == self.h_state:
                v = bytes(self.ble.gatts_read(self.h_state))
                if v in (b"locked", b"unlocked"):
                    self.locked = v == b"locked"
                    self.say("LOCK %s by conn=%d" % (v.decode(), h))
                else:
                    self.ble.gatts_write(self.h_state, b"locked" if self.locked else b"unlocked")

    def _event(self, event, conn, value):
        if event == C.PASSKEY_NOTIF_EVT:
            self.say("PASSKEY %06d  (type it on the other device)" % value)
            self.led.show_passkey(value)
        elif event == C.PASSKEY_REQ_EVT:
            self.pending = (conn, C.PASSKEY_ACTION_INPUT, None)
            self.say("ENTER PASSKEY shown on the other device: passkey(123456)")
        elif event == C.NC_REQ_EVT:
            self.pending = (conn, C.PASSKEY_ACTION_NUMERIC_COMPARISON, value)
            self.say("CONFIRM %06d? press %s or type yes() / no()" % (
                value, self.button.cfg.get("label", "the button") if self.button.present else "nothing:"))
            self.led.show_passkey(value)
        elif event == C.PROMPT_CANCEL_EVT:
            self.pending = None
            self.led.solid(0)
        elif event == C.AUTH_CMPL_EVT:
            r = value
            self.pending = None
            self.results.append(r)
            if r.success:
                self.say("SECURED conn=%d level=%d key_size=%d authenticated=%d bonded=%d sc=%s%s" % (
                    conn, r.level, r.key_size, r.authenticated, r.bonded, r.sc,
                    " (stored bond)" if r.reencrypt else ""))
                self.led.solid(1, (0, 32, 0))
            else:
                self.say("PAIRING FAILED conn=%d %s: %s" % (conn, C.reason_name(r.reason), explain(r.reason)))
                self.led.solid(1, (32, 0, 0))
        elif event == C.BOND_ADDED_EVT:
            self.say("BOND STORED %d/%s" % (value.addr_type, _hex(value.addr)))
        elif event == C.BOND_REMOVED_EVT:
            self.say("BOND REMOVED %d/%s" % (value.addr_type, _hex(value.addr)))

    # -- the main loop -------------------------------------------------------------------------
    def step(self):
        self.sm.poll()
        self.led.step()
        if self.button.clicked() and self.pending and self.pending[1] == C.PASSKEY_ACTION_NUMERIC_COMPARISON:
            self.answer(True)

    def run(self, seconds=None):
        """Serves until Ctrl-C (or for `seconds`). BLE keeps working at the REPL afterwards."""
        t0 = time.ticks_ms()
        try:
            while seconds is None or time.ticks_diff(time.ticks_ms(), t0) < seconds * 1000:
                self.step()
                time.sleep_ms(20)
        except KeyboardInterrupt:
            print("app loop stopped; BLE still runs. status(), help_app(); run() resumes")

    def answer(self, ok, number=None):
        if not self.pending:
            print("nothing to answer")
            return False
        conn, action, _ = self.pending
        self.pending = None
        self.led.solid(0)
        if action == C.PASSKEY_ACTION_INPUT:
            return self.sm.passkey_reply(conn, ok, number or 0)
        return self.sm.confirm_reply(conn, ok)

    def status(self):
        print("%s: %s, battery %d%%, io=%d, %d connection(s)%s" % (
            self.name, "locked" if self.locked else "unlocked", self.battery, self.io, len(self.conns),
            ", waiting for you: %r" % (self.pending,) if self.pending else ""))
        self.sm.status()


# -- REPL helpers ---------------------------------------------------------------------------------
def _app():
    if APP is None:
        raise RuntimeError("the lock app is not running: run()")
    return APP


def start(**kw):
    global APP
    if APP is None:
        APP = LockApp(**kw)
    return APP


def run(seconds=None, **kw):
    start(**kw).run(seconds)


def status():
    _app().status()


def bonds():
    for i, b in enumerate(_app().sm.get_bond_device_list()):
        print(i, b)


def forget(which):
    """Removes a bond: its index in bonds(), or its address "aa:bb:cc:dd:ee:ff"."""
    app = _app()
    bl = app.sm.get_bond_device_list()
    if isinstance(which, int):
        b = bl[which]
    else:
        want = bytes(int(x, 16) for x in which.split(":"))
        b = [x for x in bl if bytes(x.addr) == want][0]
    return app.sm.remove_bond_device(b.addr_type, b.addr)


def yes():
    return _app().answer(True)


def no():
    return _app().answer(False)


def passkey(n):
    return _app().answer(True, n)


def lock():
    app = _app()
    app.locked = True
    app.ble.gatts_write(app.h_state, b"locked")


def unlock():
    app = _app()
    app.locked = False
    app.ble.gatts_write(app.h_state, b"unlocked")


HELP = """blesmp lock, REPL helpers:
  status()            the lock, the connections with their security level, the bonds
  bonds()             the bonds in flash, numbered
  forget(i)           remove bond i (or forget("aa:bb:cc:dd:ee:ff"))
  yes() / no()        answer a numeric comparison (or press the BOOT button for yes)
  passkey(123456)     type the passkey the other device shows (io=keyboard boards)
  lock() / unlock()   change the lock state
  run()               resume the app loop (LED, button, timeouts) after Ctrl-C"""


def help_app():
    print(HELP)


if __name__ == "__main__":
    run(**({"io": int(sys.argv[1])} if len(sys.argv) > 1 else {}))
