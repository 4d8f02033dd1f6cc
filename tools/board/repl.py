"""An mpremote REPL on the board with the app's helpers imported.

    python tools/board/repl.py --port /dev/ttyUSB0 [--app main|central] [--soft-reset] [--dry-run]

The app keeps running: mpremote's `resume` skips the soft reset, and entering the
raw REPL only interrupts the app's main loop (Ctrl-C); BLE events keep arriving
through the IRQ handler. Then `from lockapp import *` (or `centralapp` for the
central) puts `status()`, `bonds()`, `forget(...)` and friends at the prompt; the
module is the one main.py already imported, so they act on the running app.
--soft-reset restarts MicroPython first (the app then is not running: call `run()`).
Leave the REPL with Ctrl-].
"""

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tools.board import ports  # noqa: E402

MPREMOTE = str(Path(sys.executable).with_name("mpremote"))
HELPERS = {"main": "lockapp", "central": "centralapp"}


def helper_code(app):
    mod = HELPERS.get(app, app)
    return ("from %s import *\n"
            "print('blesmp helpers from %s: status(), bonds(), forget(addr), help_app()')" % (mod, mod))


def mpremote_command(port, app="main", soft_reset=False):
    argv = [MPREMOTE, "connect", port]
    if not soft_reset:
        argv.append("resume")
    argv += ["exec", helper_code(app), "repl"]
    return argv


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", default="auto", help="serial port (default: the first USB serial device)")
    ap.add_argument("--app", default="main", help="main (the lock peripheral) or central")
    ap.add_argument("--soft-reset", action="store_true", help="soft-reset before importing the helpers")
    ap.add_argument("--dry-run", action="store_true", help="print the mpremote command only")
    args = ap.parse_args(argv)
    bad = ports.problem(args.port, "repl")
    if bad and not args.dry_run:
        print("repl: " + bad, file=sys.stderr)
        return 2
    cmd = mpremote_command(args.port, args.app, args.soft_reset)
    if args.dry_run:
        print(" ".join(a if " " not in a and "\n" not in a else repr(a) for a in cmd))
        return 0
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
