"""Captures (tools/blesim/capture.py): every simulated run opens in Wireshark.

Each capture is read back with decoders nobody here wrote: scapy's Bluetooth LE layers (pinned in
requirements.txt) for every CRC, L2CAP reassembly, SMP/ATT opcode and byte against the trace,
and Wireshark's own dissectors (tshark) where installed."""

import os
import random
import shutil
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from scapy.layers.bluetooth4LE import BTLE, BTLE_DATA, BTLE_RF, LL_ENC_REQ, LL_ENC_RSP, LL_REJECT_IND
from simhelpers import (
    _IRQ_CENTRAL_DISCONNECT,
    _IRQ_ENCRYPTION_UPDATE,
    _IRQ_GATTC_READ_DONE,
    _IRQ_MTU_EXCHANGED,
    Recorder,
    Store,
    connect,
)
from sniff import ADV_AA, Capture, assert_matches, encryption_starts, scapy_crc_init, wireshark_complaints

from tools.blesim import World, capture
from tools.blesim.firmware import UUID, secstruct
from tools.blesim.trace import Trace

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENC_START = [("C", 0x03, False), ("P", 0x04, False), ("P", 0x05, False), ("C", 0x06, True), ("P", 0x06, True)]


def pair(profile="esp32", cfg=None, stores=(None, None)):
    w = World(profile=profile)
    p, c = w.board("p"), w.board("c")
    recs = []
    for b, st in zip((p, c), stores):
        r = Recorder(b.ble, st)
        if cfg:
            b.ble.config(**cfg)
        b.ble.irq(r)
        b.ble.active(True)
        recs.append(r)
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: recs[0].last(_IRQ_ENCRYPTION_UPDATE) and recs[1].last(_IRQ_ENCRYPTION_UPDATE), 5)
    w.run(0.5)
    return w, p, c, recs, hc


def visit_again(w, p, c, recs, hc):
    c.ble.gap_disconnect(hc)
    assert w.run_until(lambda: recs[0].last(_IRQ_CENTRAL_DISCONNECT), 2)
    for r in recs:
        r.clear()
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    w.run(2)
    c.ble.gap_disconnect(hc)
    w.run(1)


def data_links(cap):
    return list(cap.links)


# ---------------------------------------------------------------------------- the encodings


def test_crc24_is_the_one_scapy_computes():
    rng = random.Random(7)
    for _ in range(300):
        pdu = bytes(rng.getrandbits(8) for _ in range(rng.randint(2, 40)))
        init = rng.choice((0x555555, rng.getrandbits(24)))
        assert capture.crc24(pdu, init) == BTLE.compute_crc(pdu, scapy_crc_init(init))


def test_access_addresses_follow_the_specification():
    rng = random.Random(3)
    for _ in range(500):
        aa = capture._access_address(rng)
        bits = "{:032b}".format(aa)
        assert aa != ADV_AA and bin(aa ^ ADV_AA).count("1") > 1
        assert "0" * 7 not in bits and "1" * 7 not in bits
        assert len(set(aa.to_bytes(4, "little"))) > 1
        assert sum(a != b for a, b in zip(bits, bits[1:])) <= 24
        assert sum(a != b for a, b in zip(bits[:6], bits[1:6])) >= 2


# ---------------------------------------------------------------------------- simulated runs


@pytest.mark.parametrize("sc", [True, False], ids=["le_sc", "legacy"])
def test_bonded_pairing_then_stored_key_visit(tmp_path, sc):
    st = (Store(), Store())
    w, p, c, recs, hc = pair(cfg={"bond": True, "le_secure": sc}, stores=st)
    c.ble.gap_pair(hc)  # bonded and encrypted: the central refreshes the encryption with the LTK
    w.run(1)
    visit_again(w, p, c, recs, hc)
    path = tmp_path / "run.pcap"
    n = capture.write(w.trace, str(path))
    cap = assert_matches(w.trace, path)
    assert n == len(cap.packets) and cap.crc_checked > 0
    assert not wireshark_complaints(path)
    first, second = data_links(cap)
    assert first != second
    # the encryption start on both visits (the refresh after an encryption pause); the second visit
    # without any SMP on the air
    pause = [("C", 0x0A, True), ("P", 0x0B, True), ("C", 0x0B, False)]
    assert encryption_starts(cap, first) == ENC_START + pause + ENC_START + [("C", 0x02, True)]
    assert encryption_starts(cap, second) == ENC_START + [("C", 0x02, True)]
    assert not [s for s in cap.sdus if s.aa == second and s.cid == 6]
    # key distribution is encrypted and shown decrypted: legacy's LTK (and EDIV/Rand) in the clear
    dist = [s for s in cap.sdus if s.aa == first and s.cid == 6 and s.payload[0] >= 0x06 and s.payload[0] <= 0x0A]
    assert dist and all(s.decrypted for s in dist)
    assert any(s.payload[0] == 0x06 for s in dist) == (not sc)
    # the CONNECT_IND carries the link's parameters
    assert cap.links[first]["interval"] == 24 and cap.links[first]["timeout"] == 256


