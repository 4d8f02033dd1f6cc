"""Issue 16's audit item 5 on the real NimBLE host (both builds): a pairing without bonding
distributes keys (ble_sm_pair_req_fill) yet stores nothing, as the simulator's firmware model
does (host_tests/sim/test_firmware_audit.py::test_keys_are_distributed_without_bonding_and_dropped)."""

import io

import pytest
from realkit import interpreter_or_skip

from tools.realhost.runner import run_boards

P_ADDR, C_ADDR = "a4cf12520011", "a4cf12520012"

# One script for both roles: argv = role, peer address (hex), bond (0/1). It prints the
# ENCRYPTION_UPDATE it saw and the secret types it was asked to store (10, our IRK, aside).
BOARD = r'''
import sys
import time

import bluetooth

ROLE, PEER, BOND = sys.argv[1], bytes.fromhex(sys.argv[2]), sys.argv[3] == "1"
ble = bluetooth.BLE()
st = {"conn": None, "enc": None, "down": False, "sets": []}
secrets = {}


def irq(event, data):
    if event in (1, 7):
        st["conn"] = data[0]
    elif event in (2, 8):
        st["down"] = True
    elif event == 28:
        st["enc"] = tuple(data[1:])
    elif event == 29:
        t, i, key = data
        if key is None:
            vals = [v for (tt, _k), v in secrets.items() if tt == t]
            return vals[i] if i < len(vals) else None
        return secrets.get((t, bytes(key)))
    elif event == 30:
        t, key, val = data
        if t != 10:
            st["sets"].append(t)
        if val is None:
            return secrets.pop((t, bytes(key)), None) is not None
        secrets[(t, bytes(key))] = bytes(val)
        return True
    return None


def wait(pred, ms):
    t0 = time.ticks_ms()
    while not pred() and time.ticks_diff(time.ticks_ms(), t0) < ms:
        time.sleep_ms(10)


ble.irq(irq)
ble.config(bond=BOND, le_secure=True, mitm=False, io=3)
ble.active(True)
if ROLE == "p":
    ble.gap_advertise(30000, b"\x02\x01\x06")
    wait(lambda: st["down"], 20000)
else:
    time.sleep_ms(300)
    ble.gap_connect(0, PEER, 8000)
    wait(lambda: st["conn"] is not None, 9000)
    ble.gap_pair(st["conn"])
    wait(lambda: st["enc"] is not None, 10000)
    time.sleep_ms(1000)  # the peripheral has the central's keys
    ble.gap_disconnect(st["conn"])
    wait(lambda: st["down"], 5000)
print("enc", st["enc"])
print("sets", st["sets"])
ble.active(False)
'''

KEYS = ["IDENTITY_INFORMATION", "IDENTITY_ADDRESS_INFORMATION", "SIGNING_INFORMATION"]  # LE SC: no ENC


@pytest.mark.parametrize("host", ["esp", "mynewt"])
def test_keys_are_distributed_without_bonding_and_dropped_on_the_real_host(host, tmp_path):
    interpreter_or_skip(host)
    script = tmp_path / "board.py"
    script.write_text(BOARD)
    entries = [(str(script), {"name": "p", "addr": P_ADDR, "fs": str(tmp_path / "p"), "args": ["p", C_ADDR, "1"]}),
               (str(script), {"name": "c", "addr": C_ADDR, "fs": str(tmp_path / "c"), "args": ["c", P_ADDR, "0"]})]
    res = run_boards(entries, host=host, out=io.StringIO(), timeout=40)
    lines = {r.name: r.lines for r in res}
    for name in ("p", "c"):
        assert "enc (1, 0, 0, 16)" in lines[name], lines
        assert "sets []" in lines[name], lines
    tr = res.trace
    req = tr.select("pdu", "c", "PAIRING_REQUEST")[0].args["hex"]
    assert req[6:8] == "08" and req[-4:] == "0707", req  # no bonding flag, all keys asked
    for name in ("p", "c"):
        sent = [r.name for r in tr.select("pdu", name) if r.name in KEYS]
        assert sent == KEYS, (name, sent)
