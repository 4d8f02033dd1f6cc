"""SMP tests: print the PDU trace (opcode names + hex) of every link of a test that fails."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tracelog  # noqa: E402


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    del tracelog.LIVE[:]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and tracelog.LIVE:
        for i, link in enumerate(tracelog.LIVE[-4:]):
            report.sections.append(("SMP PDU trace %d" % (i + 1), link.trace_text()))
