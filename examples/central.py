# A central: finds "blesmp-demo" (examples/peripheral.py), reads its protected characteristic,
# pairs when refused, reads again. On a stock ESP32 a central pairs Just Works only: NimBLE never
# passes passkey prompts to a central's Python (micropython#17805), so the peripheral's level-3
# characteristic stays refused (ATT 0x05). examples/phone.py is this central on a phone, whose
# stack does ask its user for the passkey.
#   python -m tools.blesim.run examples/peripheral.py examples/central.py
import sys
import time

import bluetooth
from micropython import const

from blesmp.const import AUTH_CMPL_EVT, IO_NO_INPUT_OUTPUT, NC_REQ_EVT, PASSKEY_REQ_EVT, reason_name
from blesmp.manager import SecurityManager

_IRQ_SCAN_RESULT = const(5)
_IRQ_PERIPHERAL_CONNECT = const(7)
_IRQ_PERIPHERAL_DISCONNECT = const(8)
_IRQ_GATTC_CHARACTERISTIC_RESULT = const(11)
_IRQ_GATTC_CHARACTERISTIC_DONE = const(12)
_IRQ_GATTC_READ_RESULT = const(15)
_IRQ_GATTC_READ_DONE = const(16)
_IRQ_GATTC_WRITE_DONE = const(17)
NAME = b"blesmp-demo"
SECRET = bluetooth.UUID("5ec0b001-b1e5-4d50-9000-00000000b000")


class Central:
    def __init__(self, io=IO_NO_INPUT_OUTPUT, mitm=False, prompts=False, name=NAME, uuid=SECRET):
        self.name, self.uuid = name, uuid
        self.ble = bluetooth.BLE()
        self.got = {}  # what the IRQs delivered, by name
        self.asked = None  # (conn, number to compare or None: type a passkey) for the user
        # prompts=True: the stack passes passkey prompts to a central (a phone, not stock ESP32)
        self.sm = SecurityManager(self.ble, io=io, mitm=mitm, central_prompts=prompts, handler=self._irq,
                                  callback=self._event, timer=None)

    def _irq(self, event, data):  # everything the manager does not handle itself comes here
        if event == _IRQ_SCAN_RESULT:
            if bytes(data[4]).find(self.name) >= 0 and "found" not in self.got:
                self.got["found"] = (data[0], bytes(data[1]))
                self.ble.gap_scan(None)
        elif event == _IRQ_PERIPHERAL_CONNECT:
            self.got["conn"] = data[0]
        elif event == _IRQ_PERIPHERAL_DISCONNECT:
            self.got["gone"] = data[0]
        elif event == _IRQ_GATTC_CHARACTERISTIC_RESULT:
            if bluetooth.UUID(data[4]) == self.uuid:
                self.got["handle"] = data[2]
        elif event == _IRQ_GATTC_CHARACTERISTIC_DONE:
            self.got["discovered"] = data[1]
        elif event == _IRQ_GATTC_READ_RESULT:
            self.got["value"] = bytes(data[2])
        elif event == _IRQ_GATTC_READ_DONE:
            self.got["read"] = data[2]  # 0, or the ATT error (+ 0x100 on NimBLE)
        elif event == _IRQ_GATTC_WRITE_DONE:
            self.got["written"] = data[2]

    def _event(self, event, conn, value):
        if event in (PASSKEY_REQ_EVT, NC_REQ_EVT):  # answered from the main loop, not in the IRQ handler
            self.asked = (conn, value if event == NC_REQ_EVT else None)
        elif event == AUTH_CMPL_EVT:
            self.got["paired"] = value

    def ask_user(self, conn, number):
        """A stock ESP32 central never gets here (no prompts): refuse."""
        self.sm.passkey_reply(conn, False, 0) if number is None else self.sm.confirm_reply(conn, False)

    def wait(self, what, ms=10000):
        t0 = time.ticks_ms()
        while what not in self.got:
            if time.ticks_diff(time.ticks_ms(), t0) > ms:
                raise OSError("no %s within %d ms" % (what, ms))
            if self.asked is not None:
                (conn, number), self.asked = self.asked, None
                self.ask_user(conn, number)
            self.sm.poll()
            time.sleep_ms(10)
        return self.got.pop(what)

    def read(self, conn, handle):
        self.got.pop("value", None)
        self.ble.gattc_read(conn, handle)
        status = self.wait("read") & 0xFF
        return self.got.pop("value", None), status

    def pair(self, conn):
        self.sm.pair(conn)
        r = self.wait("paired", 35000)
        print("PAIRED level=%d" % r.level if r.success else "PAIRING FAILED " + reason_name(r.reason))
        return 0 if r.success else -1

    def run(self, write=None):
        """Reads the characteristic (pairing if refused), writes `write` if given; returns the
        value read, or None if it stayed refused."""
        self.ble.gap_scan(10000, 30000, 30000, True)
        addr_type, addr = self.wait("found")
        self.ble.gap_connect(addr_type, addr)
        conn = self.wait("conn")
        print("CONNECTED")
        self.ble.gattc_discover_characteristics(conn, 1, 0xFFFF)
        self.wait("discovered")
        handle = self.got.pop("handle", None)
        if handle is None:  # nothing to read (examples/repl_session.py): just pair
            value, status = None, self.pair(conn)
            time.sleep_ms(1000)  # SMP has no final ack: let the peer store the keys we sent last
        else:
            value, status = self.read(conn, handle)
            if status:
                print("READ refused: ATT 0x%02x: pairing" % status)
                self.pair(conn)
                value, status = self.read(conn, handle)
            print("READ %r" % value if not status else "READ refused: ATT 0x%02x" % status)
        if write is not None and not status:
            self.ble.gattc_write(conn, handle, write, 1)
            print("WROTE %r: status %d" % (write, self.wait("written") & 0xFF))
        self.ble.gap_disconnect(conn)
        self.wait("gone", 3000)
        return value


if __name__ == "__main__":
    sys.exit(0 if Central().run() is None else 1)  # a stock ESP32 central cannot reach level 3
