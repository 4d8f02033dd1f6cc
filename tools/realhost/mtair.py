"""The real-host backend of tools/multitest.py: every instance a real-host MicroPython process
on its own radio (`--nimble`).

Upstream's runner semantics hold as they are: `multitest.next()` only prints NEXT (the
runner then starts the next instance), `wait()` reads stdin for the broadcast, and the
board runs in real time: there is no virtual clock to hold.
"""

import os

from tools.realhost import boards
from tools.realhost.radios import Radios

# The `multitest` helper appended to each instance (upstream's semantics, our code).
APPEND = """
import sys


class multitest:
    @staticmethod
    def flush():
        try:
            sys.stdout.flush()
        except AttributeError:
            pass

    @staticmethod
    def skip():
        print("SKIP")
        multitest.flush()
        raise SystemExit

    @staticmethod
    def next():
        print("NEXT")
        multitest.flush()

    @staticmethod
    def broadcast(msg):
        print("BROADCAST", msg)
        multitest.flush()

    @staticmethod
    def wait(msg):
        # The unix port runs NimBLE from MicroPython's scheduler, which a blocking read of
        # stdin would stop (on a board the host runs in its own task): poll, and sleep 1 ms.
        import select
        import time

        msg = "BROADCAST " + msg
        p = select.poll()
        p.register(sys.stdin, select.POLLIN)
        while True:
            if not p.poll(0):
                time.sleep_ms(1)
                continue
            line = sys.stdin.readline()
            if not line or line.rstrip() == msg:
                # what reached the radio before the broadcast has been handled by a board's
                # host task by now: give the scheduler a few polls to catch up likewise
                time.sleep_ms(5)
                return

    @staticmethod
    def globals(**gs):
        for g in gs:
            print("SET {{}} = {{!r}}".format(g, gs[g]))
        multitest.flush()

    @staticmethod
    def expect_reboot(resume, delay_ms=0):
        print("WAIT_FOR_REBOOT", resume, delay_ms)
        multitest.flush()

    @staticmethod
    def output_metric(data):
        print("OUTPUT_METRIC", data)
        multitest.flush()


{globals}
instance{idx}()
multitest.flush()
"""


class NimbleAir:
    """One test's radios (one per instance) and how its instance processes start."""

    append = APPEND

    def __init__(self, n, host=boards.DEFAULT_HOST, btsnoop=None, workdir=None):
        self.host = host
        self.exe = boards.interpreter(host)
        self.radios = Radios(["instance%d" % i for i in range(n)], btsnoop=btsnoop).start()

    def expect(self, name):
        # the board is about to (re)start: its radio must have seen the last process go
        self.radios.wait_down(name)

    def unexpect(self, name):
        pass

    def command(self, script, name, interp, idx, path):
        return boards.board_command(self.exe, script), boards.board_env(self.radios.pty(name), path)

    def after_next(self, inst):
        pass  # upstream's next() does not wait for a go-ahead

    def label(self, interp):
        return "nimble-" + self.host

    def close(self):
        self.radios.close()


def make(host=boards.DEFAULT_HOST, btsnoop=None):
    """The backend factory for multitest.run_test(air=...): each test on `host`, its HCI traffic
    in btsnoop/<test>/instanceN.btsnoop when `btsnoop` names a folder."""
    boards.check_host(host)

    def factory(n, workdir, path):
        snoop = os.path.join(btsnoop, os.path.splitext(os.path.basename(path))[0]) if btsnoop else None
        return NimbleAir(n, host, snoop, workdir)
    return factory
