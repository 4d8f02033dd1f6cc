"""Starts host_tests/tools/fakeboard.py (the real MicroPython interpreter) on a
pseudo-terminal, so `mpremote connect <port>` drives it like a board on USB.

    with FakeBoard(tmp_path) as b:
        subprocess.run([mpremote, "connect", b.port, "ls"])
        b.flash   # the board's filesystem, a host directory
        b.resets()  # ["hard", "soft", ...] as the board logged them
"""

import os
import subprocess
import tty
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MICROPYTHON = ROOT / ".venv" / "bin" / "micropython"
MPREMOTE = ROOT / ".venv" / "bin" / "mpremote"
SCRIPT = Path(__file__).with_name("fakeboard.py")


class FakeBoard:
    def __init__(self, workdir):
        self.flash = Path(workdir) / "flash"
        self.flash.mkdir(parents=True, exist_ok=True)
        self.logfile = Path(workdir) / "board.log"
        self.errfile = Path(workdir) / "board.err"
        self.proc = None

    def __enter__(self):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        with open(self.errfile, "wb") as err:
            self.proc = subprocess.Popen(
                [str(MICROPYTHON), str(SCRIPT), str(self.flash), str(self.logfile)],
                stdin=self.master, stdout=self.master, stderr=err,
                env={"MICROPYPATH": ".frozen", "PATH": os.environ.get("PATH", "")},
            )
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()
        os.close(self.master)
        os.close(self.slave)

    def resets(self):
        if not self.logfile.exists():
            return []
        return [line.split()[0] for line in self.logfile.read_text().splitlines() if line.endswith(" reset")]

    def mpremote(self, *args, timeout=60):
        return subprocess.run(
            [str(MPREMOTE), "connect", self.port, *args],
            capture_output=True, text=True, timeout=timeout,
        )
