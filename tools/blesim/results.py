"""What a run of board processes gives back (the simulator's run_boards and the real host's
runner alike): one BoardResult per board, and the line pump that collects their output. A leaf
module, so that neither runner imports the other."""


class BoardResult:
    def __init__(self, name, rc, lines):
        self.name = name
        self.rc = rc
        self.lines = lines

    def __repr__(self):
        return "BoardResult(%r, rc=%r, %d lines)" % (self.name, self.rc, len(self.lines))


class Results(list):
    trace = None  # the run's air (a Trace), where there is one
    trace_svg = None


def pump(name, stream, q):
    """Puts each line a board process prints on q as (name, line), then (name, None) at its end."""
    for raw in iter(stream.readline, b""):
        q.put((name, raw.decode(errors="replace").rstrip("\r\n")))
    q.put((name, None))
