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
    if isinstance(_exe[host], Exception):
        pytest.skip(str(_exe[host]))
    return _exe[host]
