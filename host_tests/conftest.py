# Makes the board package and the simulator's stand-in modules importable
# under CPython, as they are on the board.
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for p in (os.path.join(ROOT, "lib"), os.path.join(ROOT, "tools", "blesim", "modules"), ROOT):
    if p not in sys.path:
        sys.path.insert(0, p)
