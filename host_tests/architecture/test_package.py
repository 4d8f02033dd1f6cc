# Runs on MicroPython too (make test-mp).
"""blesmp/__init__.py: _drop gives code loaded from a file system back, and keeps code that runs in
place from flash (frozen into the firmware, or on a ROMFS image)."""

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


def test_code_from_a_file_system_is_dropped_on_micropython():
    assert _try_drop(blesmp.__file__) == (sys.implementation.name == "micropython")


def test_frozen_or_romfs_code_is_kept():
    # a frozen module's __file__ names no file; a ROMFS image is mounted at /rom
    assert not _try_drop("blesmp/__init__.py.frozen-name-that-is-no-file")
    assert not _try_drop("/rom/lib/blesmp/__init__.mpy")
