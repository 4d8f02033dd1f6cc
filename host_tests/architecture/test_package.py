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


def _names(mod):
    names = [k for k in mod.__dict__ if not k.startswith("__")]  # MicroPython adds __name__, __file__
    if sys.implementation.name != "micropython":  # CPython keeps `_X = const(v)`: MicroPython folds them
        with open(mod.__file__) as f:
            folded = [ln.split(" =")[0] for ln in f if ln.startswith("_") and " = const(" in ln]
        names = [k for k in names if k not in folded]
    return names


def test_modules_an_app_keeps_at_rest_hold_at_most_17_globals():
    # MicroPython's module dict grows from 17 to 37 slots at the 18th global: 0.6 KB more on the
    # unix port (about 0.3 KB on the board) for every such module an app keeps (make bench).
    from blesmp import agents, bond, manager, resolver, secinfo, store

    for mod in (manager, store, bond, secinfo, agents, resolver):
        assert len(_names(mod)) <= 15, (mod.__name__, _names(mod))
