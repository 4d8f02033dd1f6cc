"""examples/ run on simulated boards, one process per board, as a user runs them, and do what
they say: keys agreed on both sides (the same level reported by each), the passkey typed is
the one shown, a refused read stays refused, a bond is stored."""

import os
import re
import signal
import subprocess
import sys

import pytest

from tools.demo import ROOT, Session, StepFailed

EX = os.path.join(ROOT, "examples")


def _aioble_dir():
    """An aioble checkout: $BLESMP_AIOBLE, else the copy beside the project's checkout."""
    for d in (os.environ.get("BLESMP_AIOBLE"), os.path.join(ROOT, "..", "shared", "upstream", "aioble")):
        if d and os.path.isdir(os.path.join(d, "aioble")):
            return os.path.abspath(d)
    return None


@pytest.fixture
def session(tmp_path):
    import io

    s = Session("example", str(tmp_path), out=io.StringIO())
    yield s
    s.close()


def lines(s, name):
    return "\n".join(s.lines.get(name, []))


def test_readme_command_peripheral_with_phone():
    """The README's command, run as the user runs it: the user types the passkey shown."""
    argv = [sys.executable, "-m", "tools.blesim.run", "examples/peripheral.py", "phone:examples/phone.py"]
    p = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, start_new_session=True)
    out, shown, asked, typed = [], None, False, False
    try:
        for line in p.stdout:
            out.append(line.rstrip("\n"))
            m = re.search(r"^peripheral\| PASSKEY (\d{6})$", out[-1])
            if m:
                shown = m.group(1)
            asked = asked or out[-1] == "phone     | TYPE THE PASSKEY SHOWN ON THE PERIPHERAL:"
            if shown and asked and not typed:  # the two boards' lines may come in either order
                p.stdin.write(shown + "\n")
                p.stdin.flush()
                typed = True
            if out[-1].startswith("phone     | READ b") or "Traceback" in out[-1] or len(out) > 60:
                break
    finally:
        os.killpg(p.pid, signal.SIGINT)  # the user's Ctrl-C: the peripheral runs forever
        try:
            p.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
    text = "\n".join(out)
    assert shown is not None, text
    assert "phone     | READ refused: ATT 0x05: pairing" in text  # level 1 < 3: ATT insufficient authentication
    assert "peripheral| PAIRED level=4 bonded=1" in text and "phone     | PAIRED level=4" in text, text
    assert out[-1] == "phone     | READ b'the secret'", text


@pytest.mark.parametrize("interp", ["cpython", "mp"])
def test_peripheral_bond_survives_a_restart(session, tmp_path, interp):
    """Pairs with the phone, the peripheral restarts from its flash: the bond is there and the
    phone's next visit reads without a new passkey."""
    fs_p, fs_ph = str(tmp_path / "periph"), str(tmp_path / "phone")
    session.start("periph", os.path.join(EX, "peripheral.py"), fs_p, interp)
    session.expect("periph", r"^READY bonds=0$")
    session.start("phone", os.path.join(EX, "phone.py"), fs_ph, "cpython", profile="phone", stdin=True)
    shown = session.expect("periph", r"^PASSKEY (\d{6})$").group(1)
    session.expect("phone", r"^TYPE THE PASSKEY")
    session.type("phone", shown)
    session.expect("periph", r"^PAIRED level=4 bonded=1$")
    session.expect("phone", r"^READ b'the secret'$")
    assert session.procs["phone"].wait(timeout=60) == 0  # the phone has left (its name is free again)
    assert os.path.getsize(os.path.join(fs_p, "bonds.db")) > 100
    session.power_cut("periph")
    session.start("periph", os.path.join(EX, "peripheral.py"), fs_p, interp)
    session.expect("periph", r"^READY bonds=1$")
    session.start("phone", os.path.join(EX, "phone.py"), fs_ph, "cpython", profile="phone", stdin=True)
    session.expect("phone", r"^READ b'the secret'$")
    assert "PASSKEY" not in lines(session, "periph").split("READY bonds=1")[1]
    assert "PAIRED level=4 bonded=1" in lines(session, "periph").split("READY bonds=1")[1]  # re-encrypted


def test_peripheral_wrong_passkey_fails_and_stores_nothing(session, tmp_path):
    fs_p = str(tmp_path / "periph")
    session.start("periph", os.path.join(EX, "peripheral.py"), fs_p)
    session.expect("periph", r"^READY")
    session.start("phone", os.path.join(EX, "phone.py"), str(tmp_path / "phone"), profile="phone", stdin=True)
    shown = int(session.expect("periph", r"^PASSKEY (\d{6})$").group(1))
    session.expect("phone", r"^TYPE THE PASSKEY")
    session.type("phone", "%06d" % ((shown + 1) % 1000000))
    session.expect("periph", r"^PAIRING FAILED AUTH_FAILED$")
    session.expect("phone", r"^READ refused: ATT 0x05$")
    session.power_cut("periph")
    session.start("periph", os.path.join(EX, "peripheral.py"), fs_p)
    session.expect("periph", r"^READY bonds=0$")


@pytest.mark.parametrize("interp", ["cpython", "mp"])
def test_esp32_central_pairs_just_works_and_stays_refused(session, tmp_path, interp):
    """examples/central.py on a stock ESP32: no passkey prompts for a central, so Just Works
    (level 2) and the level-3 characteristic stays refused, as the example says."""
    session.start("periph", os.path.join(EX, "peripheral.py"), str(tmp_path / "p"))
    session.expect("periph", r"^READY")
    session.start("central", os.path.join(EX, "central.py"), str(tmp_path / "c"), interp)
    session.expect("central", r"^READ refused: ATT 0x05: pairing$")
    session.expect("central", r"^PAIRED level=2$")
    session.expect("periph", r"^PAIRED level=2 bonded=1$")
    session.expect("central", r"^READ refused: ATT 0x05$")


