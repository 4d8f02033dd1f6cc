# Makes the board package and the simulator's stand-in modules importable
# under CPython, as they are on the board.
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for p in (os.path.join(ROOT, "lib"), os.path.join(ROOT, "tools", "blesim", "modules"), ROOT):
    if p not in sys.path:
        sys.path.insert(0, p)


# A green run is quiet: no dot per passing test. On a terminal one line shows the progress and
# is rewritten in place; in CI (no terminal) nothing is printed until the summary. Failures,
# skips and xfails are reported as pytest always does.
_PROGRESS = {"done": 0, "total": 0}


def pytest_collection_modifyitems(session, config, items):
    _PROGRESS["total"] = len(items)


def pytest_report_teststatus(report, config):
    if report.passed and report.when == "call" and not hasattr(report, "wasxfail"):
        return "passed", "", "PASSED"
    return None


def pytest_runtest_logfinish(nodeid, location):
    _PROGRESS["done"] += 1
    tw = _terminal()
    if tw is not None and sys.__stdout__ is not None and sys.__stdout__.isatty():
        line = "%d/%d %s" % (_PROGRESS["done"], _PROGRESS["total"], nodeid)
        width = tw.fullwidth - 1
        tw.write("\r" + line[:width].ljust(width))
        tw.flush()
        if _PROGRESS["done"] == _PROGRESS["total"]:
            tw.write("\r" + " " * width + "\r")


_REPORTER = []


def pytest_configure(config):
    _REPORTER.append(config)


def _terminal():
    if not _REPORTER:
        return None
    rep = _REPORTER[0].pluginmanager.get_plugin("terminalreporter")
    return None if rep is None else rep._tw
