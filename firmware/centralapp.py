# The blesmp key fob: a central on stock ESP32 MicroPython that pairs with the lock.
#
# It scans for "blesmp-lock", connects, finds the lock-state and battery
# characteristics, reads the public battery level, secures the link with
# SecurityManager.pair() and reads the lock state. Bonds go to bonds.db, so the
# next connection is encrypted with the stored LTK (no new pairing).
#
# What stock firmware allows a central (reference §1 note E, micropython#17805):
# NimBLE never passes passkey or numeric-comparison prompts to Python when the
# ESP32 is the central, so this app can only pair Just Works (level 2). The lock
# state needs level 3: the lock refuses it with "insufficient authentication"
# (ATT 0x05) and the fob says so. A phone (or any central whose stack shows
# prompts) reaches level 3 with a passkey.
#
#   from centralapp import *; run(cycles=2)     # pair, disconnect, reconnect encrypted
import time

import bluetooth
from micropython import const

from blesmp import const as C
from blesmp.manager import SecurityManager

_IRQ_SCAN_RESULT = const(5)
_IRQ_SCAN_DONE = const(6)
_IRQ_PERIPHERAL_CONNECT = const(7)
_IRQ_PERIPHERAL_DISCONNECT = const(8)
_IRQ_GATTC_CHARACTERISTIC_RESULT = const(11)
_IRQ_GATTC_CHARACTERISTIC_DONE = const(12)
_IRQ_GATTC_READ_RESULT = const(15)
_IRQ_GATTC_READ_DONE = const(16)

LOCK_STATE = bluetooth.UUID("5ec0a001-b1e5-4d50-9000-00000000a000")
BATTERY_LEVEL = bluetooth.UUID(0x2A19)
TARGET = b"blesmp-lock"

APP = None

ATT_ERRORS = {0x05: "insufficient authentication (the lock wants level 3: a passkey pairing)",
              0x0F: "insufficient encryption (we have a bond: encrypt first)",
              0x08: "insufficient authorization", 0x0C: "encryption key too short"}


def _hex(b):
    return ":".join("%02x" % x for x in b)


def _adv_name(adv):
    i = 0
    adv = bytes(adv)
    while i + 1 < len(adv):
        n = adv[i]
        if n == 0:
            break
        if adv[i + 1] in (0x08, 0x09):
            return adv[i + 2:i + 1 + n]
        i += 1 + n
    return None


