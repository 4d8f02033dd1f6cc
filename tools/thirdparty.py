"""Where the third-party inputs the tests run live (never copied into the project).

The project's checkout has the team's shared folder beside it (`<checkout>/../shared`, as in
CI); a git worktree looks beside its main checkout too. A user's fresh clone has none: tests
that need them skip with one line saying which environment variable names a copy.

- MicroPython's two-board Bluetooth suite (`tests/multi_bluetooth`, with real boards' .exp):
  `BLESMP_UPSTREAM=<micropython checkout>/tests` (or the multi_bluetooth folder itself).
"""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

UPSTREAM_HINT = ("set BLESMP_UPSTREAM=<micropython checkout>/tests to run MicroPython's multi_bluetooth "
                 "suite on simulated boards")


def _main_checkout(root):
    """The main checkout of a git worktree (its .git is a file naming .git/worktrees/<name>)."""
    dotgit = os.path.join(root, ".git")
    if not os.path.isfile(dotgit):
        return None
    with open(dotgit) as f:
        line = f.read().strip()
    if not line.startswith("gitdir:"):
        return None
    gitdir = line.split(":", 1)[1].strip()
    common = os.path.join(gitdir, "commondir")
    if os.path.exists(common):
        with open(common) as f:
            gitdir = os.path.normpath(os.path.join(gitdir, f.read().strip()))
    return os.path.dirname(gitdir)


def shared_dir(root=ROOT):
    """`<checkout>/../shared` if it exists (for a worktree, beside its main checkout), else None."""
    for base in (root, _main_checkout(root)):
        if base:
            d = os.path.normpath(os.path.join(base, "..", "shared"))
            if os.path.isdir(d):
                return d
    return None


def upstream_multitests(root=ROOT, environ=None):
    """The folder of MicroPython's multi_bluetooth tests, or None (see UPSTREAM_HINT)."""
    environ = os.environ if environ is None else environ
    given = environ.get("BLESMP_UPSTREAM")
    if given:
        for d in (os.path.join(given, "multi_bluetooth"), given):
            if os.path.isfile(os.path.join(d, "ble_gap_connect.py")):
                return os.path.abspath(d)
        raise ValueError("BLESMP_UPSTREAM=%s has no multi_bluetooth tests: name a MicroPython checkout's "
                         "tests folder" % given)
    shared = shared_dir(root)
    if shared:
        d = os.path.join(shared, "upstream", "multi_bluetooth")
        if os.path.isdir(d):
            return d
    return None
