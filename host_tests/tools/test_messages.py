"""What the board tools say when the user gets something wrong: a clear line naming what to
do next, a non-zero exit, and nothing changed."""

import subprocess
import sys

import pytest

from tools.board import bonds, deploy, ports, repl

PY = sys.executable


def test_remove_with_a_bad_address_says_so_and_changes_nothing(tmp_path, capsys):
    f = tmp_path / "bonds.db"
    f.write_bytes(b"BSMP\x01")
    before = f.read_bytes()
    assert bonds.main([str(f), "--remove", "zz"]) == 2
    err = capsys.readouterr().err
    assert "--remove: 'zz' is not an address: give 6 hex octets, e.g. C0:11:22:33:44:55" in err
    assert "Traceback" not in err
    assert f.read_bytes() == before
    for bad in ("C0:11:22:33:44", "C0:11:22:33:44:5G", "C0:11:22:33:44:555"):
        with pytest.raises(ValueError, match="is not an address"):
            bonds.parse_addr(bad)
    assert bonds.parse_addr("c0-11-22-33-44-55") == bytes.fromhex("c01122334455")


def test_a_file_that_is_not_a_store_is_named_and_left_alone(tmp_path, capsys):
    f = tmp_path / "notes.txt"
    f.write_bytes(b"hello, not a bond store\n")
    assert bonds.main([str(f)]) == 1
    err = capsys.readouterr().err
    assert "is not a blesmp bond store (it starts with b'hello, n', not b'BSMP'): nothing read, nothing changed" in err
    assert "moved" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert f.read_bytes() == b"hello, not a bond store\n"
    assert bonds.main([str(f), "--remove", "C0:11:22:33:44:55"]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_corrupt_records_are_reported_without_claiming_a_copy(tmp_path, capsys):
    """The tool reads into memory: a problem line never says a file was moved or copied."""
    f = tmp_path / "bonds.db"
    f.write_bytes(b"BSMP\x01" + b"\xb5\x42\x05garbage-record")
    bonds.main([str(f)])
    out = capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bonds.db"]
    assert "problem: 1 corrupt record(s) found (the board's store would copy them to .bad)" in out


def _no_mpremote(*a, **k):
    raise AssertionError("mpremote must not run for a port that does not exist")


@pytest.mark.parametrize("tool", ["bonds", "deploy", "repl"])
def test_a_port_that_does_not_exist_is_named_as_such(tool, tmp_path, capsys, monkeypatch):
    port = str(tmp_path / "dev" / "ttyUSB9").replace(str(tmp_path), "/dev/blesmp-test-none")
    monkeypatch.setattr(subprocess, "run", _no_mpremote)
    monkeypatch.setattr(subprocess, "call", _no_mpremote)
    if tool == "bonds":
        rc = bonds.main(["--port", port], run=_no_mpremote)
    elif tool == "deploy":
        rc = deploy.main(["--port", port, "--board", "esp32", "--out", str(tmp_path / "out")])
    else:
        rc = repl.main(["--port", port])
    err = capsys.readouterr().err
    assert rc == 2
    assert "no such port: %s (is the board plugged in" % port in err
    assert "in use by another program" not in err
    if tool == "deploy":
        assert "make deploy DRY_RUN=1" in err


def test_deploy_without_a_port_names_port_and_dry_run(capsys, tmp_path):
    assert deploy.main(["--port", "", "--board", "esp32", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "no port given: make deploy PORT=/dev/ttyUSB0" in err
    assert "make deploy DRY_RUN=1" in err


def test_make_deploy_dry_run_needs_no_board(tmp_path):
    r = subprocess.run(["make", "-s", "deploy", "DRY_RUN=1", "STAMP="], cwd=deploy.ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "mpremote connect PORT" in r.stdout and "lib/blesmp/manager.mpy" in r.stdout


def test_ports_lets_shortcuts_and_existing_devices_through(tmp_path):
    assert ports.problem("auto", "repl") is None
    assert ports.problem("u0", "repl") is None
    assert ports.problem("rfc2217://host:2217", "repl") is None
    assert ports.problem("/dev/null", "repl") is None
    assert "no port given: make bonds PORT=" in ports.problem("", "bonds")
