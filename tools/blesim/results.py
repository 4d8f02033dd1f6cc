"""What a run of board processes gives back (the simulator's run_boards and the real host's
runner alike): one BoardResult per board, the line pump that collects their output, the echo of
each line and the air's sequence chart. Imports only tools.blesim.render (lazily), so that
neither runner imports the other."""


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

    @classmethod
    def collect(cls, procs, lines):
        """A BoardResult for each process of procs ({name: Popen}, in its order) with its lines
        ({name: [line]}); a board still running (Ctrl-C, timeout) is killed first."""
        results = cls()
        for name, p in procs.items():
            if p.poll() is None:
                p.kill()
            results.append(BoardResult(name, p.wait(), lines[name]))
        return results

    def save_trace(self, path, boards, out, quiet=False, width=None):
        """Writes self.trace as the SVG `path` and as `path`.jsonl (boards: the column order);
        unless quiet, prints the text chart and where the files went."""
        from tools.blesim import render

        if not quiet:
            out.write(render.text(self.trace, width=width, boards=boards) + "\n")
        with open(path, "w") as f:
            f.write(render.svg(self.trace, boards=boards))
        with open(path + ".jsonl", "w") as f:
            f.write(self.trace.to_jsonl())
        self.trace_svg = path
        if not quiet:
            out.write("trace: %s (SVG), %s.jsonl\n" % (path, path))


def pump(name, stream, q):
    """Puts each line a board process prints on q as (name, line), then (name, None) at its end."""
    for raw in iter(stream.readline, b""):
        q.put((name, raw.decode(errors="replace").rstrip("\r\n")))
    q.put((name, None))


def echo(out, name, line, width, prefix=True):
    """Prints a board's line as it comes: `name| line` (names padded to `width`), or bare."""
    out.write(("%-*s| %s\n" % (width, name, line)) if prefix else line + "\n")
    out.flush()
