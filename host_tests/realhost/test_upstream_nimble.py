"""MicroPython's own two-board Bluetooth suite (../shared/upstream/multi_bluetooth, unmodified,
with the .exp files real boards print) on the real NimBLE host, both builds: every test's
output must equal its .exp, as upstream's runner compares it.

The tests of one host run a few at a time (each has its own radios and processes)."""

import concurrent.futures
import os
import threading

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


def _results(host, snoop):
    """Runs the whole suite on `host` once, then hands out the results; each board's HCI traffic
    is kept in snoop/<test>/ for a failure's post-mortem."""
    with _lock:
        if host not in _runs:
            interpreter_or_skip(host)
            air = mtair.make(host, btsnoop=str(snoop / host))
            with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
                futs = {t: pool.submit(multitest.run_test, os.path.join(SUITE, t), air=air) for t in TESTS}
                _runs[host] = {t: f.result() for t, f in futs.items()}
    return _runs[host]


@pytest.mark.skipif(not TESTS, reason="upstream suite absent: set BLESMP_UPSTREAM=<micropython checkout>/tests "
                    "or put ../shared/upstream beside the checkout")
@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("test", TESTS or ["none"])
def test_upstream_on_real_host(host, test, tmp_path_factory):
    r = _results(host, tmp_path_factory.getbasetemp() / "btsnoop")[test]
    if r.status == "skip":
        pytest.skip("%s printed SKIP on %s" % (test, host))
    assert r.status == "pass", "%s on nimble-%s (HCI: %s):\n--- output\n%s--- expected\n%s" % (
        test, host, tmp_path_factory.getbasetemp() / "btsnoop" / host / test[:-3], r.output, r.expected)
