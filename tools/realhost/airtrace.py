"""What the radios saw, as a tools/blesim Trace: the same records the simulator's charts and
checks read ("pdu" for SMP/ATT on a connection, "link" for connections, encryption and
disconnections), recorded from the virtual link and each board's HCI events, in real time.

The real host gives no IRQ records (the simulator's firmware model records those): what the
host decided shows in what it sent.
"""

import time

from bumble import att, ll
from bumble.snoop import Snooper

from tools.blesim.smp.const import OPCODE_NAMES as SMP_NAMES
from tools.blesim.trace import Trace

_CIDS = {4: "att", 6: "smp"}


def _addr(b):
    return bytes(reversed(b)).hex()


class AirTrace:
    """Records into `self.trace`; pass `link_tap` and `hci_tap` to Radios."""

    def __init__(self):
        t0 = time.monotonic()
        self.trace = Trace(clock=lambda: time.monotonic() - t0)
        self.radios = None

    def _name_of(self, address):
        c = self.radios.link.find_le_controller(address) if self.radios else None
        return c.name if c is not None else str(address)

    def link_tap(self, kind, sender, receiver, payload):
        if kind == "acl":
            conn = sender.le_connections.get(receiver)
            data = bytes(payload)
            if len(data) < 5:
                return
            cid = int.from_bytes(data[2:4], "little")
            layer = _CIDS.get(cid)
            if layer is None:
                return
            pdu = data[4:]
            if layer == "smp":
                name = SMP_NAMES.get(pdu[0], "SMP_0x%02X" % pdu[0])
            else:
                try:
                    name = att.Opcode(pdu[0]).name
                except ValueError:
                    name = "ATT_0x%02X" % pdu[0]
            self.trace.add("pdu", sender.name, name, peer=self._name_of(receiver),
                           conn=conn.handle if conn else None,
                           args={"cid": cid, "layer": layer, "hex": pdu.hex(), "dir": "tx"}, text=name)
        elif kind == "ll":
            board = self._name_of(sender)
            peer = self._name_of(receiver)
            if isinstance(payload, ll.EncReq):
                self.trace.add("link", board, "enc_start", peer=peer, text="LL_ENC_REQ")
            elif isinstance(payload, ll.TerminateInd):
                self.trace.add("link", board, "terminate", peer=peer, args={"reason": payload.error_code},
                               text="LL_TERMINATE_IND 0x%02x" % payload.error_code)

    def hci_tap(self, name, direction, p):
        p = bytes(p)
        if direction == Snooper.Direction.HOST_TO_CONTROLLER:
            if p[:3] == b"\x01\x03\x0c":
                self.trace.add("link", name, "reset", text="HCI Reset")
            return
        if p[0] != 0x04 or len(p) < 3:
            return
        code = p[1]
        if code == 0x3E and p[3] == 0x01 and p[4] == 0:  # LE Connection Complete
            h = int.from_bytes(p[5:7], "little")
            role = "central" if p[7] == 0 else "peripheral"
            self.trace.add("link", name, "connect", conn=h,
                           args={"role": role, "peer_addr_type": p[8], "peer_addr": _addr(p[9:15])},
                           text="connected (%s)" % role)
        elif code == 0x05:  # Disconnection Complete
            h = int.from_bytes(p[4:6], "little")
            self.trace.add("link", name, "disconnect", conn=h, args={"reason": p[6]},
                           text="disconnected 0x%02x" % p[6])
        elif code == 0x08:  # Encryption Change
            h = int.from_bytes(p[4:6], "little")
            self.trace.add("link", name, "enc_change", conn=h, args={"status": p[3], "encrypted": p[6]},
                           text="encryption %s" % ("on" if p[6] else "off (0x%02x)" % p[3]))
