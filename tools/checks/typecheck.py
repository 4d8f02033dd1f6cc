"""Type-checks lib/ against micropython-esp32-stubs (the ESP32 firmware's API).

mypy refuses site-packages as a search path, so the stubs' top-level .pyi files
are copied to build/stubs and the stdlib stubs are used as the typeshed.
"""

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main():
    site = Path(sysconfig.get_paths()["purelib"])
    if not (site / "bluetooth.pyi").exists():
        sys.exit("micropython-esp32-stubs is not installed in " + str(site))
    stubs = ROOT / "build" / "stubs"
    shutil.rmtree(stubs, ignore_errors=True)
    stubs.mkdir(parents=True)
    for f in site.glob("*.pyi"):
        shutil.copy(f, stubs / f.name)
    shutil.copytree(site / "_mpy_shed", stubs / "_mpy_shed")
    cmd = [
        sys.executable, "-m", "mypy", "--config-file", str(ROOT / "mypy.ini"),
        "--custom-typeshed-dir", str(site), str(ROOT / "lib" / "blesmp"),
    ]
    env = {"MYPYPATH": str(stubs), "PATH": "/usr/bin:/bin"}
    return subprocess.call(cmd, cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
