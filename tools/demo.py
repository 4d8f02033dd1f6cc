"""`make demo`: blesmp on two simulated boards, one process each, with sequence charts.

    python tools/demo.py [--stack sim|sim-mp|nimble|nimble-mynewt] [--svg-dir build/demo] [--width 160]
                          [--no-chart] [--summary-only]

The lock is firmware/main.py, unmodified, on a simulated ESP32 (the firmware model of
tools/blesim: NimBLE under MicroPython, as the reference describes it). Its peers:

 1. Just Works: the key fob, firmware/central.py, on a second simulated ESP32. A stock
    ESP32 central can only pair Just Works (it never gets passkey prompts,
    micropython#17805), so the link reaches level 2 and the lock still refuses its
    level-3 characteristic.
 2. Passkey Entry: the lock shows a passkey on its console; a simulated PHONE (not an
    ESP32: the "phone" profile, a central whose stack hands passkey prompts to its app,
    as Android and iOS do) reads it there and types it (host/demo_phone.py).
 3. Bonding and power cycle: the fob pairs and bonds, the lock's process is killed
    (power cut: RAM gone, flash kept), a new lock process starts from the same flash
    directory, and the fob's next visit is encrypted with the stored LTK: no pairing.
 4. A wrong passkey: the phone's user types a wrong number; the pairing fails, nothing is
    stored, the lock says why in plain words.

Then a summary table. Exit status 0 only if every step gave the expected result.
--stack sim-mp (`make demo STACK=sim-mp`) runs the ESP32 boards (the lock and the fob) on the real
MicroPython interpreter (unix port) instead of CPython; the phone, not an ESP32, stays on CPython.
--stack nimble / nimble-mynewt runs them on the real NimBLE host instead (MicroPython's unix port
with esp-nimble or mynewt-nimble on virtual controllers, tools/realhost; docs/real-host.md), in real
time; the phone is then a Bumble device on the same link. Same steps, checks and table.
--summary-only (what `make test` uses) prints only the summary table and the verdict, and the
whole log if a step failed.
"""

import argparse
import io
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
sys.path.insert(0, ROOT)

from tools.blesim import capture, render  # noqa: E402
from tools.blesim.broker import control, spawn_broker  # noqa: E402
from tools.blesim.run import board_command  # noqa: E402
from tools.blesim.trace import Trace  # noqa: E402

FIRMWARE = os.path.join(ROOT, "firmware")
PHONE = os.path.join(ROOT, "tools", "demo_phone.py")
LOCK_ADDR = "a4cf12000001"
FOB_ADDR = "a4cf12000002"
PHONE_ADDR = "5c0a0b0c0d0e"
STEP_TIMEOUT = 90  # real seconds per wait; the virtual clock makes every step fast
# What the chart shows: the security story (SMP, encryption, the IRQs around it).
CHART_SKIP = ("config", "irq", "active", "gatts_register_services", "gattc_read", "gap_connect", "join", "leave",
              "adv_report", "adv_start", "adv_stop", "scan_start", "scan_stop", "gatts_write", "gatts_read",
              "gap_advertise", "gap_scan", "_IRQ_SCAN_RESULT", "_IRQ_SCAN_DONE", "mtu",
              "_IRQ_GATTC_CHARACTERISTIC_RESULT", "_IRQ_GATTC_CHARACTERISTIC_DONE",
              "gattc_discover_characteristics", "_IRQ_MTU_EXCHANGED", "_IRQ_CONNECTION_UPDATE")


SMP_REASONS = {1: "Passkey Entry Failed", 2: "OOB Not Available", 3: "Authentication Requirements",
               4: "Confirm Value Failed", 5: "Pairing Not Supported", 6: "Encryption Key Size",
               7: "Command Not Supported", 8: "Unspecified Reason", 9: "Repeated Attempts",
               10: "Invalid Parameters", 11: "DHKey Check Failed", 12: "Numeric Comparison Failed"}
_LAUNCH = "import sys; from tools.blesim.run import run_here; sys.exit(run_here(sys.argv[1], sys.argv[2:]))"


