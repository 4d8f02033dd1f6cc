"""The simulated world: a virtual clock, an event queue, the air and the boards.

    from tools.blesim import World
    w = World()                        # profile="esp32" (current MicroPython ESP32 release)
    a = w.board("a")                   # Board: a.ble (bluetooth.BLE model), a.fs (Flash), a.nvs
    b = w.board("b", addr=(0, bytes.fromhex("a4cf12000002")))
    a.ble.irq(handler); a.ble.active(True)
    w.run(0.5)                         # advance the virtual clock, delivering events
    w.run_until(lambda: seen, timeout=5)

Nothing sleeps in real time. Events (PDU deliveries, advertising events, timeouts) sit in
one heap ordered by (time, sequence) and run in order; IRQ handlers are called from inside
`run()`, synchronously, with the board they belong to made "current" (so `bluetooth.BLE()`,
`time.ticks_ms()`, `machine.unique_id()` inside a handler refer to that board).

While a World exists CPython's `time` module gains MicroPython's `ticks_ms`, `ticks_us`,
`ticks_cpu`, `ticks_diff`, `ticks_add`, `sleep_ms`, `sleep_us` driven by the virtual clock of
the most recently created World (sleep_* run the world for that long; inside an IRQ handler they
return at once, taking no virtual time). `time.sleep` is left alone (CPython needs the real one).

Board lifecycle: `reset()` = soft/hard reset (RAM lost: a fresh BLE object, handler None,
config back to defaults, connections dropped; the peers notice by supervision timeout),
`power_off()` / `power_on()` (same, and the radio is silent meanwhile). Flash (`fs`) and NVS
survive both. `machine.reset()` inside a script raises `BoardReset` after resetting.
"""

import heapq
import random
import time as _time
import weakref

from .air import Air
from .trace import Trace
from .unwind import BoardDown, BoardReset, irq_depth

__all__ = ["World", "Board", "BoardReset", "BoardDown", "Timer", "current_board", "current_world"]


def auto_addr(n):
    """The address the simulator gives the n-th board (1, 2, ...) when none is set."""
    return bytes([0xA4, 0xCF, 0x12, 0x00, (n >> 8) & 0xFF, n & 0xFF])


class Timer:
    __slots__ = ("t", "seq", "fn", "args", "cancelled")

    def __init__(self, t, seq, fn, args):
        self.t = t
        self.seq = seq
        self.fn = fn
        self.args = args
        self.cancelled = False

    def cancel(self):
        self.cancelled = True

    def __lt__(self, other):
        return (self.t, self.seq) < (other.t, other.seq)


_worlds = []  # weak references, oldest first: the last live World drives time.ticks_* etc.
_current = []  # stack of boards made current


def current_world():
    while _worlds:
        w = _worlds[-1]()
        if w is not None and not w._closed:
            return w
        _worlds.pop()
    return None


def _board_open(path, mode="r", *args, **kwargs):
    if _current:
        return _current[-1].fs.open(path, mode)
    return _HOST_FILES[0](path, mode, *args, **kwargs)


def _board_rename(a, b):
    return _current[-1].fs.rename(a, b) if _current else _HOST_FILES[1](a, b)


def _board_remove(path):
    return _current[-1].fs.remove(path) if _current else _HOST_FILES[2](path)


_HOST_FILES = (open, __import__("os").rename, __import__("os").remove)


def _route_lib_files():
    """blesmp.store's default files (`BondStore()` without fs=: the board's `open`, `os.rename`,
    `os.remove`, taken when the module loads) are the current board's flash while its code runs
    (in `with board:`, `board.exec`, IRQ handlers), as each board has its own file system;
    outside, the host's. Without this an in-process board wrote bonds.db into the host's cwd."""
    import sys

    st = sys.modules.get("blesmp.store")
    files = getattr(st, "_Files", None)
    if files is not None and files.__dict__.get("open") is not _ROUTED[0]:
        files.open, files.rename, files.remove = _ROUTED


_ROUTED = (staticmethod(_board_open), staticmethod(_board_rename), staticmethod(_board_remove))


