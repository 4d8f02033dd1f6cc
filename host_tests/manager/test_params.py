"""SecurityManager's parameters come from one table (blesmp.config.PARAMS): the constructor and
set_security_param take them from it, check them with it, and the manual lists exactly it."""

import os
import re

import pytest

from blesmp import config
from blesmp.manager import SecurityManager

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "security-manager.md")


class _BLE:
    def config(self, *a, **kw):
        return None

    def irq(self, handler):
        self.handler = handler

    def active(self, on=None):
        return True


class _Store(dict):
    def get_secret(self, t, i, k):
        return None

    def set_secret(self, t, k, v):
        return True


def _sm(**kw):
    return SecurityManager(_BLE(), store=_Store(), timer=None, clock=lambda: 0, **kw)


def test_the_manual_lists_every_parameter_with_its_default_and_check():
    with open(DOC, encoding="utf-8") as f:
        rows = re.findall(r"^\| `(\w+)` \| `(.*?)` \| (.*?) \|", f.read(), re.M)
    assert [(n, d) for n, d, _ in rows] == [(n, repr(d)) for n, d, _, _ in config.PARAMS]
    for (n, _, allowed), (_, _, check, _) in zip(rows, config.PARAMS):
        if check is None:
            assert allowed.strip() == "", n
        elif isinstance(check[0], str):
            assert re.findall(r'"(\w+)"', allowed) == list(check), n
        else:
            assert allowed.strip() == "%d..%d" % check, n


def test_defaults_come_from_the_table():
    sm = _sm()
    assert (sm.io, sm.bond, sm.mitm, sm.sc, sm.min_key_size, sm.level, sm.repeat) == (3, True, False, True, 16, 1,
                                                                                       "stronger")
    assert sm.prompt_timeout_ms == 25000 and sm.backoff_ms == 2000 and sm.central_stall_ms == 5000


def test_unknown_and_out_of_range_parameters_are_refused():
    with pytest.raises(TypeError, match="min_keysize"):
        _sm(min_keysize=7)  # a typo is not silently ignored
    with pytest.raises(ValueError, match="min_key_size must be 7..16"):
        _sm(min_key_size=6)
    with pytest.raises(ValueError, match="repeat must be one of stronger, deny, allow"):
        _sm(repeat="never")
    with pytest.raises(ValueError, match="level must be 1..4"):
        _sm(level=True)  # a bool is no level
    with pytest.raises(ValueError, match="IO_NO_INPUT_OUTPUT"):
        _sm(mitm=True)  # the combination check still applies


def test_set_security_param_changes_only_what_it_is_given():
    sm = _sm(io=1, mitm=True, min_key_size=12)
    sm.set_security_param(level=4)
    assert (sm.io, sm.mitm, sm.sc, sm.min_key_size, sm.level) == (1, True, True, 12, 4)
    with pytest.raises(TypeError, match="window"):
        sm.set_security_param(window=True)  # not one of the seven
    with pytest.raises(ValueError, match="io must be 0..4"):
        sm.set_security_param(io=9)
    assert sm.io == 1


def test_methods_that_no_peer_could_pair_with_are_refused():
    from blesmp import const as C

    JW, PK, NC = C.METHOD_JUST_WORKS, C.METHOD_PASSKEY, C.METHOD_NUMERIC_COMPARISON
    for io, methods, kw in ((C.IO_DISPLAY_ONLY, {NC}, {}),  # a comparison needs yes/no
                            (C.IO_KEYBOARD_ONLY, {NC}, {}),
                            (C.IO_NO_INPUT_OUTPUT, {PK, NC}, {}),  # only Just Works
                            (C.IO_DISPLAY_YESNO, {NC}, {"sc": False}),  # comparison is LE SC only
                            (C.IO_DISPLAY_YESNO, {JW}, {"level": 3})):  # Just Works never reaches 3
        with pytest.raises(ValueError, match="methods= allows no association model"):
            _sm(io=io, methods=methods, **kw)
    for io, methods in ((C.IO_DISPLAY_ONLY, {PK}), (C.IO_DISPLAY_YESNO, {NC}), (C.IO_KEYBOARD_DISPLAY, {NC}),
                        (C.IO_NO_INPUT_OUTPUT, {JW}), (C.IO_DISPLAY_ONLY, {JW, NC})):
        assert _sm(io=io, methods=methods).io == io
    # a later change that would leave none is refused and changes nothing
    sm = _sm(io=C.IO_DISPLAY_YESNO, methods={NC})
    with pytest.raises(ValueError):
        sm.set_security_param(io=C.IO_DISPLAY_ONLY)
    assert sm.io == C.IO_DISPLAY_YESNO and sm.sc
