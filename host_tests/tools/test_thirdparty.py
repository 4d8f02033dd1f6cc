"""Where the tests find third-party inputs (tools/thirdparty.py): beside the checkout, beside
a worktree's main checkout, or named by BLESMP_UPSTREAM; absent, a one-line way to enable."""

import pytest

from tools.thirdparty import UPSTREAM_HINT, upstream_multitests


def _suite(d):
    d.mkdir(parents=True)
    (d / "ble_gap_connect.py").write_text("")
    return d


def test_absent_is_none_and_the_hint_says_how_to_enable(tmp_path):
    (tmp_path / "repo").mkdir()
    assert upstream_multitests(str(tmp_path / "repo"), environ={}) is None
    assert UPSTREAM_HINT.startswith("set BLESMP_UPSTREAM=") and "\n" not in UPSTREAM_HINT


def test_beside_the_checkout_and_beside_a_worktrees_main_checkout(tmp_path):
    d = _suite(tmp_path / "shared" / "upstream" / "multi_bluetooth")
    (tmp_path / "main" / ".git" / "worktrees" / "wt").mkdir(parents=True)
    (tmp_path / "main" / ".git" / "worktrees" / "wt" / "commondir").write_text("../..\n")
    assert upstream_multitests(str(tmp_path / "main"), environ={}) == str(d)
    wt = tmp_path / "elsewhere" / "wt"
    wt.mkdir(parents=True)
    (wt / ".git").write_text("gitdir: %s\n" % (tmp_path / "main" / ".git" / "worktrees" / "wt"))
    assert upstream_multitests(str(wt), environ={}) == str(d)


def test_blesmp_upstream_names_a_tests_folder_or_the_suite(tmp_path):
    d = _suite(tmp_path / "mpy" / "tests" / "multi_bluetooth")
    assert upstream_multitests(str(tmp_path), environ={"BLESMP_UPSTREAM": str(tmp_path / "mpy" / "tests")}) == str(d)
    assert upstream_multitests(str(tmp_path), environ={"BLESMP_UPSTREAM": str(d)}) == str(d)
    with pytest.raises(ValueError, match="name a MicroPython checkout's tests folder"):
        upstream_multitests(str(tmp_path), environ={"BLESMP_UPSTREAM": str(tmp_path)})