def test_negative_ltk_reply_is_an_ll_reject(tmp_path):
    sp, sc = Store(), Store()
    w, p, c, recs, hc = pair(profile="nimble", cfg={"bond": True}, stores=(sp, sc))
    sp.secrets.clear()  # the peripheral lost the bond: it answers the LTK request negatively
    visit_again(w, p, c, recs, hc)
    path = tmp_path / "run.pcap"
    capture.write(w.trace, str(path))
    cap = assert_matches(w.trace, path)
    assert not wireshark_complaints(path)
    second = data_links(cap)[1]
    assert encryption_starts(cap, second)[:3] == [("C", 0x03, False), ("P", 0x04, False), ("P", 0x0D, False)]
    rejects = [p for p in cap.packets if p.haslayer(LL_REJECT_IND)]
    assert [r[LL_REJECT_IND].code for r in rejects] == [0x06]  # PIN or Key Missing
    assert not [s for s in cap.sdus if s.aa == second and s.decrypted]


def test_a_key_mismatch_ends_the_link_after_ll_start_enc_req(tmp_path):
    sp, sc = Store(), Store()
    w, p, c, recs, hc = pair(cfg={"bond": True}, stores=(sp, sc))
    k = (1, secstruct.store_key(0, c.public_addr))
    blob = bytearray(sp.secrets[k])
    blob[24] ^= 1  # the peripheral's copy of the LTK is damaged: both ends encrypt with different keys
    sp.secrets[k] = bytes(blob)
    visit_again(w, p, c, recs, hc)
    assert [r.args["reason"] for r in w.trace.select("link", name="disconnect")][-2:] == [0x3D, 0x3D]
    path = tmp_path / "run.pcap"
    capture.write(w.trace, str(path))
    cap = assert_matches(w.trace, path)
    assert not wireshark_complaints(path)
    second = data_links(cap)[1]
    assert encryption_starts(cap, second) == [("C", 0x03, False), ("P", 0x04, False), ("P", 0x05, False)]
    assert not [s for s in cap.sdus if s.aa == second and s.decrypted]


def test_encrypted_packets_carry_the_real_mic_and_crc(tmp_path):
    """Recomputes, from the LTK in the trace and the SKD/IV halves scapy reads from LL_ENC_REQ/RSP,
    the ciphertext and MIC (AES-CCM, Vol 6 Part E) of every decrypted packet, and checks that the
    CRC it carries is the one of that ciphertext."""
    w, p, c, recs, hc = pair(cfg={"bond": True})
    path = tmp_path / "run.pcap"
    capture.write(w.trace, str(path))
    cap = Capture(path)
    ltk = bytes.fromhex(w.trace.select("link", name="enc_start")[0].args["ltk"])
    req = next(x[LL_ENC_REQ] for x in cap.packets if x.haslayer(LL_ENC_REQ))
    rsp = next(x[LL_ENC_RSP] for x in cap.packets if x.haslayer(LL_ENC_RSP))
    skd = req.skdm.to_bytes(8, "little") + rsp.skds.to_bytes(8, "little")
    iv = req.ivm.to_bytes(4, "little") + rsp.ivs.to_bytes(4, "little")
    e = Cipher(algorithms.AES(ltk), modes.ECB()).encryptor()
    ccm = AESCCM(e.update(skd[::-1]) + e.finalize(), tag_length=4)
    counters = {True: 0, False: 0}
    checked = 0
    for x in cap.packets:
        if not (x.haslayer(BTLE_DATA) and x[BTLE_RF].decrypted):
            continue
        assert x[BTLE_RF].mic_checked and x[BTLE_RF].mic_valid and x[BTLE_RF].crc_checked
        central = x[BTLE_RF].type == 2
        raw = bytes(x[BTLE])
        hdr, body = raw[4], raw[6:-3]
        nonce = (counters[central] | (central << 39)).to_bytes(5, "little") + iv
        counters[central] += 1
        sealed = ccm.encrypt(nonce, body, bytes([hdr & 0xE3]))
        init = scapy_crc_init(cap.links[x[BTLE].access_addr]["crc_init"])
        assert raw[-3:] == BTLE.compute_crc(bytes([hdr, len(sealed)]) + sealed, init)
        checked += 1
    assert checked >= 8  # LL_START_ENC_RSPs and the keys of both sides


