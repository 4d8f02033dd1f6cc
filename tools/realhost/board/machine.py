"""`machine` on a real-host board: the unix port's own module, plus what an ESP32 has and the
unix port lacks where a test needs it. `deepsleep(ms)` and `reset()` end the process with
status 99, the launchers' "boot me again" (RAM is lost, the flash folder stays, the radio
drops the board's links with 0x08 as a sleeping board's peers see); the time asleep is not
kept: the launcher starts the next process at once.
"""

from umachine import *  # noqa: F401,F403


def reset():
    import sys

    sys.stdout.flush()
    raise SystemExit(99)


def deepsleep(time_ms=None):
    reset()
