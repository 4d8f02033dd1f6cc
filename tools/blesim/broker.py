"""The air broker: one process hosting the World (virtual clock, air) and every board's
firmware model, serving board processes over loopback.

    python -m tools.blesim.broker [--port 0] [--expect a,b] [--trace FILE.jsonl]
                                  [--profile esp32] [--seed 1] [--exit-when-idle]

prints `BLESIM BROKER 127.0.0.1:PORT` as its first line on stdout, then serves until killed
(or, with --exit-when-idle, until every board that joined has left). It listens on
127.0.0.1 only. Each board process (`tools/blesim/run.py`, which runs a script with the
proxy `bluetooth` of `tools/blesim/mp/`) connects, says hello with its board name and
becomes that board: every BLE method it calls runs on the board's firmware model
(`tools/blesim/firmware/`) here; every IRQ the model raises for that board is sent to the
process, which runs the script's handler and sends the return value back, all synchronously.
The protocol is described in `tools/blesim/wire.py`.

Time. The broker owns the virtual clock (World.now). A board process is either running (its
Python code executes; that costs no virtual time) or waiting (time.sleep*, machine.idle(),
multitest.wait()). The clock moves only when every joined board process waits and no
announced board is still starting: it jumps to the next world event or the earliest wake-up
time, whichever is first, and stops early when an idle()-waiting board received an IRQ. So a
30 s SMP timeout takes milliseconds of real time, and results do not depend on how fast the
host is. A board that has not joined yet freezes the clock if its launcher announced it
(`expect`), so a peer's 20 s timeout cannot run out while a slow interpreter starts, and a
board blocked in multitest.wait() holds it while a broadcast line is on its way to it
(`hold`/`consumed`). A board waiting on its stdin otherwise counts as waiting.

A board process that leaves (exit, crash, machine.reset()) resets its board: RAM lost,
links dropped (peers notice by supervision timeout), flash kept; a new process with the
same board name takes the board over (this is how a restarted script finds its bonds).
`machine.reset()` in a board process launched with the "restart" option (run_boards does)
keeps the clock still until the restarted process has joined.

In-process use (tests, launchers): `Broker(...).start_thread()` gives the address; or
`spawn_broker(...)` runs it as a subprocess and returns (Popen, "host:port"); that broker
stops if its launcher dies (`--parent-pid`), and its board processes end with it (a board
process exits with status 3 when the broker goes away), so nothing is left spinning.
"""

import argparse
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading

from . import wire

__all__ = ["Broker", "spawn_broker", "main"]


class ClientGone(Exception):
    """The board process left while its IRQ handler was expected to answer."""


_RAISED = {}


def _handler_error(text):
    """An exception named like the one the script's handler raised (for the firmware's
    report and the trace: "ValueError: boom")."""
    name, _, msg = text.partition(": ")
    if not name.isidentifier():
        name, msg = "Exception", text
    cls = _RAISED.get(name)
    if cls is None:
        cls = _RAISED[name] = type(name, (Exception,), {"__module__": "board"})
    return cls(msg)


# MicroPython's BLE methods on ESP32; a board process sees those the firmware model has.
API = (
    "active", "config", "irq", "gap_advertise", "gap_scan", "gap_connect", "gap_disconnect", "gap_pair",
    "gap_passkey", "gatts_register_services", "gatts_read", "gatts_write", "gatts_notify", "gatts_indicate",
    "gatts_set_buffer", "gattc_discover_services", "gattc_discover_characteristics",
    "gattc_discover_descriptors", "gattc_read", "gattc_write", "gattc_exchange_mtu", "l2cap_listen",
    "l2cap_connect", "l2cap_disconnect", "l2cap_send", "l2cap_recvinto", "hci_cmd",
)


