# Prints the hardening figures of this run (engine fuzz cases, cut points tried, bonds lost)
# at the end of pytest's summary; `make fuzz` (tools/fuzz.py) prints the long run's.
import sys


def pytest_terminal_summary(terminalreporter):
    fz = sys.modules.get("smpfuzz")
    tb = sys.modules.get("test_hardening_boards")
    if fz is None and tb is None:
        return
    parts = []
    if fz is not None:
        parts.append("SMP engine fuzz cases run: %d" % fz.CASES[0])
    if tb is not None:
        f = tb.FIGURES
        parts.append("cut points tried: %d, bonds lost: %d" % (f["cut points tried"], f["bonds lost"]))
    terminalreporter.write_line("hardening: " + "; ".join(parts))
