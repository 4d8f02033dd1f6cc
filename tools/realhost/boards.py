"""Board processes on the real host: which interpreter, and the environment a board runs in.

A board is MicroPython's unix port built with NimBLE (`tools/realhost/build.py` builds and
caches one per host: "esp" = esp-nimble with ESP32's configuration, "mynewt" = MicroPython's
own unix configuration), talking HCI to its radio over `MICROPYBTUART`, with lib/ and the
script's folder on its module path and its flash a folder (the working directory).
"""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIB_DIR = os.path.join(ROOT, "lib")
SHIM_DIR = os.path.join(ROOT, "tools", "realhost", "board")  # what an ESP32 has and the unix port lacks
HOSTS = ("esp", "mynewt")
DEFAULT_HOST = "esp"


class Unavailable(Exception):
    """No real-host interpreter; str() is one line that says what to do. `missing`: the sources
    are absent (the tier is skipped), else a build failed (an error)."""

    def __init__(self, message, missing=True):
        super().__init__(message)
        self.missing = missing


def check_host(host):
    if host not in HOSTS:
        raise ValueError("unknown real host %r: pick one of %s" % (host, ", ".join(HOSTS)))
    return host


def interpreter(host=DEFAULT_HOST):
    """Path of the real-host MicroPython for `host`; `BLESMP_NIMBLE_<HOST>` (a built binary)
    overrides the cached build. Raises Unavailable with one line when there is none."""
    check_host(host)
    given = os.environ.get("BLESMP_NIMBLE_" + host.upper())
    if given:
        if not os.access(given, os.X_OK):
            raise Unavailable("BLESMP_NIMBLE_%s=%s is not an executable file" % (host.upper(), given))
        return given
    from tools.realhost import build

    try:
        return build.interpreter(host)
    except build.BuildError as e:  # absent sources or a failed compile: its first line says what to do
        raise Unavailable(str(e).splitlines()[0], isinstance(e, build.SourcesMissing)) from None


def board_env(pty, extra_path=(), base=None):
    """The environment of a board process on radio `pty`: lib/ and `extra_path` importable."""
    env = dict(os.environ if base is None else base)
    env["MICROPYBTUART"] = pty
    env["MICROPYPATH"] = os.pathsep.join([os.path.abspath(p) for p in extra_path] + [SHIM_DIR, LIB_DIR, ".frozen"])
    for k in ("BLESIM_BROKER", "BLESIM_BOARD", "BLESIM_OPTS", "BLESIM_PATH"):
        env.pop(k, None)
    return env


def board_command(exe, script, args=(), heapsize=None):
    argv = [exe]
    if heapsize:
        argv += ["-X", "heapsize=%s" % heapsize]
    return argv + [os.path.abspath(script)] + list(args)
