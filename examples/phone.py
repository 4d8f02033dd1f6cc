# A phone's side of examples/peripheral.py, for the simulator's "phone" profile: a central whose
# stack asks its user for the passkey (as Android and iOS do; a stock ESP32 central never does).
# Its user is whoever types on stdin: when asked, type the passkey the peripheral printed (or,
# for a numeric comparison, y or n). `--display` gives it a display and yes/no buttons.
#   python -m tools.blesim.run examples/peripheral.py phone:examples/phone.py
import sys

from central import Central

from blesmp.const import IO_DISPLAY_YESNO, IO_KEYBOARD_ONLY


class Phone(Central):
    def ask_user(self, conn, number):  # the simulated clock waits while the user types
        if number is None:
            print("TYPE THE PASSKEY SHOWN ON THE PERIPHERAL:")
            line = sys.stdin.readline().strip()
            self.sm.passkey_reply(conn, line.isdigit(), int(line) if line.isdigit() else 0)
        else:
            print("DOES THE PERIPHERAL SHOW %06d? (y/n)" % number)
            self.sm.confirm_reply(conn, sys.stdin.readline().strip() in ("y", "yes"))


if __name__ == "__main__":
    io = IO_DISPLAY_YESNO if "--display" in sys.argv else IO_KEYBOARD_ONLY
    sys.exit(0 if Phone(io=io, mitm=True, prompts=True).run() else 1)