# make demo STACK=...: where the boards run
STACKS = ("sim", "sim-mp", "nimble", "nimble-mynewt")
NIMBLE_STACKS = {"nimble": "esp", "nimble-mynewt": "mynewt"}  # the real host's two builds


class StepFailed(Exception):
    pass


class Session:
    """One simulated air (a broker) and the board processes on it."""

    def __init__(self, title, workdir, mp=False, out=sys.stdout):
        self.title = title
        self.workdir = workdir
        self.mp = mp
        self.out = out
        self.trace_file = os.path.join(workdir, "trace-%d.jsonl" % id(self))
        self.log = open(os.path.join(workdir, "broker.log"), "ab")
        self.broker, self.addr = spawn_broker(expect=(), trace=self.trace_file, log=self.log)
        self.procs = {}
        self.lines = {}
        self.q = queue.Queue()
        self.cursor = {}

    def start(self, name, script, fs, interp="cpython", addr=None, profile=None, args=(), stdin=False):
        os.makedirs(fs, exist_ok=True)
        control(self.addr, {"op": "expect", "board": name})  # the clock waits for it
        opts = {"addr": addr, "profile": profile, "args": list(args)}
        argv, env = board_command(script, name, self.addr, interp, opts, extra_path=[FIRMWARE])
        if interp == "cpython":
            # `-m tools.blesim.run --broker` rebuilds BLESIM_OPTS from its own command line (only
            # --addr), which would drop the board's profile and address: call run_here directly.
            argv = [sys.executable, "-u", "-c", _LAUNCH, os.path.abspath(script)] + list(args)
        p = subprocess.Popen(argv, cwd=fs, env=env, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.procs[name] = p
        self.lines.setdefault(name, [])
        threading.Thread(target=self._pump, args=(name, p), daemon=True).start()
        return p

    def _pump(self, name, p):
        for raw in iter(p.stdout.readline, b""):
            self.q.put((name, raw.decode(errors="replace").rstrip("\r\n")))
        self.q.put((name, p))  # this process ended

    def expect(self, name, pattern, timeout=STEP_TIMEOUT):
        """Waits for the next line of board `name` (after the last one matched) that matches
        `pattern`; returns the match. Lines of every board are echoed as they come."""
        rx = re.compile(pattern)
        lines = self.lines.setdefault(name, [])
        while True:
            cur = self.cursor.get(name, 0)
            for i in range(cur, len(lines)):
                m = rx.search(lines[i])
                if m:
                    self.cursor[name] = i + 1
                    return m
            self.cursor[name] = len(lines)
            self._take(name, pattern, timeout)

    def _take(self, name, pattern, timeout):
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise StepFailed("%s never printed /%s/ (waited %ds)" % (name, pattern, timeout))
            try:
                who, line = self.q.get(timeout=left)
            except queue.Empty:
                continue
            if not isinstance(line, str):
                if who == name and self.procs.get(name) is line:
                    raise StepFailed("%s ended before printing /%s/" % (name, pattern))
                continue
            self.lines[who].append(line)
            self.out.write("   %-5s| %s\n" % (who, line))
            self.out.flush()
            if who == name:
                return

    def boards(self):
        return list(self.lines)

    def type(self, name, text):
        """The simulated user types a line into board `name` (its stdin)."""
        self.out.write("   %-5s| <<< the user types %s\n" % (name, text))
        p = self.procs[name]
        p.stdin.write((text + "\n").encode())
        p.stdin.flush()

    def announce(self, name):
        """Holds the clock until board `name` joins: a step's second board starts once the lock
        is READY, and however long the host takes to get there, no air time passes meanwhile."""
        control(self.addr, {"op": "expect", "board": name})

    def power_cut(self, name):
        """Kills the board's process (RAM lost; its flash directory stays)."""
        control(self.addr, {"op": "expect", "board": name})  # freeze the clock until it is back
        p = self.procs.pop(name)
        p.kill()
        p.wait()
        self.out.write("   %-5s| ---- power cut: process killed (RAM lost, flash kept) ----\n" % name)

    def stop_boards(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
            p.wait()

    def drain(self):
        """Keeps what the boards printed last (after stop_boards)."""
        while True:
            try:
                who, line = self.q.get_nowait()
            except queue.Empty:
                break
            if isinstance(line, str):
                self.lines[who].append(line)

    def close(self):
        """Stops every board; returns the session's Trace."""
        self.stop_boards()
        try:
            control(self.addr, {"op": "shutdown"})
        except OSError:
            pass  # already gone: it stops by itself once every board has left
        try:
            self.broker.wait(20)
        except subprocess.TimeoutExpired:
            self.broker.kill()
        self.log.close()
        self.drain()
        if not os.path.exists(self.trace_file):
            raise StepFailed("the broker wrote no trace")
        with open(self.trace_file) as f:
            return Trace.from_jsonl(f.read())


# ---------------------------------------------------------------------------- facts from a trace

def smp_pdus(trace, board=None):
    return [r for r in trace.records if r.kind == "pdu" and (r.args or {}).get("layer") == "smp"
            and (board is None or r.board == board)]


def pairing_method(trace, lock_lines):
    pdus = [r.name for r in smp_pdus(trace)]
    if not pdus:
        return "stored LTK"
    sc = any("PUBLIC_KEY" in n for n in pdus)
    if any(line.startswith("PASSKEY ") for line in lock_lines):
        m = "Passkey Entry"
    elif any(line.startswith("CONFIRM ") for line in lock_lines):
        m = "Numeric Comparison"
    else:
        m = "Just Works"
    return m + (" (LE SC)" if sc else " (legacy)")


def secure_time(trace, board):
    """Virtual seconds from the first SMP PDU (or connection) to encryption / failure on `board`."""
    recs = trace.records
    start = next((r.t for r in recs if r.kind == "pdu" and (r.args or {}).get("layer") == "smp"), None)
    if start is None:
        start = next((r.t for r in recs if r.kind == "link" and r.name == "connect" and r.board == board), None)
    end = None
    for r in recs:
        if r.board == board and r.kind == "irq" and r.name == "_IRQ_ENCRYPTION_UPDATE":
            end = r.t
    if end is None:  # the real host records no IRQs: the controller's Encryption Change
        end = next((r.t for r in reversed(recs) if r.board == board and r.kind == "link"
                    and r.name == "enc_change"), None)
    if start is None or end is None:
        return None
    return end - start


def parse_secured(line):
    m = re.search(r"level=(\d) key_size=(\d+) authenticated=(\d) bonded=(\d)", line)
    return {"level": int(m.group(1)), "key_size": int(m.group(2)), "auth": int(m.group(3)),
            "bonded": int(m.group(4))} if m else None


def chart(trace, width, boards):
    return render.text(trace, width=width, boards=boards, skip=CHART_SKIP, att=False)


# ---------------------------------------------------------------------------- the steps

class Demo:
    def __init__(self, mp=False, width=None, svg_dir=None, show_chart=True, out=sys.stdout, summary_only=False,
                 nimble=None):
        self.mp = mp
        self.nimble = nimble  # None, or the real host: "esp" | "mynewt"
        # summary_only: everything goes to a buffer until the summary
        self.quiet_into = out if summary_only else None
        if summary_only:
            out = io.StringIO()
            show_chart = False
        self.width = width
        self.svg_dir = svg_dir
        self.show_chart = show_chart
        self.out = out
        self.rows = []
        self.failures = []
        self.work = tempfile.mkdtemp(prefix="blesmp-demo-")
        self.lock_interp = "mp" if mp or nimble else "cpython"
        self.pause = "3" if nimble else "30"  # seconds between the fob's visits: real time on the real host

    def say(self, text=""):
        self.out.write(text + "\n")
        self.out.flush()

    def interp_name(self):
        if self.nimble:
            return "the real NimBLE host (%s), MicroPython unix port" % {"esp": "esp-nimble"}.get(
                self.nimble, "mynewt-nimble")
        return "MicroPython, unix port" if self.mp else "CPython"

    def board_kind(self):
        return "virtual" if self.nimble else "simulated"

    def session(self, title):
        if self.nimble:
            from tools.realhost.demo_air import make_session_class

            return make_session_class(Session)(title, self.work, self.nimble, FIRMWARE, self.out)
        return Session(title, self.work, self.mp, self.out)

    def board_fs(self, name, board="esp32"):
        fs = os.path.join(self.work, name)
        os.makedirs(fs, exist_ok=True)
        # what `make deploy` puts next to main.py: the board description (pins, IO capability)
        shutil.copyfile(os.path.join(ROOT, "boards", board, "board.json"), os.path.join(fs, "board.json"))
        return fs

    def start_lock(self, s, fs):
        return s.start("lock", os.path.join(FIRMWARE, "main.py"), fs, self.lock_interp, addr=LOCK_ADDR)

    def check(self, cond, what):
        mark = "ok " if cond else "FAIL"
        self.say("   [%s] %s" % (mark, what))
        if not cond:
            self.failures.append(what)
        return cond

    def finish(self, s, n, title, boards, row):
        trace = s.close()
        if self.show_chart:
            self.say("\n   sequence chart (SMP, link layer, security IRQs; ATT and advertising left out):")
            self.say(chart(trace, self.width, boards))
        if self.svg_dir:
            os.makedirs(self.svg_dir, exist_ok=True)
            path = os.path.join(self.svg_dir, "step%d.svg" % n)
            with open(path, "w") as f:
                f.write(render.svg(trace, boards=boards, skip=CHART_SKIP, att=False))
            self.say("   chart as SVG: %s" % os.path.relpath(path, ROOT))
            # the air as a sniffer would have captured it (open in Wireshark), and the raw trace
            pcap = os.path.join(self.svg_dir, "step%d.pcap" % n)
            count = capture.write(trace, pcap)
            with open(os.path.join(self.svg_dir, "step%d.jsonl" % n), "w") as f:
                f.write(trace.to_jsonl())
            self.say("   capture for Wireshark: %s (%d packets)" % (os.path.relpath(pcap, ROOT), count))
        return trace

    def step_failed(self, s, n, title, row, e):
        # A step whose expected output never came: say why, still show its chart, count it.
        self.check(False, str(e))
        self.finish(s, n, title, s.boards(), row)
        self.rows.append(dict(row, result="FAIL"))

    def header(self, n, title, who):
        import textwrap

        self.say("\n" + "=" * 78)
        self.say("%d. %s" % (n, title))
        for line in textwrap.wrap(who, 75):
            self.say("   " + line)
        self.say("=" * 78)

    # 1 ---------------------------------------------------------------------------------------
    def step_just_works(self):
        n, title = 1, "Just Works pairing and encryption"
        self.header(n, title, "lock = firmware/main.py on a %s ESP32; fob = firmware/central.py on a "
                    "second one (both on %s)" % (self.board_kind(), self.interp_name()))
        s = self.session(title)
        row = {"flow": "1 Just Works (ESP32 fob)"}
        try:
            s.announce("fob")
            self.start_lock(s, self.board_fs("s1-lock"))
            s.expect("lock", r"^READY")
            s.start("fob", os.path.join(FIRMWARE, "central.py"), self.board_fs("s1-fob"), self.lock_interp,
                    addr=FOB_ADDR, args=["1"])
            sec = s.expect("fob", r"^SECURED|^PAIRING FAILED|^NOT SECURED")
            lock_sec = s.expect("lock", r"^SECURED|^PAIRING FAILED")
            refused = s.expect("fob", r"^LOCK STATE")
            s.expect("fob", r"^DONE")
        except StepFailed as e:
            return self.step_failed(s, n, title, row, e)
        trace = self.finish(s, n, title, ["lock", "fob"], row)
        info = parse_secured(lock_sec.string) or {}
        self.check(sec.string.startswith("SECURED"), "the fob's link is encrypted: %s" % sec.string)
        self.check(info.get("level") == 2 and info.get("auth") == 0,
                   "level 2 (encrypted, not authenticated): Just Works, as a stock ESP32 central allows")
        self.check(any(x.startswith("BOND STORED") for x in s.lines["lock"]) and "(stored bond)" not in
                   lock_sec.string and " sc=1" in lock_sec.string, "the lock reports a new bond with sc=1, not a "
                   "re-encryption (no host's bond-count look-up is needed to tell them apart)")
        self.check("refused" in refused.string and "authentication" in refused.string,
                   "the level-3 lock state stays closed to it: %s" % refused.string)
        self.check(any(r.name.startswith("PAIRING_REQ") for r in smp_pdus(trace)), "a pairing ran on the air")
        row.update(method=pairing_method(trace, s.lines["lock"]), level=info.get("level"),
                   key_size=info.get("key_size"), bonded=info.get("bonded"), time=secure_time(trace, "lock"))
        self.rows.append(row)

    # 2 and 4 ----------------------------------------------------------------------------------
    def step_passkey(self, n, wrong):
        title = "A failed pairing: wrong passkey" if wrong else "Passkey Entry"
        self.header(n, title, "lock = firmware/main.py on a %s ESP32 (%s; displays the passkey); phone = "
                    % (self.board_kind(), self.interp_name()) + ("a Bumble device on the same link (Bumble's own "
                    "host, KeyboardOnly), a PHONE, not an ESP32: its stack hands passkey prompts to its user; "
                    "stock ESP32 firmware as a central never does" if self.nimble else
                    "tools/demo_phone.py on a simulated PHONE, not an ESP32 (profile 'phone': its stack hands "
                    "passkey prompts to the app; stock ESP32 firmware as a central never does)"))
        s = self.session(title)
        row = {"flow": "%d %s" % (n, "wrong passkey (phone)" if wrong else "Passkey Entry (phone)")}
        try:
            s.announce("phone")
            self.start_lock(s, self.board_fs("s%d-lock" % n))
            s.expect("lock", r"^READY")
            s.start("phone", PHONE, self.board_fs("s%d-phone" % n), addr=PHONE_ADDR, profile="phone", stdin=True)
            shown = s.expect("lock", r"^PASSKEY (\d{6})")
            asked = s.expect("phone", r"^PROMPT enter passkey")
            pk = int(shown.group(1))
            s.type("phone", "%06d" % ((pk + 111111) % 1000000 if wrong else pk))
            typed = s.expect("phone", r"^TYPED (\d{6})")
            lock_res = s.expect("lock", r"^SECURED|^PAIRING FAILED")
            read = s.expect("phone", r"^LOCK STATE")
            s.expect("phone", r"^DONE")
        except StepFailed as e:
            return self.step_failed(s, n, title, row, e)
        trace = self.finish(s, n, title, ["lock", "phone"], row)
        self.check(bool(asked), "the phone's user was asked for the passkey shown on the lock")
        if not wrong:
            self.check(typed.group(1) == shown.group(1), "the user typed what the lock showed (%s)" % shown.group(1))
            info = parse_secured(lock_res.string) or {}
            self.check(lock_res.string.startswith("SECURED") and info.get("level", 0) >= 3 and info.get("auth") == 1,
                       "authenticated: %s" % lock_res.string)
            self.check(info.get("bonded") == 1 and any(x.startswith("BOND STORED") for x in s.lines["lock"]),
                       "bonded: the keys are in the lock's bonds.db")
            self.check(read.string == "LOCK STATE locked", "the level-3 lock state is readable now: %s" % read.string)
            row.update(method=pairing_method(trace, s.lines["lock"]), level=info.get("level"),
                       key_size=info.get("key_size"), bonded=info.get("bonded"), time=secure_time(trace, "lock"))
        else:
            self.check(typed.group(1) != shown.group(1), "the user typed %s, the lock showed %s"
                       % (typed.group(1), shown.group(1)))
            self.check(lock_res.string.startswith("PAIRING FAILED"), "the lock reports: %s" % lock_res.string)
            self.check(" AUTH_FAILED: " in lock_res.string, "the reason is the wrong passkey (AUTH_FAILED), "
                       "not a lost link or a peer that gave up")
            failed = [r for r in smp_pdus(trace) if r.name == "PAIRING_FAILED"]
            self.check(bool(failed), "a Pairing Failed PDU went over the air (%s)" % ", ".join(
                "%s -> %s" % (r.board, r.peer) for r in failed))
            self.check(not any(x.startswith("BOND STORED") for x in s.lines["lock"]), "no keys were stored")
            self.check("refused" in read.string, "the lock state stays closed: %s" % read.string)
            why = lock_res.string.split(": ", 1)[-1]
            codes = []
            for r in failed:
                h = (r.args or {}).get("hex", "")
                if len(h) >= 4:
                    codes.append("%s sent Pairing Failed 0x%s (%s)" % (r.board, h[2:4], SMP_REASONS.get(
                        int(h[2:4], 16), "reason 0x" + h[2:4])))
            self.say("\n   In plain words: the lock showed %s, the phone's user typed %s. In Passkey Entry each\n"
                     "   side proves, bit by bit, that it knows the passkey (confirm values built from it);\n"
                     "   with different passkeys the first check fails, the pairing stops, no key is made.\n"
                     "   On the air: %s.\n   The lock's verdict: %s."
                     % (shown.group(1), typed.group(1), "; ".join(codes) or "no Pairing Failed seen", why))
            row.update(method=pairing_method(trace, s.lines["lock"]) + " FAILED", level=1, key_size=0, bonded=0,
                       time=secure_time(trace, "lock"))
        self.rows.append(row)

    # 3 ----------------------------------------------------------------------------------------
    def step_bond_power_cycle(self):
        n, title = 3, "Bonding, power cycle of the lock, reconnection with the stored LTK"
        self.header(n, title, "lock = firmware/main.py, fob = firmware/central.py, on %s ESP32s (%s); two "
                    "visits %s s apart, the lock's power is cut between them"
                    % (self.board_kind(), self.interp_name(), self.pause))
        s = self.session(title)
        lock_fs = self.board_fs("s3-lock")
        row = {"flow": "3 reconnect after power cycle"}
        try:
            s.announce("fob")
            self.start_lock(s, lock_fs)
            s.expect("lock", r"^READY")
            s.start("fob", os.path.join(FIRMWARE, "central.py"), self.board_fs("s3-fob"), self.lock_interp,
                    addr=FOB_ADDR, args=["2", self.pause])
            first = s.expect("lock", r"^SECURED|^PAIRING FAILED")
            s.expect("fob", r"^DISCONNECTED")
            self.check(any(x.startswith("BOND STORED") for x in s.lines["lock"]), "the lock stored the bond")
            bonds_file = os.path.join(lock_fs, "bonds.db")
            self.check(os.path.exists(bonds_file), "bonds.db is in the lock's flash (%d bytes)"
                       % (os.path.getsize(bonds_file) if os.path.exists(bonds_file) else 0))
            s.power_cut("lock")
            self.start_lock(s, lock_fs)
            ready = s.expect("lock", r"^READY")
            second = s.expect("lock", r"^SECURED|^PAIRING FAILED")
            fob2 = s.expect("fob", r"^SECURED|^PAIRING FAILED|^NOT SECURED")
            s.expect("fob", r"^DONE")
        except StepFailed as e:
            return self.step_failed(s, n, title, row, e)
        trace = self.finish(s, n, title, ["lock", "fob"], row)
        self.check(first.string.startswith("SECURED") and "bonded=1" in first.string, "first visit: paired and "
                   "bonded: %s" % first.string)
        self.check("bonds=1" in ready.string, "after the power cut the lock starts with its bond: %s" % ready.string)
        self.check(second.string.startswith("SECURED") and "(stored bond)" in second.string,
                   "second visit encrypted with the stored LTK: %s" % second.string)
        self.check(fob2.string.startswith("SECURED"), "the fob agrees: %s" % fob2.string)
        # no pairing on the air after the restart: only the first visit's
        joins = [r.t for r in trace.records if r.kind == "note" and r.board == "lock" and r.name == "join"]
        after = [r for r in smp_pdus(trace) if joins and r.t >= joins[-1]]
        self.check(len(joins) >= 2 and not after, "no SMP pairing PDU after the restart (%d)" % len(after))
        info = parse_secured(second.string) or {}
        row.update(method="stored LTK (no pairing)", level=info.get("level"), key_size=info.get("key_size"),
                   bonded=info.get("bonded"), time=None)
        # time: from the second connection to its encryption
        conns = [r.t for r in trace.records if r.kind == "link" and r.name == "connect" and r.board == "lock"]
        encs = [r.t for r in trace.records
                if r.kind == "irq" and r.board == "lock" and r.name == "_IRQ_ENCRYPTION_UPDATE"]
        if not encs:  # the real host records no IRQs: the controller's Encryption Change
            encs = [r.t for r in trace.records if r.kind == "link" and r.board == "lock" and r.name == "enc_change"]
        if conns and encs:
            row["time"] = encs[-1] - conns[-1]
        self.rows.append(row)

    # ------------------------------------------------------------------------------------------
    def summary(self):
        self.say("\n" + "=" * 78)
        self.say("Summary")
        self.say("=" * 78)
        hdr = ("flow", "method", "level", "key size", "bonded", "time")
        rows = []
        for r in self.rows:
            t = r.get("time")
            rows.append((r["flow"], r.get("method", r.get("result", "?")), str(r.get("level", "-")),
                         str(r.get("key_size", "-")), {1: "yes", 0: "no"}.get(r.get("bonded"), "-"),
                         "%.0f ms" % (t * 1000) if isinstance(t, (int, float)) else "-"))
        w = [max(len(x[i]) for x in rows + [hdr]) for i in range(len(hdr))]
        fmt = "  ".join("%%-%ds" % x for x in w)
        self.say(fmt % hdr)
        self.say(fmt % tuple("-" * x for x in w))
        for r in rows:
            self.say(fmt % r)
        self.say("(time: %s from the first SMP PDU, or the connection, to the encryption update;"
                 " the lock and the fob ran on %s)" % ("real time" if self.nimble else "simulated air time",
                                                       self.interp_name()))
        if self.failures:
            self.say("\nDEMO FAILED: %d check(s) did not hold:" % len(self.failures))
            for f in self.failures:
                self.say("  - " + f)
        else:
            self.say("\nAll steps gave the expected result.")

    def run(self, steps=(1, 2, 3, 4)):
        try:
            for n in steps:
                if n == 1:
                    self.step_just_works()
                elif n == 2:
                    self.step_passkey(2, wrong=False)
                elif n == 3:
                    self.step_bond_power_cycle()
                elif n == 4:
                    self.step_passkey(4, wrong=True)
        finally:
            shutil.rmtree(self.work, ignore_errors=True)
        if self.quiet_into is not None:
            log, self.out = self.out, self.quiet_into
            if self.failures:  # the log says why: show it
                self.out.write(log.getvalue())
        self.summary()
        return 1 if self.failures else 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stack", default="sim", help="sim (default: simulated boards on CPython), sim-mp"
                    " (the ESP32 boards on the real MicroPython interpreter), nimble (the real NimBLE host,"
                    " esp-nimble) or nimble-mynewt")
    ap.add_argument("--mp", action="store_true", help=argparse.SUPPRESS)  # old spelling of --stack sim-mp
    ap.add_argument("--summary-only", action="store_true", help="print only the summary (and the log if a step failed)")
    ap.add_argument("--svg-dir", default=os.path.join(ROOT, "build", "demo"),
                    help="where the SVG charts, the captures (stepN.pcap) and the traces (stepN.jsonl) go")
    ap.add_argument("--width", type=int, default=None, help="chart width (default: the terminal's)")
    ap.add_argument("--no-chart", action="store_true", help="no sequence charts on the terminal")
    ap.add_argument("--steps", default="1,2,3,4", help="which steps to run (e.g. 1,3)")
    ap.add_argument("--nimble", nargs="?", const="esp", choices=["esp", "mynewt"], help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.stack not in STACKS:
        ap.error("unknown stack %r; known stacks: %s" % (a.stack, ", ".join(STACKS)))
    nimble = a.nimble or NIMBLE_STACKS.get(a.stack)
    if nimble:
        from tools.realhost import boards

        try:
            boards.interpreter(nimble)
        except boards.Unavailable as e:
            print("demo: %s" % e)
            return 2
    demo = Demo(mp=a.mp or a.stack == "sim-mp", width=a.width, svg_dir=a.svg_dir, show_chart=not a.no_chart,
                summary_only=a.summary_only, nimble=nimble)
    return demo.run([int(x) for x in a.steps.split(",") if x])


if __name__ == "__main__":
    sys.exit(main())
