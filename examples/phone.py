# A phone's side of examples/peripheral.py, for the simulator's "phone" profile: a central whose
# stack asks its user for the passkey (as Android and iOS do; a stock ESP32 central never does).
# Its user is whoever types on stdin: when asked, type the passkey the peripheral printed.
#   python -m tools.blesim.run examples/peripheral.py phone:examples/phone.py
import sys

from central import Central

from blesmp.const import IO_KEYBOARD_ONLY


class Phone(Central):
    def type_passkey(self, conn):
        print("TYPE THE PASSKEY SHOWN ON THE PERIPHERAL:")
        line = sys.stdin.readline().strip()  # the simulated clock waits for the user
        self.sm.passkey_reply(conn, line.isdigit(), int(line) if line.isdigit() else 0)


if __name__ == "__main__":
    sys.exit(0 if Phone(io=IO_KEYBOARD_ONLY, mitm=True, prompts=True).run() else 1)