class _Client:
    def __init__(self, broker, sock):
        self.broker = broker
        self.sock = sock
        self.rbuf = b""
        self.inbox = []  # parsed messages not yet handled
        self.deferred = []  # messages sent before an IRQ was seen (handled after it)
        self.name = None
        self.board = None
        self.control = False
        self.alive = True
        self.state = "run"
        self.until = None
        self.on_irq = False
        self.ext = False
        self.got_irq = False
        self.depth = 0
        self.lines_due = 0  # broadcast lines sent to this board's stdin, not read yet
        self.restart = False  # its launcher restarts the script after machine.reset()
        self.interp = None
        self.proxy = self._make_proxy()

    def _make_proxy(self):
        def irq_proxy(event, data):
            return self.broker._deliver(self, event, data)

        irq_proxy.blesim_client = self
        return irq_proxy

    def fileno(self):
        return self.sock.fileno()

    def send(self, obj):
        if not self.alive:
            return
        obj["now"] = self.broker.now_us()
        try:
            self.sock.sendall((json.dumps(obj) + "\n").encode())
        except OSError:
            self.alive = False

    def fill(self, block):
        """Reads what the socket has (blocking for at least one line if `block`)."""
        while True:
            try:
                chunk = self.sock.recv(65536) if block or self._readable() else None
            except OSError:
                chunk = b""
            if chunk is None:
                return
            if chunk == b"":
                self.alive = False
                return
            self.rbuf += chunk
            while b"\n" in self.rbuf:
                line, self.rbuf = self.rbuf.split(b"\n", 1)
                if line.strip():
                    try:
                        msg = json.loads(line)
                        if not isinstance(msg, dict):
                            raise ValueError("not an object")
                    except ValueError:  # not our protocol: drop the connection
                        self.alive = False
                        self.broker.log("bad message from %s: %r" % (self.name, line[:80]))
                        return
                    self.inbox.append(msg)
            if not block or self.inbox:
                return

    def _readable(self):
        r, _, _ = select.select([self.sock], [], [], 0)
        return bool(r)

    def next_message(self):
        """The next message (blocking); None when the process has gone."""
        while not self.inbox:
            if not self.alive:
                return None
            self.fill(True)
        return self.inbox.pop(0)


