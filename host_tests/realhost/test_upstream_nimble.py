"""MicroPython's own two-board Bluetooth suite (../shared/upstream/multi_bluetooth, unmodified,
with the .exp files real boards print) on the real NimBLE host, both builds: every test's
output must equal its .exp, as upstream's runner compares it.

The tests of one host run a few at a time (each has its own radios and processes)."""

import concurrent.futures
import os
import threading
import warnings

import pytest
from realkit import ROOT, interpreter_or_skip

from tools import multitest
from tools.realhost import mtair

UPSTREAM = os.environ.get("BLESMP_UPSTREAM") or os.path.join(ROOT, "..", "shared", "upstream")
SUITE = os.path.join(UPSTREAM, "multi_bluetooth")
TESTS = sorted(f for f in os.listdir(SUITE) if f.endswith(".py")) if os.path.isdir(SUITE) else []
WORKERS = 1  # one at a time: on 2 shared cores, parallel runs starved timing-bound tests (ble_subscribe: 100 ms)
HOSTS = ("esp", "mynewt")

_lock = threading.Lock()
_runs = {}


# What a board process prints when it missed one of the suite's own deadlines (a wait_for_event
# timeout, NimBLE's 2 s HCI command timeout, the runner's 10 s silence); a defect fails twice.
MISSED_DEADLINE = ("Timeout waiting for", "ETIMEDOUT", "OSError: -19", "\nTIMEOUT\n")


def _results(host, snoop):
    """Runs the whole suite on `host` once, then hands out the results; each board's HCI traffic
    is kept in snoop/<test>/ for a failure's post-mortem. The suite's deadlines are those of
    boards with a CPU each: a test that failed only by missing one (the machine is shared and
    loaded) runs once more; its first output stays in `first` for the message."""
    with _lock:
        if host not in _runs:
            interpreter_or_skip(host)
            air = mtair.make(host, btsnoop=str(snoop / host))
            with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
                futs = {t: pool.submit(multitest.run_test, os.path.join(SUITE, t), air=air) for t in TESTS}
                runs = {t: f.result() for t, f in futs.items()}
            for t, r in runs.items():
                if r.status == "fail" and any(m in r.output for m in MISSED_DEADLINE):
                    again = multitest.run_test(os.path.join(SUITE, t), air=air)
                    again.first = r.output
                    runs[t] = again
                    warnings.warn("%s on nimble-%s missed a deadline (machine load?), ran again: %s"
                                  % (t, host, again.status), stacklevel=1)
            _runs[host] = runs
    return _runs[host]


@pytest.mark.skipif(not TESTS, reason="upstream suite absent: set BLESMP_UPSTREAM=<micropython checkout>/tests "
                    "or put ../shared/upstream beside the checkout")
@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("test", TESTS or ["none"])
def test_upstream_on_real_host(host, test, tmp_path_factory):
    r = _results(host, tmp_path_factory.getbasetemp() / "btsnoop")[test]
    if r.status == "skip":
        pytest.skip("%s printed SKIP on %s" % (test, host))
    assert r.status == "pass", "%s on nimble-%s (HCI: %s):\n--- output\n%s--- expected\n%s%s" % (
        test, host, tmp_path_factory.getbasetemp() / "btsnoop" / host / test[:-3], r.output, r.expected,
        "--- first run (a missed deadline)\n" + r.first if getattr(r, "first", None) else "")
