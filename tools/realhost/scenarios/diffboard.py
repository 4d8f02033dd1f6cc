# One ESP32 board of a differential-trace scenario (tools/realhost/difftrace.py), run unchanged
# on the simulator and on the real host. blesmp's SecurityManager + BondStore on both roles;
# every IRQ the firmware raises is recorded (event, tuple shape, secret type/key, what the
# handler returned), and so is every blesmp event. The record is printed at the end as
# `TR ...` lines, normalised so that the two worlds can be compared: connection handles -> h,
# addresses -> SELF/PEER/ZERO, other bytes -> their length.
#
#   diffboard.py ROLE SCENARIO PHASE SELF_HEX PEER_HEX      (ROLE: p = peripheral, c = central)
import sys
import time

import bluetooth
from micropython import const

from blesmp import const as C
from blesmp.manager import SecurityManager
from blesmp.store import BondStore

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_PERIPHERAL_CONNECT = const(7)
_IRQ_PERIPHERAL_DISCONNECT = const(8)
_IRQ_GET_SECRET = const(29)
_IRQ_SET_SECRET = const(30)
_IRQ_PASSKEY_ACTION = const(31)
_NO_HANDLE = (5, 6, 29, 30)  # scan results and the secret store carry no connection handle

ROLE, SCEN, PHASE = sys.argv[1], sys.argv[2], int(sys.argv[3])
SELF = bytes.fromhex(sys.argv[4])
PEER = bytes.fromhex(sys.argv[5])
SELF_LE = bytes(reversed(SELF))  # NimBLE's structs (secret keys) hold addresses LSB first
PEER_LE = bytes(reversed(PEER))
rec = []
state = {"conn": None, "auth": None, "down": False, "events": [], "nc": None}


def norm(v):
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return v
    if not isinstance(v, (bytes, bytearray, memoryview)):
        return type(v).__name__
    b = bytes(v)
    a = b[1:] if len(b) == 7 else b  # a secret's key: address type, then the address
    if a in (SELF, SELF_LE):
        return "SELF"
    if a in (PEER, PEER_LE):
        return "PEER"
    if b and not any(b):
        return "ZERO%d" % len(b)
    return "b%d" % len(b)


def shape(event, data):
    out = []
    for i, v in enumerate(data):
        if i == 0 and event not in _NO_HANDLE and isinstance(v, int) and v != 0xFFFF:
            out.append("h")
        elif event == _IRQ_PASSKEY_ACTION and i == 2:
            out.append("N" if v else v)  # the passkey / number to compare: random
        else:
            out.append(norm(v))
    return out


class TracedBLE:
    """The firmware's BLE object as blesmp sees it, with every IRQ recorded on the way in."""

    def __init__(self, ble):
        self._ble = ble

    def __getattr__(self, name):
        return getattr(self._ble, name)

    def irq(self, handler):
        def traced(event, data):
            entry = ["I", event, shape(event, data), None]
            rec.append(entry)
            r = handler(event, data)
            entry[3] = norm(r)
            return r

        self._ble.irq(traced)


def on_event(event, conn, value):
    if event == C.AUTH_CMPL_EVT:
        v = value
        rec.append(["E", "AUTH_CMPL", [v.success, v.reason, v.level, v.key_size, v.encrypted, v.authenticated,
                                       v.bonded, v.sc, v.reencrypt]])
        state["auth"] = v.success
    elif event in (C.PASSKEY_NOTIF_EVT, C.NC_REQ_EVT):
        rec.append(["E", event, "N"])
        if event == C.NC_REQ_EVT and SCEN.startswith("nc_"):
            state["nc"] = conn  # the user answers from the main loop
    else:
        rec.append(["E", event, norm(value) if not isinstance(value, (tuple, list)) else [norm(x) for x in value]])
    state["events"].append(event)


def app_irq(event, data):
    if event in (_IRQ_CENTRAL_CONNECT, _IRQ_PERIPHERAL_CONNECT):
        state["conn"] = data[0]
    elif event in (_IRQ_CENTRAL_DISCONNECT, _IRQ_PERIPHERAL_DISCONNECT):
        state["conn"] = None
        state["down"] = True


def wait(pred, ms):
    t0 = time.ticks_ms()
    while not pred():
        if time.ticks_diff(time.ticks_ms(), t0) > ms:
            return False
        time.sleep_ms(10)
        if state["nc"] is not None:
            sm.confirm_reply(state["nc"], SCEN == "nc_yes")
            state["nc"] = None
        sm.poll()  # no machine.Timer on the unix port: the app polls, as blesmp's docs say
    return True


def disconnect(conn):
    try:
        raw.gap_disconnect(conn)
    except OSError as e:
        rec.append(["N", "gap_disconnect", e.args[0]])


def dump(note):
    rec.append(["N", note])
    for r in rec:
        print("TR", repr(r))
    print("END")


raw = bluetooth.BLE()
ble = TracedBLE(raw)
kw = {}
if ROLE == "p":
    if SCEN == "window":
        kw["window"] = True  # never opened: new pairings are refused
    if SCEN == "sc_only":
        kw.update(sc_only=True, io=C.IO_DISPLAY_ONLY, mitm=True)
elif SCEN == "sc_only":
    kw["sc"] = False  # a legacy-only peer
if SCEN == "mid":  # numeric comparison: the peripheral's prompt stays open, the central leaves
    kw.update(io=C.IO_DISPLAY_YESNO, mitm=True)
if SCEN.startswith("passkey"):  # the lock displays a passkey, the phone's user types it
    kw.update(io=C.IO_DISPLAY_ONLY, mitm=True, insecure_static_passkey=123456)
if SCEN.startswith("nc_"):  # numeric comparison, answered on the lock
    kw.update(io=C.IO_DISPLAY_YESNO, mitm=True)
sm = SecurityManager(ble, store=BondStore("bonds.db"), bond=True, callback=on_event, handler=app_irq, timer=None,
                     **kw)
if ROLE == "p" and SCEN == "allow":
    sm.allow(0, bytes.fromhex("a4cf125200ee"))  # somebody else
if ROLE == "p" and SCEN == "removed" and PHASE == 2:
    rec.append(["N", "remove", sm.remove_bond_device(0, PEER)])


def peripheral():
    raw.gap_advertise(50000, adv_data=b"\x02\x01\x06")
    if not wait(lambda: state["conn"] is not None, 20000):
        return "no connection"
    if SCEN == "active_off":
        wait(lambda: state["auth"] is not None, 10000)
        time.sleep_ms(200)
        raw.active(False)
        return "active(False)"
    wait(lambda: state["down"], 20000)
    return "peer left"


def central():
    time.sleep_ms(300)  # the peripheral advertises first
    raw.gap_connect(0, PEER, 8000)  # a loaded machine may take a while
    if not wait(lambda: state["conn"] is not None, 10000):
        return "no connection"
    conn = state["conn"]
    time.sleep_ms(100)
    sm.set_encryption(conn, C.SEC_ENCRYPT)
    if SCEN == "mid":
        wait(lambda: state["auth"] is not None, 1500)  # the peripheral's user never answers
        disconnect(conn)
        wait(lambda: state["down"], 5000)
        return "left mid-pairing"
    wait(lambda: state["auth"] is not None or state["down"], 10000)
    time.sleep_ms(300)
    if state["conn"] is not None:
        disconnect(conn)
    wait(lambda: state["down"], 5000)
    return "done"


note = peripheral() if ROLE == "p" else central()
wait(lambda: False, 300)  # late events (bond saved, prompt cancelled) land in the record
dump(note)
