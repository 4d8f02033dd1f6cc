"""`python -m tools.blesim.run`'s command line: board options go before their script, words
after a script are its arguments, mistakes are one clear line (exit 2), --help describes every
option; --fs does not change how the script's path is read."""

import os
import subprocess
import sys

import pytest

from tools.blesim.broker import spawn_broker
from tools.blesim.run import ROOT, parse_command_line

HERE = os.path.dirname(os.path.abspath(__file__))
MAC = os.path.join(HERE, "scripts", "mac.py")
REL = os.path.relpath(MAC, ROOT)


def _parse(args, monkeypatch):
    monkeypatch.chdir(ROOT)
    return parse_command_line(args)


def test_board_options_apply_to_the_script_that_follows(monkeypatch):
    g, boards = _parse(["--trace", "--fs", "a", "--board", "lock", REL, "--addr", "a4cf12000009", "mp:" + REL,
                        "--phone", REL], monkeypatch)
    assert g["trace"] == "blesim-trace.svg"  # --trace never takes a script as its file
    assert [(b[1], b[2]) for b in boards] == [({"fs": "a", "name": "lock"}, "cpython"),
                                              ({"addr": "a4cf12000009"}, "mp"),
                                              ({"profile": "phone", "stdin": True}, "cpython")]
    assert all(b[0] == MAC for b in boards)  # absolute, resolved before any --fs chdir


def test_words_after_a_script_are_its_arguments(monkeypatch):
    _, boards = _parse([REL, "one", "two", REL, "--", "--three", "x.py"], monkeypatch)
    assert [b[3] for b in boards] == [["one", "two"], ["--three", "x.py"]]
    assert len(boards) == 2  # "one", "two" are not boards


@pytest.mark.parametrize("args, says", [
    (["nope.py"], "no such script: nope.py"),
    (["--fs", "d"], "--fs: board options go before the script they are for, and none follows"),
    ([REL, "--board", "x"], "--board: board options go before the script they are for"),
    (["--bogus", REL], "unknown option --bogus"),
    (["word", REL], "word is not a script (.py): give a board script first"),
    (["--broker", "127.0.0.1:1", REL, REL], "--broker runs one script"),
    (["--profile", "esp99", REL], "--profile esp99: no such profile"),
    (["--", REL], '"--" comes after a script'),
    ([], "no script given"),
])
def test_mistakes_are_one_clear_line(args, says, monkeypatch, capsys):
    with pytest.raises(SystemExit) as e:
        _parse(args, monkeypatch)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert says in err and err.startswith("usage: ")


def test_help_describes_every_option():
    out = subprocess.run([sys.executable, "-m", "tools.blesim.run", "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60).stdout
    said = {"--mp": "run every script on MicroPython", "--trace": "sequence chart", "--width": "width",
            "--broker": "join a running broker", "--board": "name", "--fs": "filesystem", "--addr": "address",
            "--profile": "firmware profile", "--phone": "a phone, not an ESP32"}
    for opt, words in said.items():
        line = [ln for ln in out.splitlines() if ln.strip().startswith(opt)][0]
        assert words in line, line
    assert "board options (for the script that follows)" in out and "examples:" in out


def test_fs_does_not_change_where_the_script_is_read_from(tmp_path):
    """--broker with --fs: the board's directory becomes the working directory only after the
    script's path (relative to where the command was typed) has been resolved."""
    os.makedirs(tmp_path / "here" / "sub")
    (tmp_path / "here" / "sub" / "app.py").write_text("import os\nimport bluetooth\nprint(os.getcwd())\n")
    log = open(tmp_path / "broker.log", "wb")
    broker, addr = spawn_broker(log=log)
    try:
        env = dict(os.environ, PYTHONPATH=ROOT)
        p = subprocess.run([sys.executable, "-m", "tools.blesim.run", "--broker", addr, "--fs", "../boardfs",
                            "sub/app.py"], cwd=tmp_path / "here", env=env, capture_output=True, text=True, timeout=60)
    finally:
        broker.kill()
        broker.wait()
        log.close()
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.strip() == str(tmp_path / "boardfs")
