"""Client side of the blesim air broker, for MicroPython (unix port) and CPython.

One board process = one connection to the broker (`tools/blesim/broker.py`). This
module is written in the subset both interpreters share (no f-strings with `=`,
no typing, `select.poll`, `json`, `binascii`), so the same file serves
`python -m tools.blesim.run script.py` and `run.py --mp script.py`.

Environment (set by run.py): BLESIM_BROKER=host:port, BLESIM_BOARD=name,
BLESIM_OPTS=json of board options (addr, addr_type, profile...).

Wire protocol: one JSON object per line, see `tools/blesim/wire.py` for the
summary. Every message this side sends carries `d`, the depth of IRQ handlers
running on this side when it was sent, so that the broker can tell a call made
inside a handler (run now, nested) from one sent just before an IRQ arrived
(run after the handler returns).

Time: the broker owns the virtual clock; `now_us()` is the last value the
broker sent. The clock only moves while every board process is waiting
(`sleep*`, `machine.idle`, `multitest.wait`), so while this process runs the
time it reads does not change (code costs no virtual time).
"""

import binascii
import json
import socket
import sys


def builtin(name):
    """The interpreter's own module `name`, not the shadow of it on the path that is importing
    it (time.py, mponly/select.py: MicroPython lets a module on the path extend a built-in)."""
    path = sys.path
    sys.path = []
    try:
        return __import__(name)
    finally:
        sys.path = path


if sys.implementation.name == "micropython":
    select = builtin("select")  # not mponly/select.py
else:
    import select

try:
    import os
    getenv = os.getenv
except AttributeError:  # pragma: no cover
    getenv = None

MP = sys.implementation.name == "micropython"

if MP:
    import uctypes

    def _invalidate(items):
        # The firmware's memoryviews point into the C stack: stale after the
        # handler returns. MicroPython has no memoryview.release(), so wipe
        # the bytes behind each view (they are private to this call).
        for b in items:
            if len(b):
                uctypes.bytearray_at(uctypes.addressof(b), len(b))[:] = bytes(len(b))
else:

    def _invalidate(items):
        for m in items:
            m.release()


def _env(name, default=None):
    if getenv is None:
        return default
    v = getenv(name)
    return default if v is None else v


# --- values on the wire -------------------------------------------------------

UUID = None  # set by bluetooth.py (the class used to rebuild UUIDs)


def enc(v):
    if v is None or v is True or v is False:
        return v
    t = type(v)
    if UUID is not None and isinstance(v, UUID):  # before bytes: UUID has bytes' buffer
        return {"u": binascii.hexlify(bytes(v)).decode()}
    if t is int or t is float or t is str:
        return v
    if t is tuple:
        return {"t": [enc(x) for x in v]}
    if t is list:
        return [enc(x) for x in v]
    if t is dict:
        return {"k": [[enc(k), enc(x)] for k, x in v.items()]}
    if t is bytes or t is bytearray or t is memoryview:
        return {"b": binascii.hexlify(bytes(v)).decode()}
    if isinstance(v, int):  # bool handled above; IntEnum-like
        return int(v)
    return {"o": repr(v)}


def dec(v, views=None):
    if type(v) is list:
        return [dec(x, views) for x in v]
    if type(v) is not dict:
        return v
    if "b" in v:
        return binascii.unhexlify(v["b"])
    if "m" in v:
        b = binascii.unhexlify(v["m"])
        if views is None:
            return b
        if MP:
            views.append(b)
            return memoryview(b)
        m = memoryview(b)
        views.append(m)
        return m
    if "t" in v:
        return tuple([dec(x, views) for x in v["t"]])
    if "u" in v:
        return UUID(binascii.unhexlify(v["u"]))
    if "k" in v:
        d = {}
        for k, x in v["k"]:
            d[dec(k)] = dec(x, views)
        return d
    if "o" in v:
        return _Opaque(v["o"])
    return v


class _Opaque:
    def __init__(self, r):
        self.r = r

    def __repr__(self):
        return self.r


