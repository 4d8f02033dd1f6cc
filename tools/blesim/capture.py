"""A simulated run's air as a sniffer capture: pcap, LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR (256).

    from tools.blesim import capture
    capture.write(world.trace, "run.pcap")          # or capture.encode(trace) -> bytes
    python -m tools.blesim.capture run.jsonl run.pcap   # a saved trace (run.py --trace, multitest)

The trace (trace.py) records what each board's host sent and what its link layer did; this module
rebuilds the packets a sniffer following every connection would have written from it, so any run
(in-process World, broker, multitest, demo) gives a capture that Wireshark opens:

- advertising: one ADV_IND (or ADV_SCAN_IND / ADV_NONCONN_IND) per advertising event on channel
  37, at the times the air ran them (adv_start + 2 ms, then every interval), until adv_stop; the
  CONNECT_IND that ends the last one, with a fresh valid access address, CRCInit, hop increment
  and the connection's interval and supervision timeout.
- data: every L2CAP PDU (ATT, SMP, signalling) in connection events on the grid the CONNECT_IND
  defines (channel selection #1 over all 37 channels), split into 27-octet LL fragments (no data
  length extension), each answered by the peer's empty PDU, so SN/NESN alternate as on a clean link.
  Idle connection events (empty PDUs both ways) are left out, as with Wireshark's "hide empty PDUs".
- LL control: the encryption start (LL_ENC_REQ/RSP, LL_START_ENC_REQ/RSP, LL_REJECT_IND 0x06 on a
  negative LTK reply, LL_PAUSE_ENC_REQ/RSP before a re-encryption) and LL_TERMINATE_IND. Data
  PDUs sent while the procedure runs wait for its end, as the link layer holds them.
- once encrypted, a packet is written as a sniffer that knows the LTK shows it: the plaintext
  without the MIC, flagged "decrypted" and "MIC checked, valid". The MIC is computed all the same
  (AES-CCM with the session key from the LTK and LL_ENC_REQ/RSP's SKD and IV) because the CRC
  written is the one of the ciphertext + MIC that was on the air.
- CRC-24: the real one (CRCInit 0x555555 on advertising, left for the decoder to check; the
  CONNECT_IND's on data, flagged "CRC checked, valid" as a sniffer that follows the link does).
- timestamps are the virtual clock (seconds since the run began: 1970-01-01 in a viewer).
"""

import random
import struct
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

__all__ = ["encode", "write", "crc24", "LINKTYPE", "ADV_AA"]

LINKTYPE = 256  # LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR
ADV_AA = 0x8E89BED6
ADV_CRC_INIT = 0x555555
LL_MAX = 27  # LL payload octets without data length extension (and NimBLE's default)

# pseudo-header flags (tcpdump.org linktypes page for 256)
F_DEWHITENED = 0x0001
F_DECRYPTED = 0x0008
F_CRC_CHECKED = 0x0400
F_CRC_VALID = 0x0800
F_MIC_CHECKED = 0x1000
F_MIC_VALID = 0x2000
PDU_TYPE_C2P = 2 << 7
PDU_TYPE_P2C = 3 << 7

LLID_CONT = 1
LLID_START = 2
LLID_CTRL = 3

LL_TERMINATE_IND = 0x02
LL_ENC_REQ = 0x03
LL_ENC_RSP = 0x04
LL_START_ENC_REQ = 0x05
LL_START_ENC_RSP = 0x06
LL_PAUSE_ENC_REQ = 0x0A
LL_PAUSE_ENC_RSP = 0x0B
LL_REJECT_IND = 0x0D

T_IFS = 150e-6
ADV_FIRST = 0.002  # air.py: the first advertising event, after adv_start
WINDOW_DELAY = 0.00125  # transmitWindowDelay after a CONNECT_IND
ERR_PIN_KEY_MISSING = 0x06
MIC_FAILURE = 0x3D


def crc24(pdu, init):
    """BLE CRC-24 (Vol 6 Part B 3.1.1) over header + payload, as the 3 octets stored after them."""
    state = init
    for byte in pdu:
        for i in range(8):
            fb = ((state >> 23) ^ (byte >> i)) & 1
            state = (state << 1) & 0xFFFFFF
            if fb:
                state ^= 0x00065B
    # sent most significant bit first: each stored octet holds the bits in air (LSB-first) order
    out = 0
    for i in range(24):
        if state >> (23 - i) & 1:
            out |= 1 << i
    return bytes((out & 0xFF, out >> 8 & 0xFF, out >> 16))


