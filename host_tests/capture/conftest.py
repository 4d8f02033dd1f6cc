import os
import sys

import pytest

# sniff.py (the scapy reader) and the simulator scenario helpers (host_tests/sim/simhelpers.py)
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "sim"))
sys.path.insert(0, HERE)
pytest.register_assert_rewrite("sniff")
