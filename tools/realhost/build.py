"""Build the real-host interpreters: MicroPython's unix port with the real NimBLE host.

    python -m tools.realhost.build [esp|mynewt|all] [--force] [--print]    (or: make nimble)

Two hosts, the same MicroPython v1.28.0 tree and binding (extmod/modbluetooth.c,
extmod/nimble/modbluetooth_nimble.c, what ESP32 firmware runs):
- "mynewt": MicroPython's own unix configuration of its pinned mynewt-nimble, built exactly as
  MicroPython builds it.
- "esp": Espressif's esp-nimble (the host ESP32 firmware is built with) with ESP32's security
  configuration, through our glue in tools/realhost/espnimble/ (no change to esp-nimble).

Sources (reference/real-nimble.md): by default the tarballs in `<repo>/../shared/thirdparty`
(or the folder `BLESMP_THIRDPARTY` names); or checkouts: `MPY_SRC` = a MicroPython v1.28.0
checkout with its submodules, `ESP_NIMBLE_SRC` = an esp-nimble checkout. Nothing is written
into them: each build copies what it needs into a temporary folder.

Binaries are cached by a hash of (source identity, our glue, build flags, compiler) in
`$BLESMP_REALHOST_CACHE` (default `${XDG_CACHE_HOME:-~/.cache}/blesmp/realhost`), as
`<host>-<hash>/micropython`. A build runs in a temporary folder beside the cache and is
moved into place in one rename; a lock file makes a second builder of the same key wait and
reuse the first one's result.
"""

import argparse
import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

from tools import thirdparty

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GLUE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "espnimble")
HOSTS = ("esp", "mynewt")
MPY_TARBALL = "micropython-nimble-unix/micropython-v1.28.0-nimble-unix.tar.xz"
ESP_TARBALL = "esp-nimble/esp-nimble-32b2124f-host.tar.xz"
# MicroPython's unix build line for NimBLE (reference/real-nimble.md).
MAKE_FLAGS = (
    "MICROPY_PY_BLUETOOTH=1",
    "MICROPY_BLUETOOTH_NIMBLE=1",
    "MICROPY_PY_FFI=0",
    "MICROPY_PY_BTREE=0",
    "MICROPY_PY_SSL=0",
    "FROZEN_MANIFEST=",
)
# What a unix build with the flags above reads of a MicroPython checkout.
MPY_PARTS = ("LICENSE", "py", "extmod", "shared", "ports/unix", "lib/crypto-algorithms", "lib/littlefs",
             "lib/mynewt-nimble", "lib/oofatfs", "lib/re1.5", "lib/uzlib")
ESP_PARTS = ("LICENSE", "NOTICE", "nimble", "porting", "ext")
HINT = ("set MPY_SRC=<MicroPython v1.28.0 checkout with submodules> (and ESP_NIMBLE_SRC=<esp-nimble checkout> "
        "for the esp host), or BLESMP_THIRDPARTY=<folder with the tarballs>, or put ../shared/thirdparty beside "
        "the checkout")
LOG_TAIL = 12


class BuildError(Exception):
    """A real-host interpreter cannot be had; the first line of str() says why and what to do."""

    def __init__(self, message, log=None):
        super().__init__(message)
        self.log = log


class SourcesMissing(BuildError):
    """The sources are not on this machine: the real-host tier is skipped."""


def _default_thirdparty():
    """`BLESMP_THIRDPARTY`, else `../shared/thirdparty` beside the checkout (tools/thirdparty.py:
    for a git worktree, beside its main checkout)."""
    given = os.environ.get("BLESMP_THIRDPARTY")
    if given:
        return given
    shared = thirdparty.shared_dir()
    return os.path.join(shared or os.path.join(os.path.dirname(ROOT), "shared"), "thirdparty")


def cache_root():
    given = os.environ.get("BLESMP_REALHOST_CACHE")
    if given:
        return os.path.abspath(given)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "blesmp", "realhost")