def current_board():
    """The board whose code is running (set while an IRQ is delivered or in `with board:`)."""
    if _current:
        return _current[-1]
    w = current_world()
    if w is not None and w._default is not None:
        return w._default
    return None


class Board:
    """One simulated ESP32: `ble` (the firmware model), `fs` (Flash), `nvs` (dict of committed
    NVS namespaces), `pins`, `name`, `public_addr` (6 bytes MSB-first), `pos` (x, y metres)."""

    def __init__(self, world, name, addr=None, profile=None, fs=None, pos=None, seed=None):
        from .firmware import BLE  # late import: the firmware model loads only with a board

        self.world = world
        self.name = name
        self.profile = profile or world.profile
        taken = {b.public_addr: b.name for b in world.boards.values()}
        if addr is None:
            # Espressif OUI and a per-board suffix: the next one no board has
            n = len(world.boards) + 1
            while auto_addr(n) in taken:
                n += 1
            addr = (0, auto_addr(n))
        if isinstance(addr, (bytes, bytearray)):
            addr = (0, bytes(addr))  # may be another board's: a spoofing attacker (the broker refuses it)
        self.addr_type = addr[0]  # 0: public address present; 1: only a random static one
        self.public_addr = bytes(addr[1])
        if fs is None:
            from .flash import Flash

            fs = Flash()
        self.fs = fs
        self.nvs = {}  # namespace -> {key: (kind, value)}; committed data only
        self.pins = {}
        self.pos = pos if pos is not None else (float(len(world.boards)), 0.0)
        self.rng = random.Random(seed if seed is not None else "%s/%s" % (world.seed, name))
        self.powered = True
        self.boots = 1
        self._ble_cls = BLE
        self.ble = BLE(self)
        world.air.attach(self)

    # -- randomness (deterministic per board; the SMP engine and addresses use it)
    def urandom(self, n):
        return bytes(self.rng.getrandbits(8) for _ in range(n))

    # -- context
    def __enter__(self):
        _route_lib_files()
        _current.append(self)
        return self

    def __exit__(self, *exc):
        _current.pop()

    def call(self, fn, *args):
        """Runs fn(*args) with this board current (as its own code would run)."""
        with self:
            return fn(*args)

    def exec(self, source, filename="<board>", env=None):
        """Runs MicroPython source as this board's script (module namespace returned)."""
        g = {"__name__": "__main__", "__file__": filename}
        if env:
            g.update(env)
        code = compile(source, filename, "exec")
        with self:
            exec(code, g)
        return g

    # -- lifecycle
    def _lose_ram(self, why):
        self.world.air.board_down(self)
        self.ble._shutdown()
        self.world.trace.add("link", self.name, why)

    def reset(self):
        """Hard reset: RAM state lost, flash kept, BLE back to power-on defaults."""
        if self.powered:
            self._lose_ram("reset")
        self.fs.reset()
        self.boots += 1
        self.ble = self._ble_cls(self)
        self.world.air.board_up(self)

    def power_off(self):
        if not self.powered:
            return
        self._lose_ram("power_off")
        self.powered = False
        self.fs.power_off()

    def power_on(self):
        if self.powered:
            return
        self.powered = True
        self.fs.power_on()
        self.boots += 1
        self.ble = self._ble_cls(self)
        self.world.air.board_up(self)
        self.world.trace.add("link", self.name, "power_on")

    def unique_id(self):
        return bytes(self.public_addr)

    def __repr__(self):
        return "<Board %s %s>" % (self.name, self.public_addr.hex(":"))


