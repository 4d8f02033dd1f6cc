# Pairing from the REPL: the lines you type at a board's REPL (mpremote), as a script. Paste the
# lines up to the loop; prompts appear as "[pair] ..." lines and you answer with agent.yes(),
# agent.no() or agent.pin(123456), and look with sm.status(). As a script, the loop reads the
# same answers from stdin (y, n or the digits) - that is how it runs on a simulated board:
#   python -m tools.blesim.run examples/repl_session.py     (then a phone: docs/simulator.md)
import time

import bluetooth

from blesmp.agents import ConsoleAgent
from blesmp.const import IO_DISPLAY_YESNO
from blesmp.manager import SecurityManager

agent = ConsoleAgent()
ble = bluetooth.BLE()
sm = SecurityManager(ble, io=IO_DISPLAY_YESNO, mitm=True, agent=agent)
ble.gap_advertise(100000, b"\x02\x01\x06\x0c\x09blesmp-demo")
print("READY: connect and pair from the other device")

shown = 0
while True:
    agent.poll_stdin()  # at the REPL you type agent.yes() etc. instead
    n = sm.get_bond_device_num()
    if n != shown:
        shown = n
        sm.status()
    time.sleep_ms(50)
