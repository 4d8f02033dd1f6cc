"""Reads a capture with an independent decoder (scapy's Bluetooth LE layers) and checks it
against the run's trace: what a Wireshark user would see must be what the simulator did."""

import shutil
import subprocess

from scapy.layers.bluetooth import ATT_Hdr, L2CAP_Hdr, SM_Hdr
from scapy.layers.bluetooth4LE import BTLE, BTLE_CONNECT_REQ, BTLE_CTRL, BTLE_DATA, BTLE_RF
from scapy.utils import rdpcap

ADV_AA = 0x8E89BED6
C2P, P2C = 2, 3  # BTLE_RF.type: data, central -> peripheral / peripheral -> central

# what scapy names the SMP PDUs the trace names (an independent opinion of each opcode)
SMP_NAMES = {
    "PAIRING_REQUEST": "SM_Pairing_Request", "PAIRING_RESPONSE": "SM_Pairing_Response",
    "PAIRING_CONFIRM": "SM_Confirm", "PAIRING_RANDOM": "SM_Random", "PAIRING_FAILED": "SM_Failed",
    "ENCRYPTION_INFORMATION": "SM_Encryption_Information", "CENTRAL_IDENTIFICATION": "SM_Master_Identification",
    "IDENTITY_INFORMATION": "SM_Identity_Information",
    "IDENTITY_ADDRESS_INFORMATION": "SM_Identity_Address_Information",
    "SIGNING_INFORMATION": "SM_Signing_Information", "SECURITY_REQUEST": "SM_Security_Request",
    "PAIRING_PUBLIC_KEY": "SM_Public_Key", "PAIRING_DHKEY_CHECK": "SM_DHKey_Check",
}


def scapy_crc_init(crc_init):
    """scapy's BTLE.compute_crc takes CRCInit with its octets reversed: the value the CONNECT_IND
    carries (little-endian, as the specification and Zephyr's radio_crc_configure read it) is
    byte-swapped for it. (Both agree for advertising's 0x555555.)"""
    return int.from_bytes(crc_init.to_bytes(3, "little"), "big")


class Sdu:
    """One reassembled L2CAP PDU of the capture."""

    def __init__(self, aa, to_peripheral, cid, payload, decrypted, t, layer):
        self.aa = aa
        self.to_peripheral = to_peripheral
        self.cid = cid
        self.payload = payload
        self.decrypted = decrypted
        self.t = t
        self.layer = layer  # scapy's packet for the reassembled PDU


class Capture:
    def __init__(self, path):
        self.packets = rdpcap(str(path))
        self.links = {}  # access address -> CONNECT_IND fields
        self.sdus = []
        self.control = []  # (aa, to_peripheral, opcode, decrypted)
        self.crc_checked = 0
        self._decode()

    def _decode(self):
        partial = {}
        sn = {}
        for p in self.packets:
            assert isinstance(p, BTLE_RF), "not LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR: %r" % p
            le = p[BTLE]
            raw = bytes(le)
            aa, pdu, crc = le.access_addr, raw[4:-3], raw[-3:]
            if aa == ADV_AA:
                assert crc == BTLE.compute_crc(pdu, 0x555555), "advertising CRC"
                self.crc_checked += 1
                if p.haslayer(BTLE_CONNECT_REQ):
                    c = p[BTLE_CONNECT_REQ]
                    self.links[c.AA] = {"crc_init": c.crc_init, "interval": c.interval, "timeout": c.timeout,
                                        "hop": c.hop, "InitA": c.InitA, "AdvA": c.AdvA}
                continue
            assert aa in self.links, "a data packet before its CONNECT_IND"
            assert p.type in (C2P, P2C), "data packets say their direction"
            to_p = p.type == C2P
            d = p[BTLE_DATA]
            # SN/NESN on a clean link: each side's new packet flips SN; each acknowledges the other
            prev = sn.get((aa, to_p))
            if prev is not None:
                assert d.SN != prev, "SN did not move on (a retransmission in a capture of a clean link)"
            sn[(aa, to_p)] = d.SN
            if not p.decrypted:
                assert crc == BTLE.compute_crc(pdu, scapy_crc_init(self.links[aa]["crc_init"])), "data CRC"
                self.crc_checked += 1
            body = bytes(d.payload)[: d.len] if d.len else b""
            if d.LLID == 3:
                self.control.append((aa, to_p, p[BTLE_CTRL].opcode, bool(p.decrypted)))
            elif d.LLID == 2:
                assert (aa, to_p) not in partial, "a new L2CAP PDU started before the last one ended"
                partial[(aa, to_p)] = [body, bool(p.decrypted), float(p.time)]
            elif d.LLID == 1 and d.len:
                partial[(aa, to_p)][0] += body
            key = (aa, to_p)
            if key in partial and d.LLID in (1, 2) and d.len:
                buf, dec, t = partial[key]
                if len(buf) >= 4 and len(buf) >= 4 + int.from_bytes(buf[:2], "little"):
                    assert len(buf) == 4 + int.from_bytes(buf[:2], "little"), "L2CAP length"
                    del partial[key]
                    l2 = L2CAP_Hdr(buf)
                    self.sdus.append(Sdu(aa, to_p, l2.cid, bytes(l2.payload), dec, t, l2))
        assert not partial, "an L2CAP PDU never ended"


