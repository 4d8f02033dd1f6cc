"""The `multitest` helper that tools/multitest.py appends to each instance's script: upstream
run-multitests.py's semantics (our code), written once. A backend (the simulator's broker in
tools/multitest.py, the real host in tools/realhost/mtair.py) supplies only its IO: `script()`'s
arguments, each the source of a function body.

The result still has the `{globals}` and `{idx}` fields the runner fills with str.format. A leaf
module: the runner and both backends import it.
"""

import textwrap

_HEAD = """
import sys
"""

_CLASS = """

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
        multitest._go()

    @staticmethod
    def broadcast(msg):
        multitest._hold()
        print("BROADCAST", msg)
        multitest.flush()

    @staticmethod
    def wait(msg):
        msg = "BROADCAST " + msg
        while True:
            line = multitest._readline()
            if not line or line.rstrip() == msg:
                multitest._waited()
                return

    @staticmethod
    def globals(**gs):
        for g in gs:
            print("SET {} = {!r}".format(g, gs[g]))
        multitest.flush()

    @staticmethod
    def expect_reboot(resume, delay_ms=0):
        print("WAIT_FOR_REBOOT", resume, delay_ms)
        multitest.flush()

    @staticmethod
    def output_metric(data):
        print("OUTPUT_METRIC", data)
        multitest.flush()
"""

# filled by the runner (str.format): the SET globals collected so far, the entry function
_TAIL = """

{globals}
instance{idx}()
multitest.flush()
"""


def script(prelude="", go="pass", hold="pass", readline="return sys.stdin.readline()", waited="pass"):
    """The text appended to each instance. `prelude`: module-level code run first (after `import
    sys`); the bodies of the class's IO methods: `go` runs after NEXT is printed (the simulator
    waits there for the runner's go-ahead), `hold` before a BROADCAST line is printed, `readline`
    returns a line of stdin ("" at its end) for `wait()`, `waited` runs once `wait()` has seen its
    broadcast (or the end of stdin)."""
    io = ""
    for name, body in (("_go", go), ("_hold", hold), ("_readline", readline), ("_waited", waited)):
        body = textwrap.indent(textwrap.dedent(body).strip() + "\n", " " * 8)
        io += "\n    @staticmethod\n    def %s():\n%s" % (name, body)
    text = _HEAD + textwrap.dedent(prelude) + _CLASS + io
    # only the tail's fields are the runner's: escape the braces of everything above it
    return text.replace("{", "{{").replace("}", "}}") + _TAIL
