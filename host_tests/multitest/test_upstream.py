"""MicroPython's own two-board Bluetooth suite (tests/multi_bluetooth, unmodified, compared with
the .exp files real boards printed) on simulated ESP32 boards: every instance on the real
MicroPython interpreter, and on CPython for the tests that do not rely on MicroPython-only
semantics. The suite is read where it lives (tools/thirdparty.py); absent, this skips."""

import os

import pytest

from tools.blesim.run import micropython_exe
from tools.multitest import run_test
from tools.thirdparty import UPSTREAM_HINT, upstream_multitests

SUITE = upstream_multitests()
NAMES = sorted(f[:-3] for f in os.listdir(SUITE) if f.endswith(".py")) if SUITE else []

# ESP32 firmware is built without L2CAP channels (MICROPY_PY_BLUETOOTH_ENABLE_L2CAP_CHANNELS is
# 0 there), so these call multitest.skip() on a board, and here
NO_L2CAP = {"ble_l2cap", "perf_l2cap"}
# MicroPython-only semantics (docs/simulator.md): `bytes + str` (str has the buffer protocol),
# and a bytearray item set to 256 (MicroPython stores it truncated; CPython raises ValueError)
MICROPYTHON_ONLY = {"ble_irq_calls", "perf_gatt_char_write"}
# tests that report figures with multitest.output_metric()
METRICS = {"perf_gatt_char_write", "perf_gatt_notify"}


def _suite():
    if SUITE is None:
        pytest.skip(UPSTREAM_HINT)


def _check(name, interp):
    r = run_test(os.path.join(SUITE, name + ".py"), [interp])
    if name in NO_L2CAP:
        assert r.status == "skip", r.output
        return
    assert r.expected is not None, "no .exp for %s" % name
    assert r.status == "pass", "%s on %s differs from its .exp:\n%s" % (name, interp, r.output)
    if name in METRICS:
        assert r.metrics and all(m and "OUTPUT_METRIC" not in m for m in r.metrics)
        assert "OUTPUT_METRIC" not in r.output


@pytest.mark.parametrize("name", NAMES or ["multi_bluetooth"])
def test_upstream_on_micropython(name):
    _suite()
    try:
        micropython_exe()
    except RuntimeError:
        pytest.skip("no micropython interpreter")
    _check(name, "mp")


@pytest.mark.parametrize("name", [n for n in NAMES if n not in MICROPYTHON_ONLY] or ["multi_bluetooth"])
def test_upstream_on_cpython(name):
    _suite()
    _check(name, "cpython")


def test_the_suite_is_all_there():
    _suite()
    assert len(NAMES) == 19 and all(os.path.exists(os.path.join(SUITE, n + ".py.exp")) for n in NAMES)
    assert NO_L2CAP | MICROPYTHON_ONLY | METRICS <= set(NAMES)
