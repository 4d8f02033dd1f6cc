"""Run MicroPython multitests (tests/multi_bluetooth format) on simulated ESP32 boards.

    python tools/multitest.py [-i cpython|mp]... [--mp] [-s] [--trace DIR] [--pcap DIR] test.py [...]

A test defines `instance0()`, `instance1()`, ...; each instance runs in its own process (one
simulated board, joined to one air broker per test) on CPython (`python -m tools.blesim.run`)
or on the real MicroPython interpreter with the board modules of `tools/blesim/mp/`.
`-i` picks the interpreter per instance in order (`-i cpython -i mp`: instance0 on CPython,
instance1 on MicroPython; the last one repeats); `--mp` puts them all on MicroPython.

Semantics follow upstream `tests/run-multitests.py`:
- the test's module-level code runs first in every instance, then the appended `multitest`
  helpers, the globals collected so far, and `instanceN()`;
- instances start in order: instance i runs until it prints `NEXT` (or `SKIP`, or exits);
  `SET name = value` lines printed before that become globals of the later instances;
- `multitest.next()`, `globals(**kw)`, `broadcast(msg)` (sent to the other instances' stdin),
  `wait(msg)` (reads stdin until `BROADCAST msg`), `skip()`;
- `output_metric(data)`: an `OUTPUT_METRIC data` line, left out of the compared output,
  printed after the result as `<test>: data` (TestResult.metrics);
- `expect_reboot(resume, delay_ms)`: `WAIT_FOR_REBOOT resume delay_ms` stays in the output;
  what the instance prints until it reboots is dropped; then the test file runs again with
  `resume()` (it must start with the instance's name) instead of `instanceN()`. A simulated
  board reboots when its process ends with status 99 (`machine.reset()`, `deepsleep()`);
- an instance that prints nothing for 10 s (real time) gets `TIMEOUT` and fails the test;
- the output `--- instance0 ---\\n<lines>\\n--- instance1 ---\\n...` is compared exactly with
  `test.py.exp`; without one, with the output of the same test run with every instance on
  CPython (upstream's "truth" run) when some instance is on MicroPython, else it fails.

Simulation specifics: the instance's working directory is its board's own (empty) filesystem
directory, and the test's directory is on its module path. `multitest.next()` waits for the
runner's go-ahead, which comes once the runner has announced the next instance to the broker,
so the virtual clock cannot run ahead (and time out a peer) while the next interpreter starts.
`multitest.wait()` lets the virtual clock move (the board waits, as a board blocked on its
serial input would). Instance i's board has address a4cf120000(i+1). When every instance waits
and nothing can end a wait (a broadcast from an instance that has ended), the test ends at once
with TIMEOUT and a note instead of after the real-time timeout. Exit status: 0 when every test
passed or was skipped.

Python API: `run_test(path, interps=("cpython",), trace=None) -> TestResult` with .status
("pass" | "fail" | "skip"), .output, .expected, .metrics, .notes.
"""

import argparse
import difflib
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tools import mtshim  # noqa: E402
from tools.blesim.broker import control as _control  # noqa: E402
from tools.blesim.broker import spawn_broker  # noqa: E402
from tools.blesim.run import board_command  # noqa: E402
from tools.blesim.world import auto_addr  # noqa: E402

INSTANCE_READ_TIMEOUT_S = 10

# The `multitest` helper appended to each instance (tools/mtshim.py); the simulator's IO:
# NEXT waits for the runner's go-ahead and a BROADCAST holds the virtual clock (module docstring).
APPEND = mtshim.script(
    prelude="import _blesim\n_blesim.connect_if_configured()\n",
    go="_blesim.readline_stdin(False)",
    hold="_blesim.hold_for_broadcast()",
    readline="return _blesim.readline_stdin()",
)


def control(addr, msg):
    """A control message to the broker; ignored once it has stopped (all boards gone)."""
    try:
        return _control(addr, msg)
    except OSError:
        return None


def _is_mp(interp):
    return interp in ("mp", "micropython")


