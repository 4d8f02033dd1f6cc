"""`machine` on a real-host board: the unix port's own module, plus what an ESP32 has and the
unix port lacks where a test needs it. `deepsleep(ms)` ends the process (RAM is lost, the
flash folder stays, the radio drops the board's links as a sleeping board's would); the
launcher restarts it, as the board would wake up.
"""

from umachine import *  # noqa: F401,F403


def deepsleep(ms=0):
    import sys

    sys.stdout.flush()
    raise SystemExit(0)