def trace_pdus(trace):
    """(sender is central, cid, payload, name, enc, t) of every PDU the trace says went on the air:
    sent on a link both ends still had (not after a terminate, a disconnect or a reset)."""
    links = {}  # (board, handle) -> (is central, peer board)
    out = []
    for r in trace.records:
        if r.kind == "link" and r.name == "connect":
            links[(r.board, r.conn)] = (r.args.get("role") == "central", r.peer)
        elif r.kind == "pdu" and (r.board, r.conn) in links:
            a = r.args
            central = links[(r.board, r.conn)][0]
            out.append((central, a["cid"], bytes.fromhex(a["hex"]), r.name, a.get("enc"), r.t))
        elif r.kind == "link" and r.name in ("terminate", "disconnect", "reset", "power_off"):
            gone = links.pop((r.board, r.conn), None) if r.conn is not None else None
            for k, (_c, peer) in list(links.items()):
                if (gone and k[0] == gone[1] and peer == r.board) or (r.conn is None and r.board in (k[0], peer)):
                    del links[k]
    return out


def assert_matches(trace, path):
    """Every SMP/ATT PDU of the trace is in the capture: same bytes, same opcode (as scapy
    decodes it), same direction, same order, flagged decrypted exactly when the link was
    encrypted, never before it was sent. Returns the Capture."""
    cap = Capture(path)
    want = trace_pdus(trace)
    got = cap.sdus
    assert [(w[0], w[1], w[2].hex()) for w in want] == [(g.to_peripheral, g.cid, g.payload.hex()) for g in got]
    for (_central, cid, payload, name, enc, t), g in zip(want, got):
        assert g.decrypted == bool(enc), name
        assert g.t >= t - 1e-6, "%s on the air before it was sent" % name
        # timestamps are the virtual clock: on the air within a few connection events (30 ms each;
        # PDUs held while the encryption starts wait for it)
        assert g.t - t < 0.15, "%s on the air %.3f s after it was sent" % (name, g.t - t)
        if cid == 6:
            assert g.layer.haslayer(SM_Hdr) and g.layer[SM_Hdr].sm_command == payload[0]
            assert type(g.layer[SM_Hdr].payload).__name__ == SMP_NAMES[name], name
        elif cid == 4:
            assert g.layer.haslayer(ATT_Hdr) and g.layer[ATT_Hdr].opcode == payload[0], name
    return cap


def encryption_starts(cap, aa):
    """The LL control opcodes of one link, as (direction, opcode, decrypted)."""
    return [("C" if to_p else "P", op, dec) for a, to_p, op, dec in cap.control if a == aa]


def wireshark_complaints(path):
    """Wireshark's verdict on a capture: the packets its dissectors call malformed or mark with an
    expert warning or error (a list of lines, empty when clean); None where tshark is not installed."""
    tshark = shutil.which("tshark")
    if not tshark:
        return None
    r = subprocess.run([tshark, "-r", str(path), "-Y", "_ws.malformed or _ws.expert.severity >= 6291456"],
                       capture_output=True, text=True, timeout=120)  # 6291456: PI_WARN
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()