_EXC = {
    "OSError": OSError,
    "ValueError": ValueError,
    "TypeError": TypeError,
    "AttributeError": AttributeError,
    "KeyError": KeyError,
    "IndexError": IndexError,
    "RuntimeError": RuntimeError,
    "NotImplementedError": NotImplementedError,
    "MemoryError": MemoryError,
    "OverflowError": OverflowError,
}


def _exc(name, args):
    cls = _EXC.get(name, RuntimeError)
    if MP and cls is OSError and args and type(args[0]) is int:
        # as the firmware raises it: OSError(errno), printed "[Errno 128] ENOTCONN"
        return OSError(args[0])
    return cls(*args)


# --- the connection -------------------------------------------------------------

_sock = None
_rbuf = b""
_now = 0
_depth = 0
_handler = None
_woke_by_irq = False
_stdin_buf = b""
_wake_pending = False  # a "wake" for our wait came while a scheduled callback's call ran
info = {}
quiet_spin = 0  # ticks reads since the last wait (see now_us)


def connected():
    return _sock is not None


def connect_if_configured():
    """Joins the broker if BLESIM_BROKER is set; returns whether joined."""
    if _sock is None and _env("BLESIM_BROKER"):
        connect()
    return _sock is not None


def connect():
    global _sock, _now, info
    if _sock is not None:
        return info
    addr = _env("BLESIM_BROKER")
    if not addr:
        raise OSError(19, "no blesim broker: set BLESIM_BROKER=host:port (tools/blesim/run.py does)")
    host, port = addr.rsplit(":", 1)
    s = socket.socket()
    s.connect(socket.getaddrinfo(host, int(port))[0][-1])
    _sock = s
    opts = json.loads(_env("BLESIM_OPTS", "{}"))
    _send({"op": "hello", "board": _env("BLESIM_BOARD", "board"), "opts": opts,
           "interp": sys.implementation.name})
    msg = _recv()
    if msg.get("op") != "welcome":
        raise OSError(5, "broker refused: " + str(msg.get("why")))
    _now = msg["now"]
    info = msg
    return info


def _send(obj):
    obj["d"] = _depth
    data = (json.dumps(obj) + "\n").encode()
    try:
        _sock.sendall(data)
    except OSError:
        _gone()


def _gone():
    # The broker is gone: the air has vanished; nothing sensible can go on.
    sys.stdout.write("blesim: broker closed the connection\n")
    sys.exit(3)


def _recv():
    global _rbuf
    while True:
        i = _rbuf.find(b"\n")
        if i >= 0:
            line = _rbuf[:i]
            _rbuf = _rbuf[i + 1 :]
            return json.loads(line)
        try:
            chunk = _sock.recv(65536)
        except OSError:  # reset: the broker is gone
            chunk = b""
        if not chunk:
            _gone()
        _rbuf += chunk


def _dispatch(msg):
    """Handles an IRQ message; returns True if it was one."""
    global _now
    if "now" in msg:
        _now = msg["now"]
    if msg["op"] != "irq":
        return False
    _run_irq(msg["e"], msg["a"])
    return True


def _run_irq(event, raw):
    global _depth, _handler, _woke_by_irq
    _woke_by_irq = True
    views = []
    data = dec({"t": raw}, views)
    _depth += 1
    h = _handler
    failed = None
    result = None
    try:
        if h is not None:
            result = h(event, data)
    except Exception as e:  # the firmware prints, then removes the handler
        failed = "%s: %s" % (type(e).__name__, e)
        _handler = None
        _print_unhandled(e)
    # The firmware reads the returned buffer before its views go stale: encode, then wipe.
    reply = {"op": "ret", "x": failed} if failed is not None else {"op": "ret", "v": enc(result)}
    _invalidate(views)
    try:
        _send(reply)
    finally:
        _depth -= 1
    _run_scheduled()


def _print_unhandled(e):
    sys.stdout.write("Unhandled exception in IRQ callback handler\n")
    if MP:
        import io

        buf = io.StringIO()
        sys.print_exception(e, buf)
        for line in buf.getvalue().split("\n"):
            if line and "_blesim.py" not in line:  # the frame of this module, not the board's
                sys.stdout.write(line + "\n")
    else:
        print_exception(e, skip=1)


