"""Simulated flash filesystem for one board, with power-loss injection.

`Flash` offers the subset of `os` and builtin `open` that board code uses
(`open`, `rename`, `remove`, `stat`, `listdir`, `ilistdir`, `mkdir`, `rmdir`,
`getcwd`, `statvfs`), with MicroPython's error behaviour: every failure is an
`OSError` whose `args[0]` / `errno` is the errno number (2 ENOENT, 17 EEXIST,
21 EISDIR, 28 ENOSPC, ...).  Its contents live in the object, so they survive
a simulated reset (`reset()`), a power cycle (`power_off()` / `power_on()`) and
a new store object created over the same `Flash`.

    from tools.blesim.flash import Flash, PowerLoss
    fs = Flash()
    with fs.open("bonds.db", "wb") as f:
        f.write(b"...")
    fs.rename("bonds.db", "old.db"); fs.stat("old.db")[6]  # size

Board code that takes an `fs=` argument (e.g. `blesmp.store.BondStore`) uses it
directly; `fs.os` is a module-like view (`fs.os.listdir(...)`) for code that
wants `os` functions.

Write model (`model=`):

- ``"direct"`` (default, the pessimistic one, like FAT): every `write()` lands
  on flash at once; `open(path, "w")` truncates at once.  A crash in the
  middle of rewriting a file leaves it empty or half written.
- ``"littlefs"``: like LittleFS on ESP32, a file opened for writing is
  committed atomically at `close()`/`flush()`; until then readers see the old
  contents (a file created by that `open` exists, empty, from the `open`).

`rename` (atomic replace of an existing destination, as LittleFS does) and
`remove` are single operations in both models.  `replace=False` makes
`rename` onto an existing file fail with EEXIST, as FAT does.

Power-loss injection.  Every *mutating* operation is counted in `ops` (and per
kind in `counts`): ``open`` (for writing), ``write``, ``flush``, ``close`` (of
a writable file), ``rename``, ``remove``, ``mkdir``, ``rmdir``.
`cut_after(n, tear=False)` arms a power cut: the n-th mutating operation from
now completes (if it is a ``write`` and `tear` is true only the first half of
its bytes lands), then the power is off: that call and every later call on
the filesystem or on any open file raise `PowerLoss`.  `PowerLoss` derives from
`BaseException`, not `Exception`, so code under test cannot swallow it with
``except Exception`` (a real power cut stops the CPU; nothing runs after it).
`reset()` (or `power_on()`) restores power and drops every open handle; in the
"littlefs" model uncommitted data of those handles is lost.

Counting helpers: `ops`, `counts` (dict kind -> n), `bytes_written`,
`replaces` (renames over an existing file plus creations of a new file by
rename: the number of "file replaced" commits, i.e. flash writes as a store
sees them).  `mark()` returns a snapshot of the counters and
`since(mark)` the difference.  `snapshot()` / `restore(snap)` copy the whole
contents; `corrupt(path, offset, xor=0xFF)` and `truncate(path, size)` damage a
file for tests; `capacity=` makes writes past that many bytes in total fail
with ENOSPC.
"""

import errno

__all__ = ["Flash", "PowerLoss"]

_MUTATING = ("open", "write", "flush", "close", "rename", "remove", "mkdir", "rmdir")


class PowerLoss(BaseException):
    """The power was cut (raised by every filesystem call while it is off)."""


def _err(code):
    return OSError(code, errno.errorcode.get(code, str(code)))


def _norm(path):
    if not isinstance(path, str):
        raise TypeError("path must be str")
    parts = []
    for p in path.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if parts:
                parts.pop()
            continue
        parts.append(p)
    return "/".join(parts)


def _parent(path):
    return path.rsplit("/", 1)[0] if "/" in path else ""


class _OsView:
    """`os`-like functions of one Flash (`fs.os.listdir()`, ...)."""

    def __init__(self, fs):
        self._fs = fs
        for name in ("rename", "remove", "stat", "listdir", "ilistdir", "mkdir", "rmdir", "getcwd", "statvfs"):
            setattr(self, name, getattr(fs, name))


