# blesmp's log of a failure it contained (a raising callback, agent or handler): one line naming
# what raised, then the traceback, all through print(), so that a test (or tools/mptest.py)
# captures it instead of letting it reach the terminal. Runs under pytest and tools/mptest.py.
import builtins

from blesmp import manager as M


def _logged(fn):
    lines = []
    orig = builtins.print

    def cap(*args, sep=" ", end="\n", file=None):
        lines.append(sep.join(str(a) for a in args))

    builtins.print = cap
    try:
        fn()
    finally:
        builtins.print = orig
    return "\n".join(lines)


def _raise():
    raise ValueError("callback bug")


def test_log_names_the_failure_and_its_exception():
    def go():
        try:
            _raise()
        except ValueError as e:
            M._log("callback raised on SEC_REQ", e)

    text = _logged(go)
    assert text.startswith("blesmp: callback raised on SEC_REQ\n"), text
    assert "ValueError: callback bug" in text, text


def test_log_without_an_exception_is_one_line():
    assert _logged(lambda: M._log("conn 0 cannot be tracked: disconnected")) == \
        "blesmp: conn 0 cannot be tracked: disconnected"
