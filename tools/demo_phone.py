"""The phone of `make demo`: NOT an ESP32. A board script for the simulator's "phone"
profile, a central whose stack hands passkey prompts to its app (as Android and iOS show a
passkey dialog); stock ESP32 firmware never does that for a central (micropython#17805).

It runs the fob's code (firmware/centralapp.py) with a keyboard (io=KeyboardOnly, MITM):
against the lock (DisplayYesNo) that is Passkey Entry, the lock displays and this side
types. The "user" is whoever writes to this process's stdin: `make demo` reads the passkey
the lock printed and types it here (or a wrong one, on purpose). While this process waits
for its user the simulated clock stands still, as the broker only advances time when every
board waits in time.sleep/machine.idle.
"""

import sys

from centralapp import CentralApp

from blesmp import const as C


def ask_user(kind, number):
    if kind == "passkey":
        print("PROMPT enter passkey shown on the lock")
        line = sys.stdin.readline().strip()
        if not line.isdigit():
            print("TYPED nothing (cancel)")
            return None
        print("TYPED %06d" % int(line))
        return int(line)
    print("PROMPT confirm %06d" % number)
    line = sys.stdin.readline().strip().lower()
    print("ANSWERED %s" % line)
    return line in ("y", "yes", "1")


app = CentralApp(io=C.IO_KEYBOARD_ONLY, mitm=True, central_prompts=True, prompt=ask_user, name="phone")
app.visit()
print("DONE")