class CentralApp:
    """io/mitm/central_prompts/prompt exist for centrals whose stack does pass prompts (a phone
    in the simulator, or patched firmware): prompt(kind, number) is called from the main loop,
    never from the IRQ handler, with kind "passkey" (return the int the user typed, or None to
    refuse) or "confirm" (return True/False)."""

    def __init__(self, ble=None, store=None, target=TARGET, out=None, io=C.IO_NO_INPUT_OUTPUT, mitm=False,
                 central_prompts=False, prompt=None, name="fob"):
        self.ble = ble or bluetooth.BLE()
        self.target = target
        self.out = out or print
        self.name = name
        self.prompt = prompt
        self.pending = None
        self.found = None
        self.conn = None
        self.chars = {}
        self.reads = {}
        self.done = {}
        self.results = []
        if store is None:
            from blesmp.store import BondStore

            store = BondStore("bonds.db")
        # Just Works is all a central gets on stock firmware (see the header): the defaults
        self.sm = SecurityManager(self.ble, store=store, io=io, bond=True, mitm=mitm, sc=True,
                                  central_prompts=central_prompts, callback=self._event, handler=self._irq,
                                  timer=None)
        self.say("READY %s bonds=%d" % (name, len(self.sm.get_bond_device_list())))

    def say(self, msg):
        self.out(msg)

    def _irq(self, event, data):
        if event == _IRQ_SCAN_RESULT:
            t, a, _adv_type, _rssi, adv = data
            if self.found is None and _adv_name(adv) == self.target:
                self.found = (t, bytes(a))
                self.ble.gap_scan(None)
        elif event == _IRQ_PERIPHERAL_CONNECT:
            h, t, a = data
            if t != 255:
                self.conn = h
                self.say("CONNECTED conn=%d lock=%d/%s" % (h, t, _hex(a)))
            else:
                self.done["connect"] = "failed"
        elif event == _IRQ_PERIPHERAL_DISCONNECT:
            if data[0] == self.conn:
                self.conn = None
                self.say("DISCONNECTED")
        elif event == _IRQ_GATTC_CHARACTERISTIC_RESULT:
            _h, _end, vh, _props, uuid = data
            self.chars[bluetooth.UUID(uuid)] = vh
        elif event == _IRQ_GATTC_CHARACTERISTIC_DONE:
            self.done["chars"] = data[1]
        elif event == _IRQ_GATTC_READ_RESULT:
            self.reads[data[1]] = bytes(data[2])
        elif event == _IRQ_GATTC_READ_DONE:
            self.done[("read", data[1])] = data[2]

    def _event(self, event, conn, value):
        if event == C.PASSKEY_REQ_EVT:
            self.pending = (conn, "passkey", None)
        elif event == C.NC_REQ_EVT:
            self.pending = (conn, "confirm", value)
        elif event == C.PASSKEY_NOTIF_EVT:
            self.say("PASSKEY %06d  (type it on the lock)" % value)
        elif event == C.PROMPT_CANCEL_EVT:
            self.pending = None
        elif event == C.AUTH_CMPL_EVT:
            self.pending = None
            self.results.append(value)
            r = value
            if r.success:
                self.say("SECURED level=%d key_size=%d bonded=%d%s" % (
                    r.level, r.key_size, r.bonded, " (stored bond)" if r.reencrypt else ""))
            else:
                self.say("PAIRING FAILED %s" % C.reason_name(r.reason))
        elif event == C.BOND_ADDED_EVT:
            self.say("BOND STORED %d/%s" % (value.addr_type, _hex(value.addr)))

    def wait(self, pred, ms):
        t0 = time.ticks_ms()
        while not pred():
            if time.ticks_diff(time.ticks_ms(), t0) > ms:
                return False
            self.sm.poll()
            if self.pending is not None:
                self._answer()
            time.sleep_ms(10)
        return True

    def _answer(self):
        conn, kind, number = self.pending
        self.pending = None
        if self.prompt is None:
            self.say("PROMPT %s ignored: nobody to ask" % kind)
            return
        v = self.prompt(kind, number)
        if kind == "passkey":
            self.sm.passkey_reply(conn, v is not None, v or 0)
        else:
            self.sm.confirm_reply(conn, bool(v))

    def find(self, ms=10000):
        self.found = None
        self.ble.gap_scan(ms, 30000, 30000, True)
        return self.wait(lambda: self.found is not None, ms + 500)

    def connect(self):
        if self.found is None and not self.find():
            self.say("LOCK NOT FOUND")
            return False
        self.done.pop("connect", None)
        self.ble.gap_connect(self.found[0], self.found[1])
        return self.wait(lambda: self.conn is not None or "connect" in self.done, 5000) and self.conn is not None

    def discover(self):
        self.chars = {}
        self.done.pop("chars", None)
        self.ble.gattc_discover_characteristics(self.conn, 1, 0xFFFF)
        return self.wait(lambda: "chars" in self.done, 5000)

    def read(self, uuid):
        vh = self.chars.get(uuid)
        if vh is None or self.conn is None:
            return None, "not found"
        self.reads.pop(vh, None)
        self.done.pop(("read", vh), None)
        self.ble.gattc_read(self.conn, vh)
        if not self.wait(lambda: ("read", vh) in self.done, 5000):
            return None, "timeout"
        status = self.done[("read", vh)]
        if status:
            return None, status
        return self.reads.get(vh), 0

    def secure(self):
        n = len(self.results)
        if self.conn is None:  # the link went while we read (lock out of range, power cut)
            return None
        if not self.sm.pair(self.conn):
            return self.results[-1] if len(self.results) > n else None
        self.wait(lambda: len(self.results) > n or self.conn is None, 35000)
        return self.results[-1] if len(self.results) > n else None

    def visit(self):
        """One visit: connect, read the public value, pair/encrypt, read the lock state, leave."""
        if not self.connect() or not self.discover():
            return False
        v, st = self.read(BATTERY_LEVEL)
        self.say("BATTERY %s" % (("%d%%" % v[0]) if v else "unreadable (%r)" % (st,)))
        r = self.secure()
        if r is None or not r.success:
            self.say("NOT SECURED")
        v, st = self.read(LOCK_STATE)
        if v is not None:
            self.say("LOCK STATE %s" % v.decode())
        else:
            code = st - 0x100 if isinstance(st, int) and st > 0x100 else st
            self.say("LOCK STATE refused: %s" % ATT_ERRORS.get(code, code))
        if self.conn is not None:
            self.ble.gap_disconnect(self.conn)
            self.wait(lambda: self.conn is None, 3000)
        return True

    def status(self):
        print("%s: %s" % (self.name, "connected conn=%d" % self.conn if self.conn is not None else "idle"))
        self.sm.status()


def start(**kw):
    global APP
    if APP is None:
        APP = CentralApp(**kw)
    return APP


def run(cycles=2, pause_ms=1000, **kw):
    app = start(**kw)
    for i in range(cycles):
        app.say("VISIT %d" % (i + 1))
        app.visit()
        time.sleep_ms(pause_ms)
    app.say("DONE")


def status():
    APP.status() if APP else print("the fob app is not running: run()")


def bonds():
    for i, b in enumerate(APP.sm.get_bond_device_list()):
        print(i, b)


def forget(i):
    """Removes bond number i of bonds()."""
    b = APP.sm.get_bond_device_list()[i]
    return APP.sm.remove_bond_device(b.addr_type, b.addr)


def help_app():
    print("blesmp fob: run(cycles=2) visits the lock; status(), bonds(), forget(i)")
