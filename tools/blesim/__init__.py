"""blesim: simulated ESP32 boards running MicroPython's BLE firmware, on a PC."""
import os as _os
import sys as _sys


def _paths():  # lib/ (blesmp) and the firmware stand-ins, importable as on the board
    root = _os.path.dirname(_os.path.dirname(_os.path.dirname(_os.path.abspath(__file__))))
    for p in (_os.path.join(root, "tools", "blesim", "modules"), _os.path.join(root, "lib")):
        if p not in _sys.path:
            _sys.path.insert(0, p)


_paths()

from .world import Board, World  # noqa: E402

__all__ = ["World", "Board"]
