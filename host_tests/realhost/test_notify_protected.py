"""Issue 17 item 5 on the real NimBLE host (both builds): host_tests/multitest/ble_notify_protected.py,
whose .exp the simulator also meets. A friend pairs and subscribes, a stranger subscribes without
pairing; the stranger never receives the protect()ed value (NimBLE reads it for a notification with
conn 65535: blesmp refuses while a link below the level is connected), sm.notify() serves the friend.
With the rule from before the fix (every 65535 read allowed) the stranger got the value twice
here on esp-nimble: by gatts_write(send_update=True) and by gatts_notify without data."""

import os

import pytest
from realkit import ROOT, interpreter_or_skip

from tools import multitest
from tools.realhost import mtair

TEST = os.path.join(ROOT, "host_tests", "multitest", "ble_notify_protected.py")


@pytest.mark.parametrize("host", ["esp", "mynewt"])
def test_protected_value_never_notified_to_an_unpaired_subscriber(host):
    interpreter_or_skip(host)
    r = multitest.run_test(TEST, air=mtair.make(host))
    if r.status != "pass" and "stranger got []" in r.output:
        # real time on a loaded machine can miss a step (as test_difftrace retries); a leak shows
        # in the stranger's line, which no retry is granted for
        r = multitest.run_test(TEST, air=mtair.make(host))
    assert r.status == "pass", r.output