class World:
    """A virtual clock, one air and any number of boards.

    profile: a firmware profile name or `firmware.Profile` (see `firmware.PROFILES`); each board
    may override it. seed: makes addresses, randoms and keys reproducible. trace: record
    everything into `self.trace` (see trace.py)."""

    def __init__(self, profile="esp32", seed=1, trace=True, install_time=True):
        from .firmware import get_profile

        self.profile = get_profile(profile)
        self.seed = seed
        self.now = 0.0
        self._q = []
        self._seq = 0
        self.boards = {}
        self._default = None
        self.trace = Trace(clock=lambda: self.now, enabled=trace)
        self.air = Air(self)
        self._depth = 0
        self._closed = False
        _worlds.append(weakref.ref(self))
        if install_time:
            install_time_functions()

    # -- boards
    def board(self, name=None, addr=None, profile=None, fs=None, pos=None, seed=None):
        if name is None:
            name = "board%d" % len(self.boards)
        if name in self.boards:
            raise ValueError("board %r exists" % name)
        from .firmware import get_profile

        b = Board(self, name, addr=addr, profile=get_profile(profile) if profile else None, fs=fs, pos=pos,
                  seed=seed)
        self.boards[name] = b
        if self._default is None:
            self._default = b
        return b

    def __getitem__(self, name):
        return self.boards[name]

    # -- radio environment
    def set_in_range(self, a, b, in_range=True):
        """Puts two boards in or out of radio range of each other (overrides distance)."""
        self.air.set_in_range(a, b, in_range)

    def move(self, board, pos):
        board.pos = pos
        self.air.positions_changed()

    # -- clock
    def schedule(self, delay, fn, *args):
        if delay < 0:
            delay = 0
        self._seq += 1
        t = Timer(self.now + delay, self._seq, fn, args)
        heapq.heappush(self._q, t)
        return t

    def at(self, when, fn, *args):
        return self.schedule(when - self.now, fn, *args)

    def next_time(self):
        while self._q and self._q[0].cancelled:
            heapq.heappop(self._q)
        return self._q[0].t if self._q else None

    def step(self, until=None):
        """Runs the next event (if due before `until`); returns False when none ran."""
        t = self.next_time()
        if t is None or (until is not None and t > until):
            return False
        ev = heapq.heappop(self._q)
        if ev.t > self.now:
            self.now = ev.t
        try:
            ev.fn(*ev.args)
        except BoardDown:
            pass
        return True

    def run(self, seconds=0.0):
        """Advances the clock by `seconds`, running every event due meanwhile."""
        end = self.now + seconds
        self._depth += 1
        try:
            while self.step(end):
                pass
        finally:
            self._depth -= 1
        if end > self.now:
            self.now = end

    def run_until(self, pred, timeout=10.0):
        """Runs events until pred() is true (checked after each event); returns pred()'s last
        value. Stops at `timeout` virtual seconds."""
        end = self.now + timeout
        if pred():
            return True
        self._depth += 1
        try:
            while True:
                if not self.step(end):
                    if end > self.now:
                        self.now = end
                    return bool(pred())
                if pred():
                    return True
        finally:
            self._depth -= 1

    def close(self):
        """This World stops driving time.ticks_* (the previous live one, if any, takes over)."""
        self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------- time.ticks_* and friends

_TICKS_PERIOD = 1 << 30  # MicroPython on 32-bit ports (MICROPY_PY_TIME_TICKS_PERIOD)
_TICKS_MAX = _TICKS_PERIOD - 1
_TICKS_HALF = _TICKS_PERIOD // 2


def _now():
    w = current_world()
    return w.now if w is not None else _time.monotonic()


def ticks_ms():
    return int(_now() * 1000) & _TICKS_MAX


def ticks_us():
    return int(_now() * 1000000) & _TICKS_MAX


def ticks_cpu():
    return ticks_us()


def ticks_add(ticks, delta):
    return (ticks + delta) & _TICKS_MAX


def ticks_diff(a, b):
    return ((a - b + _TICKS_HALF) & _TICKS_MAX) - _TICKS_HALF




def _sleep(seconds):
    w = current_world()
    if w is None:
        _time.sleep(seconds)
        return
    if irq_depth[0]:
        # inside an IRQ handler: on the board this blocks the NimBLE task; here it takes no
        # virtual time and delivers nothing (same as the one-process-per-board mode)
        return
    b = current_board()
    if b is not None:
        b.ble._run_scheduled()
    w.run(seconds)


def sleep_ms(ms):
    _sleep(ms / 1000.0)


def sleep_us(us):
    _sleep(us / 1000000.0)


def install_time_functions():
    for fn in (ticks_ms, ticks_us, ticks_cpu, ticks_add, ticks_diff, sleep_ms, sleep_us):
        setattr(_time, fn.__name__, fn)