def print_exception(e, file=None, skip=0):
    """sys.print_exception for CPython board processes: MicroPython's format (frames without
    source lines), so code that prints a caught exception (lib's log) shows where it came from."""
    import traceback

    out = file or sys.stdout
    out.write("Traceback (most recent call last):\n")
    for fr in traceback.extract_tb(e.__traceback__)[skip:]:
        out.write('  File "%s", line %d, in %s\n' % (fr.filename, fr.lineno, fr.name))
    out.write("".join(traceback.format_exception_only(type(e), e)))


def _run_scheduled():
    if MP:
        return  # the real scheduler runs micropython.schedule() callbacks
    m = sys.modules.get("micropython")
    r = getattr(m, "run_scheduled", None)
    if r is not None:
        r()


def call(method, args=(), kwargs=None):
    """Runs `method` on this board's firmware model in the broker."""
    global quiet_spin
    spun = quiet_spin
    quiet_spin = 0
    connect()
    msg = {"op": "call", "m": method, "a": [enc(a) for a in args]}
    if kwargs:
        msg["k"] = dict((k, enc(v)) for k, v in kwargs.items())
    _send(msg)
    while True:
        r = _recv()
        if _dispatch(r):
            continue
        op = r["op"]
        if op == "wake":  # see _took_wake
            _took_wake()
            continue
        if op == "res":
            return dec(r["v"])
        if op == "err":
            # a script retrying a failing call (ENOMEM from a full buffer pool) is spinning: on
            # a board that takes time, so count it like a tight ticks_ms() loop (see now_us)
            quiet_spin = spun + 1
            if quiet_spin >= 64:
                idle()
            raise _exc(r["c"], dec(r["a"]))
        raise OSError(5, "blesim: unexpected " + op)


def _request(msg):
    """Sends a broker request and waits for its "res" (running IRQs meanwhile)."""
    _send(msg)
    while True:
        r = _recv()
        if _dispatch(r):
            continue
        if r["op"] == "wake":
            _took_wake()
            continue
        if r["op"] == "res":
            return dec(r["v"])
        raise OSError(5, "blesim: unexpected " + r["op"])


def _took_wake():
    # An IRQ came during a wait; after its handler, a micropython.schedule()d callback (run
    # then, as the firmware runs them between the main loop's bytecodes) called a BLE method.
    # The broker may end the wait before it answers that call: the wake belongs to the wait.
    global _wake_pending
    _wake_pending = True


def hold_for_broadcast():
    """multitest.broadcast(): before the line is printed, tell the broker that the other
    boards have a line coming on stdin; a board blocked in multitest.wait() holds the clock
    until it has read it (so no virtual time passes while the line is in flight)."""
    if _sock is not None:
        _request({"op": "hold"})


def set_handler(h):
    global _handler
    _handler = h
    call("irq", (1 if h is not None else None,))


def now_us():
    """The virtual time. Reading it in a tight loop (a script polling
    time.ticks_ms() without sleeping) counts as idling every 64 reads, so
    that such a loop still lets the clock move."""
    global quiet_spin
    if _sock is not None:
        quiet_spin += 1
        if quiet_spin >= 64:
            idle()
    return _now


_idle_step = 1000


# machine.Timer: [due_us, period_us (0: one shot), callback, timer object]. They fire
# while the script waits (the only time the virtual clock moves), in due order.
timers = []


def timer_start(obj, period_us, periodic, callback):
    timer_stop(obj)
    timers.append([_now + period_us, period_us if periodic else 0, callback, obj])


def timer_stop(obj):
    for t in timers:
        if t[3] is obj:
            timers.remove(t)
            return


def _run_timers():
    fired = False
    while True:
        due = None
        for t in timers:
            if t[0] <= _now and (due is None or t[0] < due[0]):
                due = t
        if due is None:
            return fired
        if due[1]:
            due[0] += due[1]
        else:
            timers.remove(due)
        fired = True
        due[2](due[3])