def test_a_long_att_value_is_fragmented_and_reassembled(tmp_path):
    w = World()
    p, c = w.board("p"), w.board("c")
    rp, rc = Recorder(p.ble), Recorder(c.ble)
    for b, r in ((p, rp), (c, rc)):
        b.ble.irq(r)
        b.ble.active(True)
        b.ble.config(mtu=185)
    ((h,),) = p.ble.gatts_register_services(((UUID(0x180F), ((UUID(0x2A19), 0x02),)),))
    p.ble.gatts_set_buffer(h, 150)
    p.ble.gatts_write(h, bytes(range(150)))
    hp, hc = connect(w, p, c)
    c.ble.gattc_exchange_mtu(hc)
    assert w.run_until(lambda: rc.last(_IRQ_MTU_EXCHANGED), 2)
    c.ble.gattc_read(hc, h)
    assert w.run_until(lambda: rc.last(_IRQ_GATTC_READ_DONE), 2)
    path = tmp_path / "run.pcap"
    capture.write(w.trace, str(path))
    cap = assert_matches(w.trace, path)
    assert not wireshark_complaints(path)
    rsp = [s for s in cap.sdus if s.cid == 4 and s.payload[0] == 0x0B]
    assert rsp and len(rsp[0].payload) > 140  # seven 27-octet LL fragments, one ATT Read Response
    assert rsp[0].payload[1:] == bytes(range(len(rsp[0].payload) - 1))


# ---------------------------------------------------------------------------- make demo


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("demo")
    r = subprocess.run([sys.executable, "tools/demo.py", "--no-chart", "--svg-dir", str(d)], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    return d


def demo_trace(d, n):
    return Trace.from_jsonl((d / ("step%d.jsonl" % n)).read_text())


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_demo_capture_matches_its_trace(demo_dir, n):
    trace = demo_trace(demo_dir, n)
    cap = assert_matches(trace, demo_dir / ("step%d.pcap" % n))
    names = [r.name for r in trace.records if r.kind == "pdu" and r.args.get("layer") == "smp"]
    assert len([s for s in cap.sdus if s.cid == 6]) == len(names)
    if n in (1, 2):
        assert names[:2] == ["PAIRING_REQUEST", "PAIRING_RESPONSE"] and "PAIRING_DHKEY_CHECK" in names
        assert encryption_starts(cap, data_links(cap)[0])[:5] == ENC_START
    if n == 4:
        assert names[-1] == "PAIRING_FAILED" and not [c for c in cap.control if c[2] == 0x03]


def test_wireshark_decodes_the_demo_captures_without_a_complaint(demo_dir):
    tshark = shutil.which("tshark")
    if not tshark:
        pytest.skip("tshark not installed (apt-get install tshark): Wireshark's check of the captures skipped")
    for n in (1, 2, 3, 4):
        path = str(demo_dir / ("step%d.pcap" % n))
        assert wireshark_complaints(path) == [], "step%d" % n
        smp = subprocess.run([tshark, "-r", path, "-Y", "btsmp", "-T", "fields", "-e", "btsmp.opcode"],
                             capture_output=True, text=True, timeout=120).stdout.split()
        trace = demo_trace(demo_dir, n)
        want = [r.args["hex"][:2] for r in trace.records if r.kind == "pdu" and r.args.get("layer") == "smp"]
        assert [int(x, 16) for x in smp] == [int(x, 16) for x in want]


def test_multitest_and_run_write_a_capture_per_test_and_run(tmp_path):
    test = os.path.join(ROOT, "host_tests", "multitest", "ble_pair.py")
    r = subprocess.run([sys.executable, "tools/multitest.py", "--pcap", str(tmp_path), "--trace", str(tmp_path),
                        test], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    trace = Trace.from_jsonl((tmp_path / "ble_pair.jsonl").read_text())
    cap = assert_matches(trace, tmp_path / "ble_pair.pcap")
    assert [s for s in cap.sdus if s.cid == 6]
    # a saved trace converts the same way from the command line
    out = tmp_path / "again.pcap"
    r = subprocess.run([sys.executable, "-m", "tools.blesim.capture", str(tmp_path / "ble_pair.jsonl"), str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and out.read_bytes() == (tmp_path / "ble_pair.pcap").read_bytes()
