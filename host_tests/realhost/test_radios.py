"""The radios' controller fixes (tools/realhost/radios.py), each checked on what a host sees:
HCI events on the wire. Bumble devices stand in for the hosts where no interpreter is needed;
the board-process cases run the real-host interpreter."""

import asyncio
import os
import select
import subprocess
import sys
import time

import pytest
from bumble import hci
from bumble.device import AdvertisingType, Device
from realkit import interpreter_or_skip

from tools.realhost import boards
from tools.realhost.radios import Radios, board_address
from tools.realhost.runner import run_boards

A, B = "a4cf12000011", "a4cf12000012"
PUBLIC = hci.OwnAddressType.PUBLIC


class Wire:
    """Every HCI packet each radio exchanged with its host, by radio name."""

    def __init__(self):
        self.packets = {}

    def tap(self, name, direction, packet):
        self.packets.setdefault(name, []).append((int(direction), bytes(packet)))

    def events(self, name, code, sub=None):
        return [p for d, p in self.packets.get(name, []) if d == 1 and p[0] == 4 and p[1] == code
                and (sub is None or p[3] == sub)]

    def adv_types(self, name):
        return sorted({p[5] for p in self.events(name, 0x3E, 0x02)})


def _addr(hexa):
    return hci.Address(":".join(hexa[i:i + 2] for i in range(0, 12, 2)).upper(), hci.Address.PUBLIC_DEVICE_ADDRESS)


@pytest.fixture
def air():
    wire = Wire()
    r = Radios(hci_tap=wire.tap).start()
    yield r, wire
    r.close()


def _device(radios, name, addr):
    radio = radios.controller(name, addr)

    async def make():
        d = Device.with_hci(name, _addr(addr), radio, radio)
        await d.power_on()
        return d
    return radios.call(make)


def test_distinct_deterministic_addresses():
    assert len({board_address(i) for i in range(8)}) == 8
    assert board_address(0) == board_address(0)


def test_legacy_scan_reports_carry_the_adv_type(air):
    radios, wire = air
    a, b = _device(radios, "a", A), _device(radios, "b", B)

    async def scan(adv_type, active):
        await a.start_advertising(adv_type, own_address_type=PUBLIC, advertising_data=b"\x02\x01\x06",
                                  scan_response_data=b"\x04\x09MPY", advertising_interval_min=20,
                                  advertising_interval_max=20)
        await b.start_scanning(legacy=True, active=active, own_address_type=PUBLIC)
        await asyncio.sleep(0.15)
        await b.stop_scanning()
        await a.stop_advertising()

    radios.call(scan, AdvertisingType.UNDIRECTED_SCANNABLE, False)
    assert wire.adv_types("b") == [2]  # ADV_SCAN_IND, as upstream's ble_gap_advertise.py.exp
    assert not wire.events("b", 0x3E, 0x0D)  # no extended reports: the feature bits are clear
    wire.packets.clear()
    radios.call(scan, AdvertisingType.UNDIRECTED_CONNECTABLE_SCANNABLE, True)
    assert wire.adv_types("b") == [0, 4]  # ADV_IND, and SCAN_RSP only to an active scan
    rsp = [p for p in wire.events("b", 0x3E, 0x02) if p[5] == 4]
    assert rsp[0][13:13 + rsp[0][13] + 1][1:] == b"\x04\x09MPY"  # the scan response data, not the adv data


def test_reset_drops_links_with_0x08_and_stops_advertising(air):
    radios, wire = air
    a, b = _device(radios, "a", A), _device(radios, "b", B)

    async def connect_then_reset():
        await a.start_advertising(own_address_type=PUBLIC, advertising_interval_min=20, advertising_interval_max=20)
        conn = await b.connect(_addr(A), own_address_type=PUBLIC)
        assert conn.self_address == _addr(B)
        await a.host.send_command(hci.HCI_Reset_Command())
        await asyncio.sleep(0.05)

    radios.call(connect_then_reset)
    gone = wire.events("b", 0x05)
    assert len(gone) == 1 and gone[0][6] == 0x08  # the peer: Connection Timeout, as for a lost link
    assert not wire.events("a", 0x05)  # the reset side is told nothing: its host forgot the link
    assert not radios.radios["a"].le_connections and not radios.radios["a"].le_legacy_advertiser.enabled


