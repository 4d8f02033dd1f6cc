# A stand-in board for testing the host tools: runs under the REAL MicroPython
# interpreter (the unix port), with its stdin/stdout on the master side of a
# pseudo-terminal, and speaks the serial protocol of MicroPython's REPL
# (shared/runtime/pyexec.c) so that an unmodified `mpremote connect /dev/pts/N`
# can drive it:
#   friendly REPL  ">>> " prompt, echo, Ctrl-A raw REPL, Ctrl-D soft reset
#   raw REPL       "raw REPL; CTRL-B to exit\r\n>", code until Ctrl-D, "OK",
#                  stdout, \x04, stderr, \x04, ">"; an empty command = soft reset
#   raw paste      "\x05A\x01" -> "R\x01" + window (u16 LE), "\x01" per window,
#                  \x04 ends the data and is echoed back
# Its flash is a host directory mounted at "/" (os.VfsPosix), so paths are the
# board's own ("/lib", "main.py"); sys.path is the ESP32 one. A soft reset runs
# boot.py; `machine.reset()` (a hard reset) runs boot.py then main.py and is
# written to the log file, as are soft resets, so a test can see them.
#
#   micropython fakeboard.py FLASH_DIR LOG_FILE
import os
import sys

FLASH, LOG = sys.argv[1], sys.argv[2]
WINDOW = 128
_in = sys.stdin.buffer
_out = sys.stdout.buffer

_logf = open(LOG, "a")  # opened before the host root is replaced by the flash
os.umount("/")
os.mount(os.VfsPosix(FLASH), "/")
os.chdir("/")
sys.path[:] = ["", ".frozen", "/lib"]
_BASE_MODULES = set(sys.modules)


class _HardReset(Exception):
    pass


class _Machine:
    @staticmethod
    def reset():
        raise _HardReset()

    @staticmethod
    def soft_reset():
        raise SystemExit()

    @staticmethod
    def idle():
        pass


def log(msg):
    _logf.write(msg + "\n")
    _logf.flush()


def w(data):
    if isinstance(data, str):
        data = data.encode()
    _out.write(data)


def rd():
    b = _in.read(1)
    if not b:
        raise SystemExit  # the host closed the terminal
    return b[0]


def fresh_globals():
    for name in list(sys.modules):
        if name not in _BASE_MODULES:
            del sys.modules[name]
    sys.modules["machine"] = _Machine
    return {"__name__": "__main__"}


def run_file(g, path):
    try:
        os.stat(path)
    except OSError:
        return
    try:
        with open(path) as f:
            src = f.read()
        exec(compile(src, path, "exec"), g)
    except _HardReset:
        raise
    except BaseException as e:  # noqa: BLE001 (a board prints and carries on)
        sys.print_exception(e, sys.stdout)


def execute(g, src):
    """Runs one raw-REPL command; returns True if it asked for a hard reset."""
    try:
        exec(compile(src, "<stdin>", "exec"), g)
    except _HardReset:
        return True
    except SystemExit:
        pass
    except BaseException as e:  # noqa: BLE001
        w(b"\x04")
        sys.print_exception(e, sys.stdout)
        w(b"\x04")
        return False
    w(b"\x04\x04")
    return False


def raw_paste():
    w(b"R\x01")
    w(bytes((WINDOW & 0xFF, WINDOW >> 8)))
    data = bytearray()
    got = 0
    while True:
        c = rd()
        if c == 4:
            w(b"\x04")
            return bytes(data)
        data.append(c)
        got += 1
        if got == WINDOW:
            got = 0
            w(b"\x01")


def raw_repl(g):
    """Returns "friendly", "soft" or "hard"."""
    w("raw REPL; CTRL-B to exit\r\n")
    while True:
        w(">")
        line = bytearray()
        while True:
            c = rd()
            if c == 1:
                if len(line) == 2 and line[0] == 5:
                    if line[1] == ord("A"):
                        src = raw_paste()
                        if execute(g, src.decode()):
                            return "hard"
                        break
                    w(b"R\x00")
                    line = bytearray()
                    continue
                w("raw REPL; CTRL-B to exit\r\n")
                line = bytearray()
                w(">")
                continue
            if c == 2:
                w("\r\n")
                return "friendly"
            if c == 3:
                line = bytearray()
                continue
            if c == 4:
                w("OK")
                if not line:
                    w("\r\n")
                    return "soft"
                if execute(g, line.decode()):
                    return "hard"
                break
            line.append(c)


def friendly_repl(g):
    w("MicroPython fakeboard; blesmp host-tools test board\r\n>>> ")
    line = bytearray()
    while True:
        c = rd()
        if c == 1:
            w("\r\n")
            return "raw"
        if c == 2:
            w("\r\nMicroPython fakeboard\r\n>>> ")
            line = bytearray()
        elif c == 3:
            w("\r\nKeyboardInterrupt\r\n>>> ")
            line = bytearray()
        elif c == 4:
            if not line:
                w("\r\n")
                return "soft"
        elif c == 13:
            w("\r\n")
            src = line.decode()
            line = bytearray()
            if src.strip():
                try:
                    try:
                        code = compile(src, "<stdin>", "eval")
                    except SyntaxError:
                        exec(compile(src, "<stdin>", "exec"), g)
                    else:
                        r = eval(code, g)
                        if r is not None:
                            print(repr(r))
                except _HardReset:
                    return "hard"
                except BaseException as e:  # noqa: BLE001
                    sys.print_exception(e, sys.stdout)
            w(">>> ")
        elif c != 10:
            line.append(c)
            w(bytes((c,)))


def main():
    mode = "friendly"
    boot = "hard"
    g = None
    while True:
        if boot:
            g = fresh_globals()
            log(boot + " reset")
            if boot == "soft":
                w("MPY: soft reboot\r\n")
            try:
                run_file(g, "boot.py")
                if boot == "hard" or mode == "friendly":
                    # main.py runs only when the board is not held in the raw REPL
                    if mode == "friendly":
                        run_file(g, "main.py")
            except _HardReset:
                boot = "hard"
                mode = "friendly"
                continue
            boot = None
        if mode == "friendly":
            r = friendly_repl(g)
        else:
            r = raw_repl(g)
        if r == "raw":
            mode = "raw"
        elif r == "friendly":
            mode = "friendly"
        elif r == "soft":
            boot = "soft"
        elif r == "hard":
            boot = "hard"
            mode = "friendly"


main()
