# A phone that opens examples/aioble_lock.py: reads the lock state (pairing with the passkey its
# user types when refused), then writes "unlocked". Runs on the simulator's "phone" profile.
import sys

import bluetooth
from phone import Phone

from blesmp.const import IO_KEYBOARD_ONLY

LOCK_STATE = bluetooth.UUID("5ec0c001-b1e5-4d50-9000-00000000c000")

if __name__ == "__main__":
    p = Phone(io=IO_KEYBOARD_ONLY, mitm=True, prompts=True, name=b"blesmp-lock", uuid=LOCK_STATE)
    sys.exit(0 if p.run(write=b"unlocked") else 1)