def test_data_after_encryption_change_waits_until_the_host_read_it(air):
    radios, _ = air
    pty = radios.add("host")
    fd = os.open(pty, os.O_RDWR | os.O_NOCTTY)
    try:
        port = radios.ports["host"]
        while not radios.call(lambda: port.up):  # the port notices its board
            time.sleep(0.01)
        enc = bytes([4, 0x08, 4, 0, 1, 0, 1])
        acl = bytes([2, 1, 0x20, 5, 0, 1, 0, 6, 0, 0x08])
        # the data waits behind the event (released once the board has read it)
        assert radios.call(lambda: (port.on_packet(enc), port.on_packet(acl), list(port.held))[2]) == [acl]
        assert _read(fd, len(enc)) == enc
        assert _read(fd, len(acl)) == acl  # read: the data follows, in order
    finally:
        os.close(fd)


def _read(fd, n):
    got = b""
    while len(got) < n:
        if not select.select([fd], [], [], 30)[0]:
            break
        got += os.read(fd, n - len(got))
    return got


def test_board_exit_drops_its_links_and_the_next_process_starts_clean(tmp_path):
    exe = interpreter_or_skip("esp")
    wire = Wire()
    radios = Radios(hci_tap=wire.tap).start()
    try:
        pty = radios.add("board", A)
        phone = _device(radios, "phone", B)
        script = tmp_path / "adv.py"
        script.write_text("import bluetooth, time\nb = bluetooth.BLE()\nb.active(1)\nprint('UP', b.config('mac'))\n"
                          "b.gap_advertise(20000, b'\\x02\\x01\\x06')\ntime.sleep(30)\n")
        env = boards.board_env(pty)
        for n in range(2):
            p = subprocess.Popen([exe, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 cwd=str(tmp_path))
            try:
                line = p.stdout.readline()
                assert line.startswith(b"UP (0, b'\\xa4\\xcf\\x12\\x00\\x00\\x11')"), (n, line, p.poll())
                radios.call(phone.connect, _addr(A), hci.OwnAddressType.PUBLIC)
            finally:
                p.kill()
                p.wait()
                p.stdout.close()
            assert radios.wait_down("board")
            time.sleep(0.05)
            gone = wire.events("phone", 0x05)
            assert len(gone) == n + 1 and gone[-1][6] == 0x08
    finally:
        radios.close()


def test_run_boards_kills_a_silent_board_and_leaves_nothing(tmp_path):
    interpreter_or_skip("esp")
    script = tmp_path / "hang.py"
    script.write_text("import time\nprint('ASLEEP')\ntime.sleep(60)\n")
    out = open(os.devnull, "w")
    res = run_boards([(str(script), {"fs": str(tmp_path / "fs")})], timeout=2, out=out)
    out.close()
    assert res[0].lines == ["ASLEEP"] and res[0].rc != 0
    assert not _processes_running(str(script))


def _processes_running(arg):
    found = []
    for pid in os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if arg.encode() in f.read().split(b"\0"):
                    found.append(pid)
        except OSError:
            pass
    return found


def test_radios_cli_prints_the_ptys_and_stops():
    p = subprocess.Popen([sys.executable, "-m", "tools.realhost.radios", "2"], stdout=subprocess.PIPE, text=True,
                         cwd=boards.ROOT)
    try:
        lines = [p.stdout.readline() for _ in range(3)]
        p.terminate()  # SIGTERM: as a tool or a user's kill stops it
        rc = p.wait(60)
    finally:
        if p.poll() is None:  # never leave it running, whatever failed
            p.kill()
            p.wait()
        p.stdout.close()
    assert rc == 0
    assert lines[0].startswith("board 0: MICROPYBTUART=/dev/pts/") and "A4:CF:12:52:00:01" in lines[0]
    assert lines[1].startswith("board 1: MICROPYBTUART=/dev/pts/")