class _SimAir:
    """The simulator's backend: one air broker per test, boards joined to it. tools/realhost/mtair.py
    has the same interface for the real host (`--nimble`)."""

    append = APPEND

    def __init__(self, n, tmp, path):
        self.trace_file = os.path.join(tmp, "trace.jsonl")
        self.log = open(os.path.join(tmp, "broker.log"), "wb")
        self.broker, self.addr = spawn_broker(trace=self.trace_file, log=self.log)

    def expect(self, name):
        control(self.addr, {"op": "expect", "board": name})

    def unexpect(self, name):
        control(self.addr, {"op": "unexpect", "board": name})

    def command(self, script, name, interp, idx, path):
        # restart: after machine.reset()/deepsleep() (exit 99) the clock waits for the next process;
        # address and place by instance number, whichever process joins first
        opts = {"restart": 1, "addr": auto_addr(idx + 1).hex(), "pos": [float(idx), 0.0]}
        return board_command(script, name, self.addr, interp, opts, extra_path=path)

    def after_next(self, inst):
        inst.write("NEXT_OK\n")

    def stuck(self, running):
        """The broker says every board waits with nothing able to end a wait, and each running
        instance is one of those boards (none still starting or ending)."""
        st = control(self.addr, {"op": "status"})
        return bool(st and st.get("stuck") and {i.name for i in running} <= set(st.get("boards", ())))

    def label(self, interp):
        return interp

    def close(self):
        control(self.addr, {"op": "shutdown"})
        try:
            self.broker.wait(5)
        except subprocess.TimeoutExpired:
            self.broker.terminate()
            try:
                self.broker.wait(5)
            except subprocess.TimeoutExpired:
                self.broker.kill()
        self.log.close()


class TestResult:
    truth_from = None  # "cpython" when there was no .exp and an all-CPython run gave the truth

    def __init__(self, path, status, output, expected, trace=None, metrics=(), notes=()):
        self.path = path
        self.status = status
        self.output = output
        self.expected = expected
        self.trace = trace
        self.metrics = list(metrics)  # OUTPUT_METRIC lines (without the word), not part of the output
        self.notes = list(notes)  # the runner's own messages (a missed reboot)

    def __repr__(self):
        return "<TestResult %s %s>" % (os.path.basename(self.path), self.status)


def count_instances(path):
    n = 0
    with open(path) as f:
        for line in f:
            m = re.match(r"def instance([0-9]+)\(\):", line)
            if m:
                n = max(n, int(m.group(1)) + 1)
    return n