class _File:
    def __init__(self, fs, path, mode):
        self._fs = fs
        self._path = path
        self._text = "b" not in mode
        self._writable = mode[0] in "wa" or "+" in mode
        self._readable = mode[0] == "r" or "+" in mode
        self._closed = False
        self._gen = fs._gen
        base = fs._files.get(path, b"")
        if mode[0] == "w":
            base = b""
        self._buf = bytearray(base)  # what this handle sees
        self._pos = len(self._buf) if mode[0] == "a" else 0
        self._append = mode[0] == "a"

    # -- checks
    def _check(self):
        self._fs._alive()
        if self._gen != self._fs._gen:
            raise _err(errno.EBADF)  # handle from before a reset
        if self._closed:
            raise ValueError("I/O operation on closed file")

    # -- reading
    def read(self, n=-1):
        self._check()
        if not self._readable:
            raise _err(errno.EBADF)
        if self._fs.model == "direct" and not self._writable:
            self._buf = bytearray(self._fs._files.get(self._path, b""))
        end = len(self._buf) if n is None or n < 0 else min(len(self._buf), self._pos + n)
        data = bytes(self._buf[self._pos:end])
        self._pos = end
        return data.decode() if self._text else data

    def readinto(self, b):
        data = self.read(len(b))
        if self._text:
            data = data.encode()
        b[: len(data)] = data
        return len(data)

    def readline(self):
        self._check()
        i = self._buf.find(b"\n", self._pos)
        end = len(self._buf) if i < 0 else i + 1
        data = bytes(self._buf[self._pos:end])
        self._pos = end
        return data.decode() if self._text else data

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def seek(self, off, whence=0):
        self._check()
        base = (0, self._pos, len(self._buf))[whence]
        self._pos = max(0, base + off)
        return self._pos

    def tell(self):
        self._check()
        return self._pos

    # -- writing
    def write(self, data):
        self._check()
        if not self._writable:
            raise _err(errno.EBADF)
        if isinstance(data, str):
            if not self._text:
                raise TypeError("a bytes-like object is required")
            data = data.encode()
        data = bytes(data)
        fs = self._fs
        torn = fs._count("write")
        if torn:
            data = data[: len(data) // 2]
        if fs.capacity is not None and fs._used() + len(data) > fs.capacity:
            fs._after()
            raise _err(errno.ENOSPC)
        if self._append:
            self._pos = len(self._buf)
        if self._pos > len(self._buf):
            self._buf.extend(bytes(self._pos - len(self._buf)))
        self._buf[self._pos:self._pos + len(data)] = data
        self._pos += len(data)
        fs.bytes_written += len(data)
        if fs.model == "direct":
            fs._files[self._path] = bytes(self._buf)
        fs._after()
        return len(data)

    def flush(self):
        self._check()
        if self._writable:
            self._commit("flush")

    def _commit(self, kind):
        fs = self._fs
        fs._count(kind)
        if fs.model == "littlefs":
            fs._files[self._path] = bytes(self._buf)
        fs._after()

    def close(self):
        if self._closed:
            return
        if self._gen != self._fs._gen:
            self._closed = True
            return
        self._fs._alive()
        if self._writable:
            self._commit("close")
        self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is not None and issubclass(exc[0], PowerLoss):
            self._closed = True  # nothing runs after a power cut
            return False
        self.close()
        return False


class Flash:
    """A board's flash filesystem (see the module docstring)."""

    def __init__(self, model="direct", capacity=None, replace=True):
        if model not in ("direct", "littlefs"):
            raise ValueError("model")
        self.model = model
        self.capacity = capacity
        self.replace = replace
        self._files = {}  # path -> bytes (what is on flash)
        self._dirs = {""}
        self._gen = 0  # bumped by reset(): older handles are dead
        self.powered = True
        self._cut_in = None  # mutating ops left before the cut
        self._tear = False
        self._pending_cut = False
        self.ops = 0
        self.counts = dict((k, 0) for k in _MUTATING)
        self.bytes_written = 0
        self.replaces = 0
        self.os = _OsView(self)

    # ------------------------------------------------------------ power
    def cut_after(self, n, tear=False):
        """Cut the power right after the n-th mutating operation from now (n >= 1)."""
        if n < 1:
            raise ValueError("n >= 1")
        self._cut_in = n
        self._tear = tear

    def disarm(self):
        self._cut_in = None

    def power_off(self):
        self.powered = False
        self._cut_in = None

    def power_on(self):
        self.powered = True
        self._cut_in = None
        self._pending_cut = False
        self._gen += 1

    def reset(self):
        """A simulated reset or power cycle: power on, every open handle dropped."""
        self.power_on()

    def _alive(self):
        if not self.powered:
            raise PowerLoss("power is off")

    def _count(self, kind):
        """Counts one mutating op; returns True if a write must be torn."""
        self._alive()
        self.ops += 1
        self.counts[kind] += 1
        if self._cut_in is not None:
            self._cut_in -= 1
            if self._cut_in == 0:
                self._cut_in = None
                self._pending_cut = True
                return self._tear and kind == "write"
        return False

    def _after(self):
        if self._pending_cut:
            self._pending_cut = False
            self.powered = False
            raise PowerLoss("power cut after operation %d" % self.ops)

    # ------------------------------------------------------------ counters
    def mark(self):
        m = dict(self.counts)
        m["ops"] = self.ops
        m["bytes_written"] = self.bytes_written
        m["replaces"] = self.replaces
        return m

    def since(self, mark):
        now = self.mark()
        return dict((k, now[k] - mark.get(k, 0)) for k in now)

    # ------------------------------------------------------------ contents
    def snapshot(self):
        return (dict(self._files), set(self._dirs))

    def restore(self, snap):
        self._files = dict(snap[0])
        self._dirs = set(snap[1])
        self.power_on()

    def read_bytes(self, path):
        """Test helper: the bytes of a file as they are on flash (no counting)."""
        p = _norm(path)
        if p not in self._files:
            raise _err(errno.ENOENT)
        return self._files[p]

    def write_bytes(self, path, data):
        """Test helper: put a file on flash without counting or power checks."""
        p = _norm(path)
        if _parent(p) not in self._dirs:
            raise _err(errno.ENOENT)
        self._files[p] = bytes(data)

    def corrupt(self, path, offset, xor=0xFF):
        p = _norm(path)
        b = bytearray(self._files[p])
        b[offset] ^= xor
        self._files[p] = bytes(b)

    def truncate(self, path, size):
        p = _norm(path)
        self._files[p] = self._files[p][:size]

    def exists(self, path):
        p = _norm(path)
        return p in self._files or p in self._dirs

    def _used(self):
        return sum(len(v) for v in self._files.values())

    # ------------------------------------------------------------ os API
    def open(self, path, mode="r"):
        self._alive()
        if not mode or mode[0] not in "rwa" or any(c not in "rwab+t" for c in mode):
            raise ValueError("invalid mode")
        p = _norm(path)
        if p in self._dirs:
            raise _err(errno.EISDIR)
        if _parent(p) not in self._dirs:
            raise _err(errno.ENOENT)
        if mode[0] == "r":
            if p not in self._files:
                raise _err(errno.ENOENT)
            return _File(self, p, mode)
        self._count("open")
        f = _File(self, p, mode)
        if p not in self._files or mode[0] == "w":
            if p not in self._files or self.model == "direct":
                self._files[p] = b""  # created (or, direct model: truncated) now
        self._after()
        return f

    def rename(self, old, new):
        self._alive()
        a, b = _norm(old), _norm(new)
        if a not in self._files and a not in self._dirs:
            raise _err(errno.ENOENT)
        if _parent(b) not in self._dirs:
            raise _err(errno.ENOENT)
        if b in self._dirs:
            raise _err(errno.EISDIR if a in self._files else errno.EEXIST)
        if b in self._files and not self.replace:
            raise _err(errno.EEXIST)
        self._count("rename")
        if a in self._files:
            self._files[b] = self._files.pop(a)
            self.replaces += 1
        else:
            self._dirs.discard(a)
            self._dirs.add(b)
            for k in [k for k in self._files if k.startswith(a + "/")]:
                self._files[b + k[len(a):]] = self._files.pop(k)
        self._after()

    def remove(self, path):
        self._alive()
        p = _norm(path)
        if p in self._dirs:
            raise _err(errno.EISDIR)
        if p not in self._files:
            raise _err(errno.ENOENT)
        self._count("remove")
        del self._files[p]
        self._after()

    def mkdir(self, path):
        self._alive()
        p = _norm(path)
        if p in self._dirs or p in self._files:
            raise _err(errno.EEXIST)
        if _parent(p) not in self._dirs:
            raise _err(errno.ENOENT)
        self._count("mkdir")
        self._dirs.add(p)
        self._after()

    def rmdir(self, path):
        self._alive()
        p = _norm(path)
        if p not in self._dirs or p == "":
            raise _err(errno.ENOENT)
        if any(_parent(k) == p for k in list(self._files) + list(self._dirs)):
            raise _err(errno.ENOTEMPTY)
        self._count("rmdir")
        self._dirs.discard(p)
        self._after()

    def stat(self, path):
        self._alive()
        p = _norm(path)
        if p in self._dirs:
            return (0x4000, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        if p in self._files:
            return (0x8000, 0, 0, 0, 0, 0, len(self._files[p]), 0, 0, 0)
        raise _err(errno.ENOENT)

    def listdir(self, path=""):
        return [e[0] for e in self.ilistdir(path)]

    def ilistdir(self, path=""):
        self._alive()
        p = _norm(path)
        if p not in self._dirs:
            raise _err(errno.ENOENT)
        out = []
        for d in sorted(self._dirs):
            if d and _parent(d) == p:
                out.append((d.rsplit("/", 1)[-1], 0x4000, 0, 0))
        for k in sorted(self._files):
            if _parent(k) == p:
                out.append((k.rsplit("/", 1)[-1], 0x8000, 0, len(self._files[k])))
        return out

    def getcwd(self):
        return "/"

    def statvfs(self, path=""):
        self._alive()
        bsize = 4096
        total = (self.capacity or (1 << 20)) // bsize
        free = max(0, total - (self._used() + bsize - 1) // bsize)
        return (bsize, bsize, total, free, free, 0, 0, 0, 0, 255)