def wait(until_us, on_irq, ext_fd=None, ext_poll=None):
    """Waits in virtual time until `until_us` (None: no deadline), or until an
    IRQ was handled (if `on_irq`), or until `ext_fd` is readable. IRQs and
    machine.Timer callbacks run as they come due. Returns "time", "irq" or "ext"."""
    while True:
        step = until_us
        for t in timers:
            if step is None or t[0] < step:
                step = t[0]
        why = _wait_once(step, on_irq, ext_fd, ext_poll)
        fired = _run_timers()
        _run_scheduled()
        if why != "time" or until_us is None and not timers:
            return why
        if until_us is not None and _now >= until_us:
            return why
        if fired and on_irq:
            return "irq"  # machine.idle() returns after any interrupt


def _wait_once(until_us, on_irq, ext_fd=None, ext_poll=None):
    global _woke_by_irq, quiet_spin, _wake_pending
    quiet_spin = 0
    connect()
    _woke_by_irq = False
    msg = {"op": "wait", "u": until_us, "i": 1 if on_irq else 0}
    if ext_fd is not None or ext_poll is not None:
        msg["x"] = 1
    _send(msg)
    resumed = False
    why = "time"
    while True:
        if _wake_pending:
            _wake_pending = False
            return why
        if ext_poll is not None and not resumed and not _rbuf:
            # another poller's descriptors (asyncio streams): look at them every 10 ms
            p = select.poll()
            p.register(_sock, select.POLLIN)
            ext_ready = False
            while not p.poll(10):
                if ext_poll.poll(0):
                    ext_ready = True
                    break
            if ext_ready:
                _send({"op": "resume"})
                resumed = True
                why = "ext"
                continue
        if ext_fd is not None and not resumed and not _rbuf:
            p = select.poll()
            p.register(_sock, select.POLLIN)
            p.register(ext_fd, select.POLLIN)
            ready = p.poll(-1)
            fds = []
            for ent in ready:
                o = ent[0]
                fds.append(o if type(o) is int else o.fileno())
            if ext_fd in fds and _sock.fileno() not in fds:
                _send({"op": "resume"})
                resumed = True
                why = "ext"
                continue
        r = _recv()
        if _dispatch(r):
            if on_irq and why == "time":
                why = "irq"
            continue
        if r["op"] == "wake":
            return why
        raise OSError(5, "blesim: unexpected " + r["op"])


def idle():
    """machine.idle(): returns after an IRQ, or after a short virtual time.
    Consecutive idles with nothing happening wait longer (1, 2, 4 ... 64 ms)
    so that a timeout loop over idle() costs few round trips."""
    global _idle_step
    why = wait(_now + _idle_step, True)
    if why == "irq":
        _idle_step = 1000
    elif _idle_step < 64000:
        _idle_step *= 2


def sleep_us(n):
    if n > 0:
        wait(_now + int(n), False)
    else:
        wait(_now, False)


def _stdin_ready():
    # more of a line already there: read on without a round trip to the broker per byte
    p = select.poll()
    p.register(0, select.POLLIN)
    return bool(p.poll(0))


def readline_stdin(virtual=True):
    """A line from stdin (multitest). With `virtual`, this board counts as waiting (the
    clock may move and IRQs run meanwhile, as on a board blocked in input); without, the
    process counts as running, so the clock stands still until the line comes."""
    global _stdin_buf
    while True:
        i = _stdin_buf.find(b"\n")
        if i >= 0:
            line = _stdin_buf[: i + 1]
            _stdin_buf = _stdin_buf[i + 1 :]
            return line.decode()
        if virtual and connected() and not _stdin_ready():
            wait(None, False, 0)
        if MP:
            c = sys.stdin.buffer.read(1)  # one byte (a read of more would block for them)
        else:
            import os as _os

            c = _os.read(0, 4096)
        if virtual and _sock is not None and b"\n" in c:
            _send({"op": "consumed", "n": c.count(b"\n")})
        if not c:
            line = _stdin_buf
            _stdin_buf = b""
            return line.decode()
        _stdin_buf += c


def bye(rc=0):
    global _sock
    if _sock is not None:
        try:
            _sock.sendall((json.dumps({"op": "bye", "rc": rc, "d": _depth}) + "\n").encode())
        except OSError:
            pass  # the broker is gone already
        _sock.close()
        _sock = None
