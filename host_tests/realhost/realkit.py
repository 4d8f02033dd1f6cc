"""The real-host tier: MicroPython's unix port with the real NimBLE host (esp-nimble and
mynewt-nimble builds) on virtual controllers (tools/realhost). Skipped with one line where the
interpreters cannot be had (no ../shared/thirdparty beside the checkout, no compiler)."""

import os

import pytest

from tools.realhost import boards

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_exe = {}


def interpreter_or_skip(host):
    """The host's interpreter (built once per session, cached by tools/realhost/build.py)."""
    if host not in _exe:
        try:
            _exe[host] = boards.interpreter(host)
        except boards.Unavailable as e:
            _exe[host] = e
    e = _exe[host]
    if isinstance(e, Exception):
        if e.missing:
            pytest.skip(str(e))
        pytest.fail("the %s real-host interpreter did not build: %s" % (host, e))
    return _exe[host]