def _access_address(rng):
    """A random access address meeting the specification's rules (Vol 6 Part B 2.1.2)."""
    while True:
        aa = rng.getrandbits(32)
        if aa == ADV_AA or bin(aa ^ ADV_AA).count("1") <= 1:
            continue
        b = aa.to_bytes(4, "little")
        if b[0] == b[1] == b[2] == b[3]:
            continue
        bits = "{:032b}".format(aa)
        if "0000000" in bits or "1111111" in bits:
            continue
        if sum(bits[i] != bits[i + 1] for i in range(31)) > 24:
            continue
        if sum(bits[i] != bits[i + 1] for i in range(5)) < 2:  # the six most significant bits
            continue
        return aa


def _rf_channel(index):
    """The pseudo-header's RF channel (0..39 by frequency) of a channel index (0..36 data, 37..39)."""
    if index == 37:
        return 0
    if index == 38:
        return 12
    if index == 39:
        return 39
    return index + 1 if index <= 10 else index + 2


def _air_time(n):
    return (1 + 4 + 2 + n + 3) * 8e-6  # LE 1M: preamble, AA, header, payload, CRC


def _addr(hexstr):
    return bytes.fromhex(hexstr)[::-1]  # the trace: MSB first; the air: LSB first


class _Packet:
    __slots__ = ("t", "seq", "channel", "aa", "pdu", "crc_init", "flags", "sealed")

    def __init__(self, t, seq, channel, aa, pdu, crc_init, flags=0, sealed=None):
        self.t = t
        self.seq = seq
        self.channel = channel
        self.aa = aa
        self.pdu = pdu  # header + payload as written
        self.crc_init = crc_init
        self.flags = flags
        self.sealed = sealed  # the encrypted payload + MIC that was on the air (None: as written)

    def more_data(self):
        self.pdu = bytes([self.pdu[0] | 0x10]) + self.pdu[1:]

    def record(self):
        on_air = self.pdu
        if self.sealed is not None:
            on_air = bytes([self.pdu[0], len(self.sealed)]) + self.sealed
        crc = crc24(on_air, self.crc_init)
        ref_aa = 0
        phdr = struct.pack("<BbbBIH", _rf_channel(self.channel), -128, -128, 0, ref_aa,
                           self.flags | F_DEWHITENED)
        data = phdr + struct.pack("<I", self.aa) + self.pdu + crc
        us = int(round(self.t * 1e6))
        return struct.pack("<IIII", us // 1000000, us % 1000000, len(data), len(data)) + data


class _Cipher:
    """AES-CCM of one direction of an encrypted link (Vol 6 Part E): session key, IV, counter."""

    def __init__(self, sk, iv, central_sends):
        self.ccm = AESCCM(sk, tag_length=4)
        self.iv = iv
        self.dir_bit = 1 if central_sends else 0
        self.counter = 0

    def seal(self, header0, payload):
        """(ciphertext, mic) of one non-empty PDU; the counter moves on."""
        nonce = (self.counter | self.dir_bit << 39).to_bytes(5, "little") + self.iv
        self.counter += 1
        out = self.ccm.encrypt(nonce, bytes(payload), bytes([header0 & 0xE3]))
        return out[:-4], out[-4:]


class _Link:
    def __init__(self, n, central, peripheral, c_addr, p_addr, interval, t_connect, seed):
        rng = random.Random("capture/%s/%d" % (seed, n))
        self.n = n
        self.rng = rng
        self.central = central
        self.peripheral = peripheral
        self.c_addr = c_addr  # (type, hex MSB first)
        self.p_addr = p_addr
        self.aa = _access_address(rng)
        self.crc_init = rng.getrandbits(24)
        self.hop = rng.randint(5, 16)
        self.interval = interval
        self.timeout = 2.56
        self.t_connect = t_connect
        self.anchor = None
        self.exchanges = 0  # SN/NESN of a clean link: both alternate with each exchange
        self.free = 0.0  # when the next exchange may start
        self.event = 0  # connection event counter of the last exchange
        self.last = None  # its two packets
        self.alive = True
        self.procedure = False  # encryption start running: data PDUs wait
        self.held = []
        self.enc = {True: None, False: None}  # central_sends -> _Cipher while encrypted
        self.enc_req = None  # (skd_c, iv_c, ltk) from LL_ENC_REQ until LL_ENC_RSP
        self.session = None  # (sk, iv) agreed by LL_ENC_REQ/RSP
        self.adv_args = {}  # the advertising the CONNECT_IND answered

    def sender_is_central(self, board):
        return board == self.central


class _Sniffer:
    def __init__(self, seed):
        self.seed = seed
        self.packets = []
        self.links = []
        self.by_handle = {}  # (board, conn handle) -> _Link
        self.adv = {}  # board -> (t_start, args) while it advertises
        self.last_adv = {}  # board -> args of its last adv_start (the CONNECT_IND answers it)
        self.down = set()
        self.end = 0.0
        self._seq = 0

    # ------------------------------------------------------------ output
    def _emit(self, t, channel, aa, pdu, crc_init, flags=0, sealed=None):
        self._seq += 1
        p = _Packet(t, self._seq, channel, aa, bytes(pdu), crc_init, flags, sealed)
        self.packets.append(p)
        return p

    # ------------------------------------------------------------ advertising
    def _adv_pdu(self, args, pdu_type, extra=b""):
        addr = _addr(args["addr"])
        body = addr + extra
        tx = 0x40 if args.get("addr_type") else 0
        return bytes([pdu_type | tx, len(body)]) + body

    def _adv_events(self, board, until, inclusive=False):
        started = self.adv.pop(board, None)
        if started is None:
            return
        t0, args = started
        interval = args.get("interval") or 0.1
        adv = bytes.fromhex(args.get("adv_data") or "")
        if args.get("connectable"):
            ptype = 0x00  # ADV_IND
        elif args.get("resp_data"):
            ptype = 0x06  # ADV_SCAN_IND
        else:
            ptype = 0x02  # ADV_NONCONN_IND
        pdu = self._adv_pdu(args, ptype, adv)
        k = 0
        while True:
            t = t0 + ADV_FIRST + k * interval
            if t > until + 1e-9 or (not inclusive and t > until - 1e-9):
                break
            self._emit(t, 37, ADV_AA, pdu, ADV_CRC_INIT)
            k += 1

    # ------------------------------------------------------------ connections
    def _connect(self, r):
        a = r.args
        if a.get("role") != "central":
            for link in reversed(self.links):
                if link.peripheral == r.board and link.central == r.peer and (r.board, r.conn) not in self.by_handle \
                        and link.alive and link.t_connect == r.t:
                    self.by_handle[(r.board, r.conn)] = link
                    link.c_addr = (a.get("peer_addr_type", 0), a.get("peer_addr", ""))
                    self._connect_ind(link)
                    return
            return
        p_addr = (a.get("peer_addr_type", 0), a.get("peer_addr", ""))
        link = _Link(len(self.links) + 1, r.board, r.peer, None, p_addr, a.get("interval") or 0.03, r.t, self.seed)
        if a.get("timeout"):
            link.timeout = a["timeout"]
        link.adv_args = self.last_adv.get(r.peer) or {}
        self.links.append(link)
        self.by_handle[(r.board, r.conn)] = link

    def _connect_ind(self, link):
        """ADV_IND then CONNECT_IND on channel 37, at the advertising event of the connection."""
        t = link.t_connect
        adv_args = link.adv_args
        if adv_args:
            adv_pdu = self._adv_pdu(adv_args, 0x00, bytes.fromhex(adv_args.get("adv_data") or ""))
            self._emit(t, 37, ADV_AA, adv_pdu, ADV_CRC_INIT)
            t += _air_time(len(adv_pdu) - 2) + T_IFS
        ll = struct.pack("<I", link.aa) + link.crc_init.to_bytes(3, "little")
        ll += struct.pack("<BHHHH", 2, 0, int(round(link.interval / 0.00125)), 0, int(round(link.timeout / 0.01)))
        ll += (0x1FFFFFFFFF).to_bytes(5, "little") + bytes([link.hop | 1 << 5])  # all channels; SCA 151-250 ppm
        body = _addr(link.c_addr[1]) + _addr(link.p_addr[1]) + ll
        hdr0 = 0x05 | (0x40 if link.c_addr[0] else 0) | (0x80 if link.p_addr[0] else 0)
        pdu = bytes([hdr0, len(body)]) + body
        self._emit(t, 37, ADV_AA, pdu, ADV_CRC_INIT)
        end = t + _air_time(len(body))
        link.anchor = end + WINDOW_DELAY + 0.0005  # inside the 2.5 ms transmit window
        link.free = link.anchor

    def _link_of(self, r):
        link = self.by_handle.get((r.board, r.conn))
        if link is None or not link.alive or link.anchor is None:
            return None
        return link

    def _end_link(self, link):
        link.alive = False
        link.held = []
        for key in [k for k, v in self.by_handle.items() if v is link]:
            del self.by_handle[key]

    # ------------------------------------------------------------ data channel
    def _exchange(self, link, t, from_central, llid, payload):
        """One packet from one side and the other's empty PDU: in the event the previous exchange
        used if that is still running at `t` (its sender set More Data), else in the first
        connection event at or after `t`."""
        if link.central in self.down or link.peripheral in self.down:
            return
        event_end = link.anchor + (link.event + 1) * link.interval - WINDOW_DELAY
        if link.last and t <= link.free + 1e-9 and link.free + 2 * _air_time(LL_MAX + 4) < event_end:
            ev, k = link.free, link.event
            link.last[0 if from_central else 1].more_data()
        else:
            k = max(0, int(-(-(max(t, link.free) - link.anchor - 1e-9) // link.interval)))
            ev = link.anchor + k * link.interval
        channel = ((k + 1) * link.hop) % 37
        x = link.exchanges & 1
        pkts = []
        for central in (True, False):
            # a clean link: the central's SN and NESN are x, the peripheral's SN x and NESN not x
            hdr = (x << 3) | ((x if central else x ^ 1) << 2)
            body = payload if central == from_central else b""
            hdr |= llid if central == from_central else LLID_CONT
            flags = (PDU_TYPE_C2P if central else PDU_TYPE_P2C) | F_CRC_CHECKED | F_CRC_VALID
            cipher = link.enc[central]
            sealed = None
            if cipher is not None and body:
                # on the air: ciphertext + MIC; written: the plaintext, as a sniffer with the key shows it
                ct, mic = cipher.seal(hdr, body)
                sealed = ct + mic
                flags |= F_DECRYPTED | F_MIC_CHECKED | F_MIC_VALID
            pkt = self._emit(ev, channel, link.aa, bytes([hdr, len(body)]) + body, link.crc_init, flags, sealed)
            pkts.append(pkt)
            ev += _air_time(len(sealed) if sealed else len(body)) + T_IFS
        link.exchanges += 1
        link.free = ev
        link.event = k
        link.last = pkts

    def _send_l2cap(self, link, t, from_central, cid, payload):
        frame = struct.pack("<HH", len(payload), cid) + payload
        first = True
        while frame or first:
            chunk, frame = frame[:LL_MAX], frame[LL_MAX:]
            self._exchange(link, t, from_central, LLID_START if first else LLID_CONT, chunk)
            first = False

    def _control(self, link, t, from_central, opcode, params=b""):
        self._exchange(link, t, from_central, LLID_CTRL, bytes([opcode]) + params)

    def _flush_held(self, link, t):
        held, link.held = link.held, []
        for from_central, cid, payload in held:
            self._send_l2cap(link, t, from_central, cid, payload)

    # ------------------------------------------------------------ encryption
    def _enc_start(self, link, r):
        t = r.t
        if link.enc[True] is not None:
            # re-encryption: the encryption pause procedure first
            self._control(link, t, True, LL_PAUSE_ENC_REQ)
            self._control(link, t, False, LL_PAUSE_ENC_RSP)
            link.enc[False] = None
            link.enc[True] = None
            self._control(link, t, True, LL_PAUSE_ENC_RSP)
        link.procedure = True
        a = r.args
        rand = int(a.get("rand") or 0) & 0xFFFFFFFFFFFFFFFF
        ediv = int(a.get("ediv") or 0) & 0xFFFF
        skd_c = link.rng.getrandbits(64).to_bytes(8, "little")
        iv_c = link.rng.getrandbits(32).to_bytes(4, "little")
        ltk = bytes.fromhex(a["ltk"]) if a.get("ltk") else None
        link.enc_req = (skd_c, iv_c, ltk)
        self._control(link, t, True, LL_ENC_REQ, struct.pack("<QH", rand, ediv) + skd_c + iv_c)

    def _ltk_request(self, link, r):
        if link.enc_req is None:
            return
        skd_c, iv_c, ltk = link.enc_req
        skd_p = link.rng.getrandbits(64).to_bytes(8, "little")
        iv_p = link.rng.getrandbits(32).to_bytes(4, "little")
        self._control(link, r.t, False, LL_ENC_RSP, skd_p + iv_p)
        if ltk is None:
            ltk = link.rng.getrandbits(128).to_bytes(16, "big")  # a trace without it: any key
        # SKD = SKDp || SKDc and IV = IVp || IVc (the central's halves least significant)
        skd = skd_c + skd_p  # little-endian
        iv = iv_c + iv_p
        enc = Cipher(algorithms.AES(ltk), modes.ECB()).encryptor()
        sk = enc.update(skd[::-1]) + enc.finalize()  # e() takes MSB-first blocks
        link.session = (sk, iv)

    def _ltk_reply(self, link, r):
        if link.enc_req is None:
            return
        if not r.args.get("found"):
            self._control(link, r.t, False, LL_REJECT_IND, bytes([ERR_PIN_KEY_MISSING]))
            link.enc_req = link.session = None
            link.procedure = False
            self._flush_held(link, r.t)
            return
        self._control(link, r.t, False, LL_START_ENC_REQ)  # sent unencrypted

    def _enc_change(self, link, r):
        if r.board != link.peripheral or link.session is None:
            return
        if r.args.get("status") or not r.args.get("encrypted"):
            return
        sk, iv = link.session
        link.enc[True] = _Cipher(sk, iv, True)
        self._control(link, r.t, True, LL_START_ENC_RSP)
        link.enc[False] = _Cipher(sk, iv, False)
        self._control(link, r.t, False, LL_START_ENC_RSP)
        link.enc_req = link.session = None
        link.procedure = False
        self._flush_held(link, r.t)

    # ------------------------------------------------------------ the trace
    def feed(self, r):
        self.end = max(self.end, r.t)
        k, name = r.kind, r.name
        if k == "pdu":
            link = self._link_of(r)
            if link is None or r.board in self.down:
                return
            a = r.args
            payload = bytes.fromhex(a.get("hex") or "")
            from_central = link.sender_is_central(r.board)
            if link.procedure:
                link.held.append((from_central, a.get("cid", 4), payload))
            else:
                self._send_l2cap(link, r.t, from_central, a.get("cid", 4), payload)
            return
        if k != "link":
            return
        if name == "adv_start":
            self._adv_events(r.board, r.t)
            self.adv[r.board] = (r.t, r.args)
            self.last_adv[r.board] = r.args
        elif name == "adv_stop":
            self._adv_events(r.board, r.t)
        elif name == "connect":
            self._connect(r)
        elif name in ("power_off", "reset"):
            # RAM lost: its advertising and links end (a reset board boots at once; a powered-off one
            # stays silent until power_on)
            self._adv_events(r.board, r.t)
            if name == "power_off":
                self.down.add(r.board)
            for link in self.links:
                if link.alive and r.board in (link.central, link.peripheral):
                    self._end_link(link)
        elif name == "power_on":
            self.down.discard(r.board)
        else:
            link = self._link_of(r)
            if link is None:
                return
            if name == "enc_start":
                self._enc_start(link, r)
            elif name == "ltk_request":
                self._ltk_request(link, r)
            elif name == "ltk_reply":
                self._ltk_reply(link, r)
            elif name == "enc_change":
                self._enc_change(link, r)
            elif name == "terminate":
                self._control(link, r.t, link.sender_is_central(r.board), LL_TERMINATE_IND,
                              bytes([int(r.args.get("reason", 0x13)) & 0xFF]))
                self._end_link(link)
            elif name == "disconnect":
                self._end_link(link)

    def finish(self):
        for board in list(self.adv):
            self._adv_events(board, self.end, inclusive=True)
        return sorted(self.packets, key=lambda p: (p.t, p.seq))


def encode(trace, seed=1):
    """The pcap file (bytes) of a Trace's air."""
    sn = _Sniffer(seed)
    for r in trace.records:
        sn.feed(r)
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE)]
    out += [p.record() for p in sn.finish()]
    return b"".join(out)


def write(trace, path, seed=1):
    """Writes the pcap of a Trace to `path`; returns the number of packets."""
    data = encode(trace, seed)
    with open(path, "wb") as f:
        f.write(data)
    return _count(data)


def _count(data):
    n, off = 0, 24
    while off + 16 <= len(data):
        off += 16 + struct.unpack_from("<I", data, off + 8)[0]
        n += 1
    return n


def main(argv=None):
    import argparse

    from .trace import Trace

    ap = argparse.ArgumentParser(prog="python -m tools.blesim.capture",
                                 description="Turn a saved simulator trace (.jsonl) into a pcap for Wireshark.")
    ap.add_argument("trace", help="a trace saved as JSON lines (run.py --trace, multitest --trace)")
    ap.add_argument("pcap", help="the pcap file to write")
    a = ap.parse_args(argv)
    with open(a.trace) as f:
        trace = Trace.from_jsonl(f.read())
    n = write(trace, a.pcap)
    print("%s: %d packets" % (a.pcap, n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
