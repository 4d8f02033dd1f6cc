"""The real-host backend of tools/multitest.py: every instance a real-host MicroPython process
on its own radio (`--nimble`).

Upstream's runner semantics hold as they are: `multitest.next()` only prints NEXT (the
runner then starts the next instance), `wait()` reads stdin for the broadcast, and the
board runs in real time: there is no virtual clock to hold.
"""

import os

from tools import mtshim
from tools.realhost import boards
from tools.realhost.radios import Radios

# The `multitest` helper appended to each instance (tools/mtshim.py); the real host's IO: next()
# and broadcast() only print, as upstream's do.
APPEND = mtshim.script(
    # The unix port runs NimBLE from MicroPython's scheduler, which a blocking read of stdin
    # would stop (on a board the host runs in its own task): poll, and sleep 1 ms.
    readline="""
        import select
        import time

        p = select.poll()
        p.register(sys.stdin, select.POLLIN)
        while not p.poll(0):
            time.sleep_ms(1)
        return sys.stdin.readline()
    """,
    # what reached the radio before the broadcast has been handled by a board's host task by
    # now: give the scheduler a few polls to catch up likewise
    waited="""
        import time

        time.sleep_ms(5)
    """,
)


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