class Broker:
    """The air broker. `world` defaults to a new `World(profile, seed)`."""

    def __init__(self, world=None, port=0, expect=(), profile="esp32", seed=1, exit_when_idle=False,
                 log=None, parent_pid=None):
        if world is None:
            from .world import World

            world = World(profile=profile, seed=seed)
        self.world = world
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(16)
        self.addr = "127.0.0.1:%d" % self.listener.getsockname()[1]
        self.clients = []
        self.expected = set(expect)
        self.lines_pending = {}  # board name -> broadcast lines sent before that board joined
        self.joined_once = False
        self.exit_when_idle = exit_when_idle
        self.log = log or (lambda msg: None)
        self._stop = False
        self._thread = None
        self.parent_pid = parent_pid  # stop when this process (the launcher) is gone

    # ------------------------------------------------------------------ utilities
    def now_us(self):
        return int(round(self.world.now * 1000000))

    def _boards(self):
        return [c for c in self.clients if c.board is not None and c.alive]

    # ------------------------------------------------------------------ main loop
    def serve_forever(self):
        try:
            while not self._stop:
                if self.parent_pid is not None and os.getppid() != self.parent_pid:
                    self.log("launcher %d gone: stopping" % self.parent_pid)
                    break  # closing the sockets ends the board processes too
                self._process_queued()
                can = self._can_advance()
                rlist = [self.listener] + [c for c in self.clients if c.alive]
                r, _, _ = select.select(rlist, [], [], 0 if can else 0.2)
                for s in r:
                    if s is self.listener:
                        sock, _ = self.listener.accept()
                        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        self.clients.append(_Client(self, sock))
                    else:
                        s.fill(False)
                self._reap()
                if not r and can:
                    self._advance()
                if self.exit_when_idle and self.joined_once and not self.expected and not any(
                    c.board is not None for c in self.clients
                ):
                    break
        finally:
            self.close()

    def start_thread(self):
        self._thread = threading.Thread(target=self.serve_forever, name="blesim-broker", daemon=True)
        self._thread.start()
        return self.addr

    def stop(self):
        self._stop = True
        if self._thread is not None:
            self._thread.join(5)

    def close(self):
        for c in self.clients:
            try:
                c.sock.close()
            except OSError:
                pass
        self.clients = []
        try:
            self.listener.close()
        except OSError:
            pass

    def _process_queued(self):
        progress = True
        while progress:
            progress = False
            for c in list(self.clients):
                while (c.deferred or c.inbox) and c in self.clients:  # also what came before an EOF
                    if c.deferred:
                        msg = c.deferred.pop(0)
                    else:
                        msg = c.inbox.pop(0)
                    self._handle(c, msg)
                    progress = True

    def _reap(self):
        for c in list(self.clients):
            if not c.alive and not c.inbox:
                self._depart(c)

    # ------------------------------------------------------------------ messages
    def _handle(self, c, msg):
        op = msg.get("op")
        if op == "hello":
            self._hello(c, msg)
        elif op == "call":
            self._call(c, msg)
        elif op == "wait":
            self._wait(c, msg, after_irq=msg.pop("_after_irq", False))
        elif op == "resume":
            if c.state == "wait":
                c.state = "run"
                c.send({"op": "wake"})
        elif op == "bye":
            self._bye(c, msg)
            self._depart(c)
        elif op == "hold":  # a multitest broadcast line is on its way to the other boards
            for other in self._boards():
                if other is not c:
                    other.lines_due += 1
            for name in self.expected:  # announced, not joined yet: it reads the line once it runs
                if name != c.name:
                    self.lines_pending[name] = self.lines_pending.get(name, 0) + 1
            c.send({"op": "res", "v": None})
        elif op == "consumed":
            c.lines_due = max(0, c.lines_due - int(msg.get("n", 1)))
        elif op == "expect":
            self.expected.add(msg["board"])
            c.control = True
            c.send({"op": "ok"})
        elif op == "unexpect":
            self.expected.discard(msg["board"])
            c.control = True
            c.send({"op": "ok"})
        elif op == "shutdown":  # stop once every board has left
            self.exit_when_idle = True
            self.joined_once = True
            self.expected.clear()
            c.control = True
            c.send({"op": "ok"})
        elif op == "status":
            c.control = True
            c.send({"op": "status", "boards": [x.name for x in self._boards()],
                    "expected": sorted(self.expected), "stuck": self._stuck(),
                    "stdin": sorted(x.name for x in self._boards() if x.state == "wait" and x.ext)})
        else:
            c.send({"op": "err", "c": "OSError", "a": [5, "blesim broker: unexpected %r" % (op,)]})

    def _bye(self, c, msg):
        c.alive = False
        if msg.get("rc") == 99 and c.restart and c.name:  # machine.reset(): the launcher restarts it
            self.expected.add(c.name)

    def _hello(self, c, msg):
        name = msg.get("board") or "board%d" % len(self.world.boards)
        for other in self._boards():
            if other.name == name:
                c.send({"op": "refused", "why": "board %r is taken by another process" % name})
                c.alive = False
                return
        opts = msg.get("opts") or {}
        w = self.world
        if name in w.boards:
            board = w.boards[name]
            if not board.powered:
                board.power_on()
        else:
            kw = {}
            if opts.get("addr"):
                kw["addr"] = (int(opts.get("addr_type", 0)), bytes.fromhex(opts["addr"].replace(":", "")))
            for k in ("profile", "seed"):
                if opts.get(k) is not None:
                    kw[k] = opts[k]
            if opts.get("pos") is not None:
                kw["pos"] = tuple(opts["pos"])
            owner = [b.name for b in w.boards.values() if "addr" in kw and b.public_addr == kw["addr"][1]]
            if owner:  # two board processes given one address: a mistake on the command line
                c.send({"op": "refused", "why": "address %s is board %r's" % (kw["addr"][1].hex(), owner[0])})
                c.alive = False
                return
            board = w.board(name, **kw)
        c.name = name
        c.board = board
        c.restart = bool(opts.get("restart"))
        c.interp = msg.get("interp")
        self.expected.discard(name)
        c.lines_due = self.lines_pending.pop(name, 0)
        self.joined_once = True
        self.log("join %s (%s)" % (name, c.interp))
        w.trace.add("note", name, "join", text="process joined (%s)" % c.interp)
        c.send({"op": "welcome", "board": name, "addr": board.public_addr.hex(),
                "addr_type": board.addr_type, "methods": self._methods(board.ble)})

    def _methods(self, ble):
        t = type(ble)
        if getattr(self.world, "_blesim_fake", False):  # protocol tests: every public method
            return [n for n in dir(t) if not n.startswith("_") and callable(getattr(t, n))]
        return [n for n in API if callable(getattr(t, n, None))]

    def _call(self, c, msg):
        if c.board is None:
            c.send({"op": "err", "c": "OSError", "a": [5, "blesim: hello first"]})
            return
        board = c.board
        ble = board.ble
        m = msg.get("m")
        uuid = self._uuid_class()
        args = [wire.dec(a, uuid) for a in msg.get("a", [])]
        kwargs = {k: wire.dec(v, uuid) for k, v in (msg.get("k") or {}).items()}
        try:
            if m not in self._methods(ble):
                raise AttributeError("'BLE' object has no attribute '%s'" % m)
            if m == "irq":
                h = args[0] if args else None
                args = [c.proxy if h else None]
            with board:
                res = getattr(ble, m)(*args, **kwargs)
        except Exception as e:  # the firmware's own errors go back to the script
            c.send({"op": "err", "c": type(e).__name__, "a": [wire.enc(a) for a in e.args]})
            return
        c.send({"op": "res", "v": wire.enc(res)})

    _uuid = None

    def _uuid_class(self):
        if Broker._uuid is None:
            try:
                from .firmware.uuid import UUID
            except ImportError:
                UUID = None
            Broker._uuid = UUID or str
        return Broker._uuid

    def _wait(self, c, msg, after_irq=False):
        u = msg.get("u")
        c.until = None if u is None else u / 1000000.0
        c.on_irq = bool(msg.get("i"))
        c.ext = bool(msg.get("x"))
        c.got_irq = False
        c.state = "wait"
        if (c.on_irq and after_irq) or (c.until is not None and c.until <= self.world.now):
            c.state = "run"
            c.send({"op": "wake"})

    # ------------------------------------------------------------------ IRQs
    def _deliver(self, c, event, data):
        """Called by the firmware model (synchronously) to run the script's handler."""
        if not c.alive:
            raise ClientGone("board process %s has gone" % c.name)
        c.depth += 1
        try:
            c.send({"op": "irq", "e": event, "a": [wire.enc(x, views=True) for x in data]})
            while True:
                msg = c.next_message()
                if msg is None:
                    raise ClientGone("board process %s has gone" % c.name)
                if msg.get("d", 0) < c.depth:
                    if msg.get("op") == "wait":
                        msg["_after_irq"] = True
                    c.deferred.append(msg)
                    continue
                op = msg.get("op")
                if op == "ret":
                    if "x" in msg:
                        raise _handler_error(msg["x"])
                    return wire.dec(msg.get("v"), self._uuid_class())
                if op == "call":
                    self._call(c, msg)
                elif op == "wait":  # sleeping inside a handler: no virtual time passes
                    c.send({"op": "wake"})
                elif op == "bye":
                    self._bye(c, msg)
                    raise ClientGone("board process %s has gone" % c.name)
                else:
                    self._handle(c, msg)
        finally:
            c.depth -= 1
            if c.state == "wait" and c.on_irq:
                c.got_irq = True

    # ------------------------------------------------------------------ the clock
    def _can_advance(self):
        if self.expected:
            return False
        boards = self._boards()
        if not boards:
            return False
        for c in boards:
            if c.state != "wait" or c.inbox or c.deferred:
                return False
            if c.ext and c.lines_due:  # blocked on a stdin line that is on its way
                return False
        if any(c.until is not None for c in boards):
            return True
        return self.world.next_time() is not None

    def _stuck(self):
        """Every board waits and nothing in the simulation can end a wait: no deadline, no board
        still to join, no broadcast line on its way; a board waiting on its stdin (a multitest
        wait, input()) only for a line (advertising events may go on but wake no one), one
        waiting for IRQs only if the air has nothing left to do. Only its launcher can help."""
        boards = self._boards()
        if self.expected or not boards:
            return False
        quiet = self.world.next_time() is None
        for c in boards:
            if c.state != "wait" or c.inbox or c.deferred or c.until is not None:
                return False
            if c.ext:
                if c.lines_due:
                    return False
            elif not quiet:
                return False
        return True

    def _advance(self):
        w = self.world
        boards = self._boards()
        deadlines = [c.until for c in boards if c.until is not None]
        target = min(deadlines) if deadlines else None
        t_world = w.next_time()
        if target is None or (t_world is not None and t_world < target):
            if target is None:
                target = t_world
        if target is None:
            return
        for c in boards:
            c.got_irq = False
        if target > w.now:
            w.run_until(lambda: any(c.got_irq for c in boards), timeout=target - w.now)
        else:
            w.run_until(lambda: any(c.got_irq for c in boards), timeout=0)
        for c in boards:
            if c.alive and c.state == "wait" and (c.got_irq or (c.until is not None and c.until <= w.now)):
                c.state = "run"
                c.send({"op": "wake"})

    # ------------------------------------------------------------------ leaving
    def _depart(self, c):
        if c in self.clients:
            self.clients.remove(c)
        try:
            c.sock.close()
        except OSError:
            pass
        if c.board is None:
            return
        board = c.board
        c.board = None
        self.log("leave %s" % c.name)
        self.world.trace.add("note", c.name, "leave", text="process left")
        if board.powered:
            try:
                board.reset()
            except Exception as e:  # noqa: BLE001 (keep serving the others)
                self.log("reset of %s failed: %r" % (c.name, e))


