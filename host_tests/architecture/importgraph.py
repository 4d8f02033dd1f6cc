"""The project's import graph, read from the source (ast): which module imports which.

Every import counts, at module level or inside a function: a lazy import still ties the two
modules together (the lazy boundary is about RAM, not about dependencies).
"""

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# (folder whose files are modules, the package prefix they are imported by)
TREES = (("lib", ""), ("tools", ""), ("host_tests", "host_tests."))


def modules():
    """{dotted module name: file path} for every .py file of the project's trees."""
    found = {}
    for top, prefix in TREES:
        base = os.path.join(ROOT, top)
        for folder, dirs, files in os.walk(base):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for f in files:
                if not f.endswith(".py"):
                    continue
                rel = os.path.relpath(os.path.join(folder, f), base)[:-3].replace(os.sep, ".")
                if top == "tools":
                    rel = "tools." + rel
                if rel.endswith(".__init__"):
                    rel = rel[: -len(".__init__")]
                found[prefix + rel] = os.path.join(folder, f)
    return found


def _targets(node, name, is_pkg):
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        parts = name.split(".")
        base = parts if is_pkg else parts[:-1]
        base = base[: len(base) - (node.level - 1)]
        mod = ".".join(base + ([node.module] if node.module else []))
    else:
        mod = node.module or ""
    # `from pkg import sub` imports pkg.sub when sub is a module
    return [mod] + [mod + "." + a.name for a in node.names]


def graph():
    """{module: set of project modules it imports} (imports of outside modules are left out)."""
    mods = modules()
    edges = {}
    for name, path in mods.items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        is_pkg = path.endswith("__init__.py")
        out = set()
        for node in ast.walk(tree):
            for t in _targets(node, name, is_pkg):
                # an import of a.b.c also runs a and a.b: only the deepest project module matters here
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != name and not name.startswith(t + "."):
                    out.add(t)
        edges[name] = out
    return edges


def cycles(edges):
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out
