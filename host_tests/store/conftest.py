import sys


def pytest_terminal_summary(terminalreporter):
    # the power-loss figures as one line at the end, not in the middle of the progress
    pl = sys.modules.get("test_power_loss")
    if pl is not None and pl.FIGURES:
        terminalreporter.write_line("store power loss, cut points (torn and whole, with a second cut in recovery): "
                                    + "; ".join(pl.FIGURES))
