"""Run a user's own board scripts on the real host: `python -m tools.blesim.run --nimble a.py b.py`.

Each script runs in its own real-host MicroPython process (tools/realhost/boards.py) on its own
radio, its working directory the board's flash folder (default: a fresh temporary one per
board). Output lines come as `name| line`. A board that exits frees its radio; a script that
calls machine.deepsleep() ends its process. Everything started here is stopped here.
"""

import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading

from tools.blesim.results import Results, echo
from tools.blesim.results import pump as _pump
from tools.realhost import boards
from tools.realhost.airtrace import AirTrace
from tools.realhost.radios import Radios


def run_boards(entries, host=boards.DEFAULT_HOST, prefix=True, out=None, timeout=None, quiet=False,
               btsnoop=None, trace=None, width=None):
    """entries: (script, opts) with opts keys name, fs, addr (hex), args, heapsize, path (more
    folders on the board's module path). Returns Results
    (BoardResult per board; .trace: the air's Trace). `timeout`: real seconds without output before
    the boards are killed. `trace`: an SVG path for the sequence chart (also printed)."""
    out = out or sys.stdout
    exe = boards.interpreter(host)
    tmp = tempfile.mkdtemp(prefix="realhost-run-")
    air = AirTrace()
    radios = Radios(btsnoop=btsnoop, tap=air.link_tap, hci_tap=air.hci_tap,
                    on_event=lambda n, t: None).start()
    air.radios = radios
    procs, lines = {}, {}
    q = queue.Queue()
    try:
        for i, (script, opts) in enumerate(entries):
            opts = dict(opts or {})
            name = opts.get("name") or os.path.splitext(os.path.basename(script))[0]
            if name in procs:
                name = "%s%d" % (name, i)
            fs = opts.get("fs") or os.path.join(tmp, "fs-" + name)
            os.makedirs(fs, exist_ok=True)
            pty = radios.add(name, opts.get("addr"))
            env = boards.board_env(pty, [os.path.dirname(os.path.abspath(script))] + list(opts.get("path") or ()))
            argv = boards.board_command(exe, script, opts.get("args") or (), opts.get("heapsize"))
            p = subprocess.Popen(argv, cwd=fs, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT)
            procs[name] = p
            lines[name] = []
            threading.Thread(target=_pump, args=(name, p.stdout, q), daemon=True).start()
        width_name = max(len(n) for n in procs)
        open_streams = len(procs)
        while open_streams:
            try:
                name, line = q.get(timeout=timeout)
            except queue.Empty:
                out.write("realhost: no output for %ss, boards killed\n" % timeout)
                break
            if line is None:
                open_streams -= 1
                continue
            lines[name].append(line)
            if not quiet:
                echo(out, name, line, width_name, prefix)
        results = Results.collect(procs, lines)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        radios.close()
        shutil.rmtree(tmp, ignore_errors=True)
    results.trace = air.trace
    if trace:
        results.save_trace(trace, list(procs), out, quiet, width)
    return results