class Source:
    """One input tree: a tarball (unpacked at build time) or a checkout (copied in parts)."""

    def __init__(self, kind, path, parts):
        self.kind = kind  # "tarball" | "checkout"
        self.path = path
        self.parts = parts
        self._digest = None

    def digest(self):
        if self._digest is None:
            h = hashlib.sha256()
            if self.kind == "tarball":
                with open(self.path, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
            else:
                _hash_tree(h, self.path, self.parts)
            self._digest = h.hexdigest()
        return self._digest

    def materialize(self, dest):
        """Put the tree at `dest` (a new folder), writable."""
        if self.kind == "tarball":
            tmp = dest + ".unpack"
            os.makedirs(tmp)
            with tarfile.open(self.path) as tf:
                tf.extractall(tmp, filter="data")
            tops = os.listdir(tmp)
            if len(tops) != 1:
                raise BuildError("%s: expected one top folder in the tarball, found %d" % (self.path, len(tops)))
            os.rename(os.path.join(tmp, tops[0]), dest)
            os.rmdir(tmp)
        else:
            os.makedirs(dest)
            for part in self.parts:
                src = os.path.join(self.path, part)
                if os.path.isdir(src):
                    shutil.copytree(src, os.path.join(dest, part), symlinks=True, ignore=_ignore_build)
                elif os.path.exists(src):
                    os.makedirs(os.path.dirname(os.path.join(dest, part)), exist_ok=True)
                    shutil.copy2(src, os.path.join(dest, part))
        _make_writable(dest)

    def __repr__(self):
        return "%s %s" % (self.kind, self.path)


def _ignore_build(folder, names):
    return [n for n in names if n == ".git" or n.startswith("build-") or n == "__pycache__"]


def _hash_tree(h, top, parts):
    for part in parts:
        base = os.path.join(top, part)
        if os.path.isfile(base):
            _hash_file(h, part, base)
            continue
        for folder, dirs, files in os.walk(base):
            dirs[:] = sorted(d for d in dirs if d not in _ignore_build(folder, dirs))
            for name in sorted(files):
                full = os.path.join(folder, name)
                _hash_file(h, os.path.relpath(full, top), full)


def _hash_file(h, rel, full):
    h.update(rel.encode() + b"\0")
    if os.path.islink(full):
        h.update(b"L" + os.readlink(full).encode())
    else:
        with open(full, "rb") as f:
            h.update(f.read())
    h.update(b"\0")


def _make_writable(top):
    for folder, dirs, files in os.walk(top):
        for name in dirs + files:
            p = os.path.join(folder, name)
            if not os.path.islink(p):
                os.chmod(p, os.stat(p).st_mode | 0o200)
    os.chmod(top, os.stat(top).st_mode | 0o200)


def _checkout(var, marker, parts, what):
    path = os.path.abspath(os.environ[var])
    if not os.path.isdir(path):
        raise SourcesMissing("real-host tier skipped: %s=%s is not a folder; %s" % (var, path, HINT))
    if not os.path.exists(os.path.join(path, marker)):
        raise SourcesMissing("real-host tier skipped: %s=%s is not %s (no %s); %s" % (var, path, what, marker, HINT))
    return Source("checkout", path, parts)


def _tarball(rel):
    path = os.path.join(_default_thirdparty(), rel)
    if not os.path.isfile(path):
        raise SourcesMissing("real-host tier skipped: no %s; %s" % (path, HINT))
    return Source("tarball", path, ())


def sources(host):
    """The (MicroPython, esp-nimble or None) sources for `host`; SourcesMissing if absent."""
    check_host(host)
    if os.environ.get("MPY_SRC"):
        mpy = _checkout("MPY_SRC", "lib/mynewt-nimble/nimble/host/src/ble_sm.c", MPY_PARTS,
                        "a MicroPython checkout with its submodules")
    else:
        mpy = _tarball(MPY_TARBALL)
    esp = None
    if host == "esp":
        if os.environ.get("ESP_NIMBLE_SRC"):
            esp = _checkout("ESP_NIMBLE_SRC", "nimble/transport/uart_ll/src/hci_uart.c", ESP_PARTS,
                            "an esp-nimble (1.6, ESP-IDF v5.x) checkout")
        else:
            esp = _tarball(ESP_TARBALL)
    return mpy, esp


def check_host(host):
    if host not in HOSTS:
        raise ValueError("unknown real host %r: pick one of %s" % (host, ", ".join(HOSTS)))
    return host


def _compiler_id():
    try:
        out = subprocess.run(["cc", "--version"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return "no cc"
    return out.splitlines()[0] if out else "cc"


def build_key(host, srcs=None):
    """The cache key of `host`'s interpreter: sources, glue, flags, compiler."""
    mpy, esp = srcs or sources(host)
    h = hashlib.sha256()
    h.update(("blesmp-realhost-1 %s\n" % host).encode())
    h.update(mpy.digest().encode())
    if esp is not None:
        h.update(esp.digest().encode())
        _hash_tree(h, GLUE_DIR, sorted(os.listdir(GLUE_DIR)))
    h.update(" ".join(MAKE_FLAGS).encode())
    h.update(_compiler_id().encode())
    return "%s-%s" % (host, h.hexdigest()[:16])


def cached(host):
    """Path of `host`'s interpreter if it is already built for the current sources, else None."""
    path = os.path.join(cache_root(), build_key(host), "micropython")
    return path if os.access(path, os.X_OK) else None


def interpreter(host, force=False, quiet=True):
    """Path of `host`'s real-host MicroPython ("esp" or "mynewt"), built on first use.

    Raises SourcesMissing (sources absent: skip the tier) or BuildError (the build failed;
    .log is the compiler log)."""
    srcs = sources(host)
    key = build_key(host, srcs)
    root = cache_root()
    final = os.path.join(root, key)
    exe = os.path.join(final, "micropython")
    if not force and os.access(exe, os.X_OK):
        return exe
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as e:
        raise BuildError("cannot create the real-host cache %s (%s): set BLESMP_REALHOST_CACHE to a writable folder"
                         % (root, e.strerror)) from None
    with _locked(os.path.join(root, key + ".lock")):
        if not force and os.access(exe, os.X_OK):
            return exe  # another process built it while we waited
        work = tempfile.mkdtemp(prefix=key + ".tmp-", dir=root)
        try:
            binary, log = _build(host, srcs, work, quiet)
            staged = os.path.join(work, "out")
            os.makedirs(staged)
            shutil.copy2(binary, os.path.join(staged, "micropython"))
            shutil.copy2(log, os.path.join(staged, "build.log"))
            if os.path.isdir(final):  # --force: replace the old one
                old = final + ".old-%d" % os.getpid()
                os.rename(final, old)
                shutil.rmtree(old, ignore_errors=True)
            os.rename(staged, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return exe


@contextlib.contextmanager
def _locked(path):
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _build(host, srcs, work, quiet):
    """Assemble the tree in `work` and compile; returns (binary, log)."""
    mpy, esp = srcs
    top = os.path.join(work, "micropython")
    mpy.materialize(top)
    if esp is not None:
        esp.materialize(os.path.join(top, "lib", "esp-nimble"))
        shutil.copytree(GLUE_DIR, os.path.join(top, "lib", "blesmp-espnimble"))
        shutil.copy2(os.path.join(GLUE_DIR, "nimble.mk"), os.path.join(top, "extmod", "nimble", "nimble.mk"))
    log = os.path.join(work, "build.log")
    return _compile(host, top, log, quiet), log


def _compile(host, top, log, quiet, extra=()):
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    cmd = ["make", "-C", os.path.join(top, "ports", "unix"), "-j%d" % max(1, min(os.cpu_count() or 1, 4))]
    cmd += list(MAKE_FLAGS) + list(extra)
    if not quiet:
        print("building the %s real-host interpreter (about 30-70 s)..." % host, file=sys.stderr, flush=True)
    with open(log, "w") as f:
        try:
            rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, check=False).returncode
        except OSError as e:
            raise BuildError("cannot run make (%s): install make and a C compiler (gcc)" % e.strerror) from None
    binary = os.path.join(top, "ports", "unix", "build-standard", "micropython")
    if rc != 0 or not os.access(binary, os.X_OK):
        kept = _keep_log(host, log)
        tail = _log_tail(log)
        first = next((ln for ln in tail if "error" in ln.lower()), tail[-1] if tail else "no output")
        raise BuildError("building the %s real-host interpreter failed: %s (full log: %s)\n%s"
                         % (host, first.strip(), kept, "\n".join(tail)), log=kept)
    return binary


def _log_tail(log):
    with open(log, errors="replace") as f:
        lines = [ln.rstrip("\n") for ln in f if ln.strip()]
    return lines[-LOG_TAIL:]


def _keep_log(host, log):
    """Move a failed build's log out of the doomed temporary folder, beside the cache."""
    dest = os.path.join(cache_root(), "%s-failed.log" % host)
    try:
        shutil.copyfile(log, dest)
    except OSError:
        return log
    return dest


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("host", nargs="?", default="all", choices=HOSTS + ("all",))
    ap.add_argument("--force", action="store_true", help="rebuild even if cached")
    ap.add_argument("--print", action="store_true", help="print only the interpreter path(s)")
    args = ap.parse_args(argv)
    hosts = HOSTS if args.host == "all" else (args.host,)
    for host in hosts:
        try:
            was = None if args.force else cached(host)
            exe = interpreter(host, force=args.force, quiet=args.print)
        except BuildError as e:
            print(str(e), file=sys.stderr)
            return 2
        if args.print:
            print(exe)
        else:
            print("%-6s %s (%s)" % (host, exe, "cached" if was else "built"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
