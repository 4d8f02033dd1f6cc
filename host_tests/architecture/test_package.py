# Runs on MicroPython too (make test-mp).
"""blesmp/__init__.py: _drop gives code the package imported for a while back on MicroPython
(wherever it was loaded from: a file system, a ROMFS image or frozen into the firmware, its
module objects are RAM), and keeps it on CPython."""

import sys

import blesmp
from blesmp import const as _const  # any submodule: const is always there


def _try_drop(file):
    saved = blesmp.__dict__.get("__file__")
    blesmp.__file__ = file
    try:
        blesmp._drop("const")
        return "blesmp.const" not in sys.modules
    finally:
        blesmp.__file__ = saved
        sys.modules["blesmp.const"] = blesmp.const = _const  # put it back for the other tests


def test_code_is_dropped_on_micropython_wherever_it_was_loaded_from():
    mp = sys.implementation.name == "micropython"
    for f in (blesmp.__file__, "/rom/lib/blesmp/__init__.mpy", "blesmp/__init__.py"):  # file, ROMFS, frozen
        assert _try_drop(f) == mp, f