class _Instance:
    def __init__(self, idx, interp):
        self.idx = idx
        self.name = "instance%d" % idx
        self.interp = interp
        self.proc = None
        self.q = queue.Queue()
        self.finished = False
        self.last = time.monotonic()

    def start(self, script, air, fs, path):
        argv, env = air.command(script, self.name, self.interp, self.idx, path)
        self.proc = subprocess.Popen(argv, cwd=fs, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.last = time.monotonic()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for raw in iter(self.proc.stdout.readline, b""):
            self.q.put(raw.decode(errors="replace").rstrip())
        self.q.put(None)

    def readline(self, timeout):
        """A line, "" when nothing came within `timeout`, None at the end of output."""
        if self.finished:
            return None
        try:
            line = self.q.get(timeout=timeout)
        except queue.Empty:
            return ""
        if line is None:
            self.finished = True
            self.proc.wait()
            return None
        self.last = time.monotonic()
        return line

    def write(self, text):
        try:
            self.proc.stdin.write(text.encode())
            self.proc.stdin.flush()
        except (OSError, ValueError):
            pass

    def wait_reboot(self, timeout):
        """After WAIT_FOR_REBOOT: reads (and drops, as upstream's wait_for_reboot does) what the
        instance prints until its process ends; its exit status, or None if it did not end
        within `timeout` s of silence."""
        while True:
            line = self.readline(0.05)
            if line is None:
                return self.proc.returncode
            if line == "" and time.monotonic() - self.last > timeout:
                return None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def run_test(path, interps=("cpython",), trace=None, verbose=False, timeout=INSTANCE_READ_TIMEOUT_S, air=None,
             module_path=()):
    """Runs one multitest; `interps[i]` ("cpython" or "mp") for instance i (the last repeats).
    `trace`: path of an SVG sequence chart to write; `module_path`: more folders on every
    instance's module path (a library the test imports, e.g. aioble). `air(n, workdir, path)`
    makes the backend (default: the simulator's broker; tools.realhost.mtair.make(host) runs on
    the real host)."""
    path = os.path.abspath(path)
    n = count_instances(path)
    with open(path) as f:
        source = f.read()
    tmp = tempfile.mkdtemp(prefix="multitest-")
    trace_file = os.path.join(tmp, "trace.jsonl")
    try:
        air = (air or _SimAir)(n, tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    instances = [_Instance(i, interps[min(i, len(interps) - 1)]) for i in range(n)]
    output = [[] for _ in range(n)]
    metrics, notes = [], []
    injected = ""
    error = skip = False

    def show(inst, line):
        if verbose:
            print("  i%d: %s" % (inst.idx, line), flush=True)

    def start(inst, entry=None):
        # entry: the function to run, as a suffix of "instance" ("0", or "0_resume" after a reboot)
        entry = str(inst.idx) if entry is None else entry
        script = os.path.join(tmp, "instance%s_%s" % (entry, os.path.basename(path)))
        with open(script, "w") as f:
            f.write(source + "\n" + air.append.format(globals=injected, idx=entry))
        fs = os.path.join(tmp, "fs-" + inst.name)  # kept across a reboot, as a board's flash
        os.makedirs(fs, exist_ok=True)
        air.expect(inst.name)
        inst.finished = False
        inst.q = queue.Queue()
        inst.start(script, air, fs, [os.path.dirname(path)] + list(module_path))

    def reboot(inst, line):
        # upstream run-multitests.py: the line stays in the output; the board must reboot
        # (here: its process ends with machine.reset()/deepsleep()'s status 99), then the
        # test file runs again with the resume function instead of instanceN()
        _, resume, _delay_ms = line.split(" ")
        if not resume.startswith(inst.name):
            raise SystemExit('ERROR: resume function must start with "%s"' % inst.name)
        rc = inst.wait_reboot(timeout)
        if rc == 99:
            start(inst, resume[len("instance"):])
            return
        notes.append("Reboot: %s did not reboot (%s)" % (inst.name, "exit status %s" % rc if rc is not None
                                                         else "still running after %s s" % timeout))
        air.unexpect(inst.name)

    try:
        # Start-up: one after the other, each until NEXT / SKIP / exit.
        for inst in instances:
            start(inst)
            while True:
                line = inst.readline(0.05)
                if line is None:
                    break
                if line == "":
                    if time.monotonic() - inst.last > timeout:
                        output[inst.idx].append("TIMEOUT")
                        error = True
                        break
                    continue
                show(inst, line)
                if line.startswith("SET "):
                    injected += line[4:] + "\n"
                elif line == "SKIP":
                    skip = True
                    break
                elif line == "NEXT":
                    if inst.idx + 1 < n:
                        air.expect(instances[inst.idx + 1].name)
                    air.after_next(inst)
                    break
                else:
                    output[inst.idx].append(line)
            if inst.finished:
                air.unexpect(inst.name)
            if error or skip:
                break
        # Run: collect output, forward broadcasts, until every instance has ended.
        if not error and not skip:
            quiet_since = checked = time.monotonic()
            while True:
                running = [i for i in instances if not i.finished]
                if not running:
                    break
                now = time.monotonic()
                if now - quiet_since > 0.3 and now - checked > 0.3:
                    checked = now
                    if getattr(air, "stuck", None) is not None and air.stuck(running):  # not on a real host
                        gone = [i.name for i in instances if i.finished]
                        notes.append("blesim: every instance is waiting and nothing can wake it%s: stopped at "
                                     "once (upstream would print TIMEOUT after %s s)"
                                     % (" (%s ended)" % ", ".join(gone) if gone else "", timeout))
                        output[running[0].idx].append("TIMEOUT")
                        error = True
                        break
                got = False
                for inst in running:
                    line = inst.readline(0.01)
                    if line is None:
                        air.unexpect(inst.name)
                        continue
                    if line == "":
                        if time.monotonic() - inst.last > timeout:
                            output[inst.idx].append("TIMEOUT")
                            error = True
                        continue
                    got = True
                    show(inst, line)
                    if line.startswith("WAIT_FOR_REBOOT"):
                        output[inst.idx].append(line)
                        reboot(inst, line)
                    elif line.startswith("BROADCAST "):
                        for other in instances:
                            if other is not inst:
                                other.write(line + "\r\n")
                    elif line.startswith("OUTPUT_METRIC "):
                        metrics.append(line.split(" ", 1)[1])
                    else:
                        output[inst.idx].append(line)
                if error:
                    break
                if got:
                    quiet_since = time.monotonic()
                else:
                    time.sleep(0.005)
    finally:
        for inst in instances:
            inst.stop()
        air.close()
    out = ""
    for i, lines in enumerate(output):
        out += "--- instance%d ---\n" % i
        out += "\n".join(lines) + "\n"
    expected = None
    if os.path.exists(path + ".exp"):
        with open(path + ".exp") as f:
            expected = f.read()
    tr = None
    if os.path.exists(trace_file):
        from tools.blesim.trace import Trace

        with open(trace_file) as f:
            tr = Trace.from_jsonl(f.read())
        if trace:
            from tools.blesim import render

            with open(trace, "w") as f:
                f.write(render.svg(tr))
            with open(os.path.splitext(trace)[0] + ".jsonl", "w") as f:
                f.write(tr.to_jsonl())
    if verbose or os.environ.get("MULTITEST_KEEP"):
        sys.stderr.write("multitest: work dir %s\n" % tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    truth_from = None
    if expected is None and not skip and any(_is_mp(i) for i in interps[:n]):
        # as upstream without a .exp: the truth is the same test with every instance on
        # CPython (here: on the simulator's boards), so MicroPython is checked against it
        truth = run_test(path, ("cpython",), timeout=timeout, module_path=module_path)
        if truth.status != "skip" and "TIMEOUT" not in truth.output:
            expected = truth.output
            truth_from = "cpython"
    if skip:
        status = "skip"
    elif not error and expected is not None and out == expected:
        status = "pass"
    else:
        status = "fail"
    r = TestResult(path, status, out, expected, tr, metrics, notes)
    r.truth_from = truth_from
    return r


def main(argv=None):
    ap = argparse.ArgumentParser(prog="tools/multitest.py", description=__doc__.split("\n")[0])
    ap.add_argument("-i", "--instance", action="append", default=[], choices=["cpython", "mp", "micropython"],
                    help="interpreter of the next instance (repeat; the last one repeats)")
    ap.add_argument("--mp", action="store_true", help="every instance on MicroPython")
    ap.add_argument("-s", "--show-output", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true", help="echo instance output as it comes")
    ap.add_argument("--trace", metavar="DIR", help="write each test's sequence chart as DIR/<test>.svg (and the "
                    "raw trace as .jsonl; `python -m tools.blesim.render DIR/<test>.jsonl` prints it)")
    ap.add_argument("--pcap", metavar="DIR", help="write each test's air as DIR/<test>.pcap (open it in Wireshark)")
    ap.add_argument("--nimble", nargs="?", const="esp", choices=["esp", "mynewt"], metavar="HOST",
                    help="run every instance on the real NimBLE host (MicroPython unix + NimBLE on virtual "
                    "controllers; docs/real-host.md): esp (default: esp-nimble, ESP32's config) or mynewt")
    ap.add_argument("--host", choices=["esp", "mynewt"], help="same as --nimble=HOST")
    ap.add_argument("--btsnoop", metavar="DIR", help="with --nimble: each board's HCI traffic as "
                    "DIR/<test>/instanceN.btsnoop")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args(argv)
    interps = a.instance or (["mp"] if a.mp else ["cpython"])
    air = None
    if a.nimble or a.host:
        from tools.realhost import boards, mtair

        try:
            boards.interpreter(a.host or a.nimble)
        except boards.Unavailable as e:
            print("multitest: %s" % e)
            return 2
        air = mtair.make(a.host or a.nimble, a.btsnoop)
        interps = ["nimble-" + (a.host or a.nimble)]
    failed, passed, skipped = [], [], []
    for path in a.files:
        n = count_instances(path)
        names = "|".join(interps[min(i, len(interps) - 1)] for i in range(n))
        print("%s on %s: " % (path, names), end="", flush=True)
        svg = None
        if a.trace:
            os.makedirs(a.trace, exist_ok=True)
            svg = os.path.join(a.trace, os.path.splitext(os.path.basename(path))[0] + ".svg")
        r = run_test(path, interps, trace=svg, verbose=a.verbose, air=air)
        print(r.status)
        if a.pcap and r.trace is not None:
            from tools.blesim import capture

            os.makedirs(a.pcap, exist_ok=True)
            capture.write(r.trace, os.path.join(a.pcap, os.path.splitext(os.path.basename(path))[0] + ".pcap"))
        if a.show_output or r.status == "fail":
            print("### TEST ###")
            print(r.output, end="")
            print("### TRUTH ###")
            if r.truth_from:
                print("(no .exp file: the same test with every instance on CPython)")
            print(r.expected if r.expected is not None else "(no .exp file)\n", end="")
            if r.status == "fail" and r.expected is not None:
                print("### DIFF ###")
                sys.stdout.writelines(difflib.unified_diff(r.expected.splitlines(True), r.output.splitlines(True),
                                                           "expected", "output"))
        for note in r.notes:
            print(note)
        for metric in r.metrics:  # as upstream prints them: after the result, one a line
            print("%s: %s" % (path, metric))
        {"pass": passed, "fail": failed, "skip": skipped}[r.status].append(path)
    print("%d tests performed" % len(a.files))
    print("%d tests passed" % len(passed))
    if skipped:
        print("%d tests skipped: %s" % (len(skipped), " ".join(skipped)))
    if failed:
        print("%d tests failed: %s" % (len(failed), " ".join(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