def test_repl_session_numeric_comparison(session, tmp_path):
    """The REPL session: the board asks "DOES THE OTHER DEVICE SHOW n?", both users say yes,
    the board's status shows the bond."""
    session.start("repl", os.path.join(EX, "repl_session.py"), str(tmp_path / "r"), "mp", stdin=True)
    session.expect("repl", r"^READY")
    session.start("phone", os.path.join(EX, "phone.py"), str(tmp_path / "ph"), profile="phone", stdin=True,
                  args=["--display"])
    n_board = session.expect("repl", r"DOES THE OTHER DEVICE SHOW (\d{6}) \? agent.yes\(\)").group(1)
    n_phone = session.expect("phone", r"^DOES THE PERIPHERAL SHOW (\d{6})\? \(y/n\)$").group(1)
    assert n_board == n_phone
    session.type("repl", "y")
    session.type("phone", "y")
    session.expect("repl", r"AUTH_CMPL conn=\d+ success OK level=4 key_size=16 auth=1 bonded=1 sc=1")
    session.expect("phone", r"^PAIRED level=4$")
    session.expect("repl", r"^  1 bond\(s\)$")


def test_repl_session_says_no(session, tmp_path):
    session.start("repl", os.path.join(EX, "repl_session.py"), str(tmp_path / "r"), stdin=True)
    session.expect("repl", r"^READY")
    session.start("phone", os.path.join(EX, "phone.py"), str(tmp_path / "ph"), profile="phone", stdin=True,
                  args=["--display"])
    session.expect("repl", r"DOES THE OTHER DEVICE SHOW")
    session.expect("phone", r"^DOES THE PERIPHERAL SHOW")
    session.type("repl", "n")
    session.type("phone", "y")
    session.expect("repl", r"AUTH_CMPL conn=\d+ FAILED")
    session.expect("phone", r"^PAIRING FAILED")
    assert "bond(s)" not in lines(session, "repl")


AIOBLE = _aioble_dir()
needs_aioble = pytest.mark.skipif(AIOBLE is None, reason="aioble not found: set BLESMP_AIOBLE to a folder holding "
                                  "aioble/ (micropython-lib/micropython/bluetooth/aioble)")


@needs_aioble
@pytest.mark.parametrize("interp", ["mp", "cpython"])
def test_aioble_lock(session, tmp_path, interp, monkeypatch):
    """aioble for GATT, blesmp for security: the lock's state is refused until the phone pairs
    with the passkey; then the phone's write reaches the app."""
    monkeypatch.setenv("BLESIM_PATH", AIOBLE)
    session.start("lock", os.path.join(EX, "aioble_lock.py"), str(tmp_path / "l"), interp)
    session.expect("lock", r"^READY$")
    session.start("phone", os.path.join(EX, "aioble_phone.py"), str(tmp_path / "ph"), profile="phone", stdin=True)
    session.expect("phone", r"^READ refused: ATT 0x05: pairing$", timeout=30)
    shown = session.expect("lock", r"^PASSKEY (\d{6})$").group(1)
    session.expect("phone", r"^TYPE THE PASSKEY")
    session.type("phone", shown)
    session.expect("lock", r"^PAIRED level=4$")
    session.expect("phone", r"^READ b'locked'$")
    session.expect("lock", r"^LOCK STATE unlocked$")
    session.expect("phone", r"^WROTE b'unlocked': status 0$")


@needs_aioble
def test_aioble_lock_ignores_an_unpaired_write(session, tmp_path, monkeypatch):
    """A central that never pairs writes "unlocked": stock firmware stores the value, but the
    manager keeps the write from aioble, so the lock never acts on it."""
    monkeypatch.setenv("BLESIM_PATH", AIOBLE)
    session.start("lock", os.path.join(EX, "aioble_lock.py"), str(tmp_path / "l"), "mp")
    session.expect("lock", r"^READY$")
    script = tmp_path / "writer.py"
    script.write_text(
        "import sys\nsys.path.insert(0, %r)\nimport bluetooth\nfrom central import Central\n"
        "c = Central(name=b'blesmp-lock', uuid=bluetooth.UUID('5ec0c001-b1e5-4d50-9000-00000000c000'))\n"
        "c.ble.gap_scan(10000, 30000, 30000, True)\nt, a = c.wait('found')\nc.ble.gap_connect(t, a)\n"
        "conn = c.wait('conn')\nc.ble.gattc_discover_characteristics(conn, 1, 0xFFFF)\nc.wait('discovered')\n"
        "c.ble.gattc_write(conn, c.got.pop('handle'), b'unlocked', 1)\nprint('WROTE', c.wait('written') & 0xFF)\n"
        "c.ble.gap_disconnect(conn)\nc.wait('gone')\nprint('GONE')\n" % EX)
    session.start("writer", str(script), str(tmp_path / "w"))
    session.expect("writer", r"^WROTE 0$")
    session.expect("writer", r"^GONE$")
    session.expect("lock", r"^DISCONNECTED$")
    assert "LOCK STATE" not in lines(session, "lock")


def test_session_helper_reports_a_missing_line(session, tmp_path):
    """The harness fails with the line it waited for (not a hang) when an example misbehaves."""
    session.start("periph", os.path.join(EX, "peripheral.py"), str(tmp_path / "p"))
    with pytest.raises(StepFailed, match="never printed"):
        session.expect("periph", r"^NEVER$", timeout=3)
