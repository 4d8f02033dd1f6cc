"""The import graph of the whole tree (lib/, tools/, host_tests/) has no circles."""

import os

from importgraph import cycles, graph


def test_no_import_circles():
    edges = graph()
    assert "blesmp.manager" in edges and "tools.blesim.world" in edges  # the graph sees the tree
    assert cycles(edges) == []


def test_a_circle_is_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_graph_sees_every_import_of_the_package():
    # an import by computed name (__import__, importlib) would hide an edge, and a circle with it
    import ast

    from importgraph import ROOT, modules

    edges = graph()
    assert {"blesmp.bondload", "blesmp.bondwrite"} <= edges["blesmp.store"]  # its cold halves
    assert "blesmp.store" not in edges["blesmp.bondload"] | edges["blesmp.bondwrite"]
    for name, path in modules().items():
        if path.startswith(os.path.join(ROOT, "lib")):
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read())
            for node in ast.walk(tree):
                assert not (isinstance(node, ast.Name) and node.id in ("__import__", "importlib")), name


def test_an_app_that_resolves_addresses_keeps_no_crypto_toolbox():
    # blesmp.crypto (9.4 KB as .mpy) loads only when resolver.generate() makes an address
    import subprocess
    import sys

    from importgraph import ROOT

    code = ("import sys; import blesmp.resolver as r; a = 'blesmp.crypto' in sys.modules; "
            "r.generate(bytes(range(16))); print(a, 'blesmp.crypto' in sys.modules)")
    path = os.pathsep.join((os.path.join(ROOT, "lib"), os.path.join(ROOT, "tools", "blesim", "modules")))
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=path),
                         capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]