def spawn_broker(expect=(), trace=None, profile="esp32", seed=1, log=None, python=None):
    """Starts a broker subprocess (exits when idle); returns (Popen, "host:port")."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cmd = [python or sys.executable, "-u", "-m", "tools.blesim.broker", "--exit-when-idle",
           "--profile", profile, "--seed", str(seed), "--parent-pid", str(os.getpid())]
    if expect:
        cmd += ["--expect", ",".join(expect)]
    if trace:
        cmd += ["--trace", trace]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root, os.path.join(root, "tools", "blesim", "modules"),
                                         os.path.join(root, "lib")])
    p = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE,
                         stderr=log if log is not None else subprocess.DEVNULL)
    line = p.stdout.readline().decode()
    if not line.startswith("BLESIM BROKER "):
        p.kill()
        raise RuntimeError("broker did not start: %r" % line)
    return p, line.split()[-1]


def control(addr, msg):
    """Sends one control message (expect/unexpect/status) and returns the answer."""
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port))) as s:
        s.sendall((json.dumps(msg) + "\n").encode())
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf.split(b"\n", 1)[0]) if buf else None


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tools.blesim.broker", description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--expect", default="", help="board names to wait for before the clock runs")
    ap.add_argument("--trace", help="write the trace (JSON lines) here when the broker stops")
    ap.add_argument("--profile", default="esp32")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--exit-when-idle", action="store_true", help="stop once every board has left")
    ap.add_argument("--parent-pid", type=int, help="stop when this process is no longer our parent")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    expect = [x for x in a.expect.split(",") if x]

    def log(msg):
        if a.verbose:
            sys.stderr.write("broker: %s\n" % msg)

    b = Broker(port=a.port, expect=expect, profile=a.profile, seed=a.seed, exit_when_idle=a.exit_when_idle,
               log=log, parent_pid=a.parent_pid)
    sys.stdout.write("BLESIM BROKER %s\n" % b.addr)
    sys.stdout.flush()
    # From here on, anything the firmware model prints (e.g. its own report of a handler
    # exception, which the board process has already printed) goes to stderr.
    sys.stdout = sys.stderr

    def _term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)
    try:
        b.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if a.trace:
            with open(a.trace, "w") as f:
                f.write(b.world.trace.to_jsonl())
    return 0


if __name__ == "__main__":
    sys.exit(main())
