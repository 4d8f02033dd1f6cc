# blesmp key fob (the central): `make deploy APP=central` puts this on a second board
# as its main.py. It visits the lock twice: pairs (Just Works: all a central gets on
# stock firmware), then reconnects encrypted with the stored bond.
# Arguments (the simulator passes them; a board has none): visits, seconds between visits.
import sys

from centralapp import *  # noqa: F403

_args = getattr(sys, "argv", [])[1:]
run(cycles=int(_args[0]) if _args else 2, pause_ms=int(float(_args[1]) * 1000) if len(_args) > 1 else 1000)  # noqa: F405
