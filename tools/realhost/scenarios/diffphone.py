# The phone of a differential-trace scenario on the simulator (profile "phone": a central whose
# stack hands it passkey prompts, as a phone's does; not an ESP32). On the real host a Bumble
# device plays it (tools/realhost/difftrace.py). Its own trace is not compared.
#
#   diffphone.py SCENARIO SELF_HEX LOCK_HEX
import sys
import time

import bluetooth

SCEN = sys.argv[1]
LOCK = bytes.fromhex(sys.argv[3])
ble = bluetooth.BLE()
secrets = {}
st = {"conn": None, "enc": False, "down": False}


def irq(event, data):
    if event == 7:
        st["conn"] = data[0]
    elif event == 8:
        st["conn"] = None
        st["down"] = True
    elif event == 28:
        st["enc"] = True
    elif event == 29:
        t, i, key = data
        if key is None:
            vals = [v for (tt, _), v in sorted(secrets.items()) if tt == t]
            return vals[i] if i < len(vals) else None
        return secrets.get((t, bytes(key)))
    elif event == 30:
        t, key, val = data
        if val is None:
            return secrets.pop((t, bytes(key)), None) is not None
        secrets[(t, bytes(key))] = bytes(val)
        return True
    elif event == 31:
        h, action, _ = data
        if action == 2:  # the user types what the lock displays (or not)
            ble.gap_passkey(h, 2, 123456 if SCEN == "passkey_ok" else 111111)
        elif action == 4:
            ble.gap_passkey(h, 4, 1)
    return None


def wait(pred, ms):
    t0 = time.ticks_ms()
    while not pred() and time.ticks_diff(time.ticks_ms(), t0) < ms:
        time.sleep_ms(10)


ble.irq(irq)
if SCEN == "keysize7":  # Just Works; the profile (phone-k7) offers a 7-byte key at most
    ble.config(io=3, mitm=False, bond=True, le_secure=True)
else:
    ble.config(io=2 if SCEN.startswith("passkey") else 1, mitm=True, bond=True, le_secure=True)
ble.active(True)
time.sleep_ms(300)
ble.gap_connect(0, LOCK, 8000)
wait(lambda: st["conn"] is not None, 10000)
if st["conn"] is not None:
    ble.gap_pair(st["conn"])
    wait(lambda: st["enc"] or st["down"], 15000)
    if not SCEN.endswith("_leave"):  # ..._leave: the phone disconnects as soon as its pairing ends
        time.sleep_ms(300)
    if st["conn"] is not None:
        ble.gap_disconnect(st["conn"])
    wait(lambda: st["down"], 5000)
print("END")
