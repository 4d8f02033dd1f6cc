"""The import graph of the whole tree (lib/, tools/, host_tests/) has no circles."""

from importgraph import cycles, graph


def test_no_import_circles():
    edges = graph()
    assert "blesmp.manager" in edges and "tools.blesim.world" in edges  # the graph sees the tree
    assert cycles(edges) == []


def test_a_circle_is_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
