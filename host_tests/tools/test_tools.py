"""The board tools without a board: boards/*.json, deploy, flash, repl, package.json.

deploy and mip install run for real: mpremote drives the real MicroPython
interpreter (the unix port) on a pseudo-terminal (fakeboard.py speaks the REPL's
raw/paste protocol, its flash is a temp folder mounted at "/"). The unix port is
x64, so those runs use a test board description with mpy_arch "x64"; the ESP32
boards themselves are checked by compiling for their arch and reading the .mpy
headers. esptool can't be run without a chip: its exact commands are checked.
"""

import ast
import json
import subprocess
import sys
import time

import pytest
from fakeboard_host import FakeBoard

from tools.board import deploy, flash, repl

ROOT = deploy.ROOT
ARCH_CODES = {"xtensawin": 10, "rv32imc": 11, "x64": 2}


def mpy_arch(path):
    """The native-architecture field of a .mpy header (0 = bytecode only)."""
    head = path.read_bytes()[:4]
    assert head[:2] == b"M\x06", head
    return head[2] >> 2


# -- boards/ -------------------------------------------------------------------------

def test_every_board_file_loads_and_is_consistent():
    names = deploy.list_boards()
    assert {"esp32", "esp32s3", "esp32c3"} <= set(names)
    for name in names:
        b = deploy.load_board(name)
        assert b["name"] == name
        assert b["mpy_arch"] in ("xtensawin", "rv32imc")
        assert b["chip"] in flash.CHIP_IDS
        assert deploy.version_tuple(b["viper_min_firmware"]) >= deploy.version_tuple(b["min_firmware"]) >= (1, 23, 0)
        assert b["io_cap"] in range(5)
        for part in ("button", "led"):
            if part in b:
                assert isinstance(b[part]["pin"], int) and b[part]["active"] in (0, 1)


def test_board_facts():
    esp32, s3, c3 = (deploy.load_board(n) for n in ("esp32", "esp32s3", "esp32c3"))
    assert (esp32["mpy_arch"], s3["mpy_arch"], c3["mpy_arch"]) == ("xtensawin", "xtensawin", "rv32imc")
    assert (esp32["flash_offset"], s3["flash_offset"], c3["flash_offset"]) == (0x1000, 0, 0)
    assert deploy.version_tuple(c3["viper_min_firmware"]) == (1, 24, 0)
    assert (esp32["button"]["pin"], s3["button"]["pin"], c3["button"]["pin"]) == (0, 0, 9)


def test_unknown_board_is_named():
    with pytest.raises(deploy.DeployError, match="esp32c3"):
        deploy.load_board("esp8266")


# -- deploy: decisions -------------------------------------------------------------

def test_check_board_refuses_old_firmware_and_wrong_arch():
    c3 = deploy.load_board("esp32c3")
    with pytest.raises(deploy.DeployError, match="older than v1.23"):
        deploy.check_board(c3, "micropython", (1, 22, 2), "rv32imc")
    with pytest.raises(deploy.DeployError, match="built for xtensawin"):
        deploy.check_board(c3, "micropython", (1, 26, 0), "xtensawin")
    # C3 before v1.24 has no native emitter (_mpy arch 0): deploy, but without viper
    assert deploy.check_board(c3, "micropython", (1, 23, 0), None) is False
    assert deploy.check_board(c3, "micropython", (1, 24, 1), "rv32imc") is True
    assert deploy.check_board(c3, "micropython", (1, 22, 0), "xtensawin", force=True) is False


@pytest.mark.parametrize("name", ["esp32", "esp32c3"])
def test_stage_compiles_lib_for_the_boards_arch(name, tmp_path):
    b = deploy.load_board(name)
    files = deploy.stage(b, out=tmp_path / "stage")
    remote = {r for _, r in files}
    assert {"main.py", "board.json", "lib/blesmp/crypto.mpy", "lib/blesmp/_viper.mpy"} <= remote
    # the app's modules are compiled for the chip too; main.py/boot.py stay source; the central isn't copied
    assert {"boot.py", "lockapp.mpy", "boardio.mpy", "centralapp.mpy"} <= remote and "central.py" not in remote
    assert not any(r.startswith("lib/") and r.endswith(".py") for r in remote)
    stage = tmp_path / "stage"
    assert mpy_arch(stage / "lib/blesmp/_viper.mpy") == ARCH_CODES[b["mpy_arch"]]  # native code for this chip
    assert mpy_arch(stage / "lib/blesmp/crypto.mpy") == 0  # bytecode only
    assert (stage / "main.py").read_text() == (ROOT / "firmware/main.py").read_text()
    assert json.loads((stage / "board.json").read_text())["mpy_arch"] == b["mpy_arch"]


def test_stage_without_viper_and_as_source(tmp_path):
    b = deploy.load_board("esp32c3")
    files = deploy.stage(b, viper=False, out=tmp_path / "a")
    assert not any("_viper" in r for _, r in files)
    files = deploy.stage(b, source=True, out=tmp_path / "b")
    remote = {r for _, r in files}
    assert "lib/blesmp/crypto.py" in remote and "lib/blesmp/_viper.py" in remote
    assert (tmp_path / "b/lib/blesmp/crypto.py").read_bytes() == (ROOT / "lib/blesmp/crypto.py").read_bytes()


def test_stage_for_a_frozen_firmware_copies_the_app_only(tmp_path):
    files = deploy.stage(deploy.load_board("esp32"), frozen=True, out=tmp_path / "s")
    assert sorted(r for _, r in files) == ["board.json", "boot.py", "main.py"]
    # and the board's stale lib/blesmp files go: nothing under it is kept
    assert "_clean('lib/blesmp', set())" in deploy.prepare_snippet([r for _, r in files])


def test_deploy_dry_run_prints_one_mpremote_session(capsys):
    assert deploy.main(["--board", "esp32s3", "--dry-run"]) == 0
    out = capsys.readouterr().out
    line = [x for x in out.splitlines() if x.startswith(deploy.MPREMOTE)][0]
    assert " connect PORT exec " in line and line.endswith("+ reset")
    assert "fs cp " in line and ":lib/blesmp/crypto.mpy" in line and ":main.py" in line


# -- deploy: for real, onto MicroPython on a pseudo-terminal -------------------------

def _host_board(tmp_path, **over):
    """A board description for the x64 unix port (what fakeboard really runs)."""
    b = json.loads((ROOT / "boards/esp32/board.json").read_text())
    b.update(name="hostx64", mpy_arch="x64", viper_min_firmware="1.23.0")
    b.update(over)
    d = tmp_path / "boards" / "hostx64"
    d.mkdir(parents=True)
    (d / "board.json").write_text(json.dumps(b))
    return tmp_path / "boards"


def _test_app(tmp_path):
    fw = tmp_path / "fw"
    fw.mkdir()
    (fw / "main.py").write_text(
        "import blesmp.crypto as c, json\n"
        "k = bytes(range(16))\n"
        "r = {'backend': c.BACKEND, 'e': c.e(k, k).hex(), 'board': json.load(open('board.json'))['name']}\n"
        "open('ran.json', 'w').write(json.dumps(r))\n")
    (fw / "boot.py").write_text("open('booted', 'a').write('x')\n")
    return fw


def _run_deploy(*args):
    return subprocess.run([sys.executable, str(ROOT / "tools/board/deploy.py"), *args],
                          capture_output=True, text=True, timeout=300)


def _wait_json(path, timeout=20):
    """The JSON the board's app wrote to `path` (it may still be writing it), or None."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            time.sleep(0.05)
    return None


def test_deploy_onto_micropython_board_compiles_copies_and_resets(tmp_path):
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    boards, fw = _host_board(tmp_path), _test_app(tmp_path)
    with FakeBoard(tmp_path / "dev") as board:
        (board.flash / "bonds.db").write_bytes(b"bond records")
        (board.flash / "lib/blesmp").mkdir(parents=True)
        (board.flash / "lib/blesmp/crypto.py").write_text("raise ImportError('stale source shadows the .mpy')\n")
        (board.flash / "lib/blesmp/gone.mpy").write_bytes(b"M\x06old")
        (board.flash / "lib/other.py").write_text("x = 1\n")
        r = _run_deploy("--port", board.port, "--board", "hostx64", "--boards-dir", str(boards),
                        "--firmware-dir", str(fw), "--out", str(tmp_path / "stage"))
        assert r.returncode == 0, r.stdout + r.stderr
        assert "native code for x64" in r.stdout
        ran = _wait_json(board.flash / "ran.json")
        k = bytes(range(16))
        want = Cipher(algorithms.AES(k), modes.ECB()).encryptor().update(k).hex()
        # the app ran after the reset, importing the compiled package, viper kernels active
        assert ran == {"backend": "viper", "e": want, "board": "hostx64"}
        assert board.resets()[-1] == "hard"
        assert (board.flash / "booted").exists()
        # stale files in lib/blesmp are gone; everything else is untouched
        assert not (board.flash / "lib/blesmp/crypto.py").exists()
        assert not (board.flash / "lib/blesmp/gone.mpy").exists()
        assert (board.flash / "bonds.db").read_bytes() == b"bond records"
        assert (board.flash / "lib/other.py").read_text() == "x = 1\n"
        staged = sorted(p.relative_to(tmp_path / "stage").as_posix() for p in (tmp_path / "stage").rglob("*.mpy"))
        for rel in staged:
            assert (board.flash / rel).read_bytes() == (tmp_path / "stage" / rel).read_bytes()
        # a second deploy copies nothing that is already there (lib/ may change meanwhile:
        # other work goes on in this tree, so compare with what was staged the first time)
        r = _run_deploy("--port", board.port, "--board", "hostx64", "--boards-dir", str(boards),
                        "--firmware-dir", str(fw), "--out", str(tmp_path / "stage2"), "--no-reset")
        assert r.returncode == 0, r.stderr
        same = [p.relative_to(tmp_path / "stage2").as_posix() for p in (tmp_path / "stage2").rglob("*")
                if p.is_file() and (tmp_path / "stage" / p.relative_to(tmp_path / "stage2")).is_file()
                and p.read_bytes() == (tmp_path / "stage" / p.relative_to(tmp_path / "stage2")).read_bytes()]
        assert len(same) >= 3
        for rel in same:
            assert "Up to date: " + rel in r.stdout


def test_deploy_source_mode_replaces_mpy_with_py(tmp_path):
    boards, fw = _host_board(tmp_path), _test_app(tmp_path)
    with FakeBoard(tmp_path / "dev") as board:
        (board.flash / "lib/blesmp").mkdir(parents=True)
        (board.flash / "lib/blesmp/crypto.mpy").write_bytes(b"M\x06stale")
        r = _run_deploy("--port", board.port, "--board", "hostx64", "--boards-dir", str(boards),
                        "--firmware-dir", str(fw), "--out", str(tmp_path / "stage"), "--source")
        assert r.returncode == 0, r.stdout + r.stderr
        assert _wait_json(board.flash / "ran.json")["backend"] == "viper"
        assert not (board.flash / "lib/blesmp/crypto.mpy").exists()
        assert (board.flash / "lib/blesmp/crypto.py").read_bytes() == (ROOT / "lib/blesmp/crypto.py").read_bytes()


def test_deploy_refuses_a_board_of_another_arch(tmp_path):
    fw = _test_app(tmp_path)
    with FakeBoard(tmp_path / "dev") as board:
        r = _run_deploy("--port", board.port, "--board", "esp32", "--firmware-dir", str(fw),
                        "--out", str(tmp_path / "stage"))
        assert r.returncode == 2
        assert "built for x64 but BOARD=esp32 needs xtensawin" in r.stderr
        assert not (board.flash / "lib").exists() and not (board.flash / "main.py").exists()
        assert "hard" not in board.resets()[1:]


def test_deploy_without_native_emitter_leaves_viper_out(tmp_path, monkeypatch):
    # What deploy does for a C3 on v1.23 (no native emitter): the decision is
    # check_board's; here the whole path runs with a probe that answers like it.
    boards, fw = _host_board(tmp_path, viper_min_firmware="9.0.0"), _test_app(tmp_path)
    with FakeBoard(tmp_path / "dev") as board:
        r = _run_deploy("--port", board.port, "--board", "hostx64", "--boards-dir", str(boards),
                        "--firmware-dir", str(fw), "--out", str(tmp_path / "stage"))
        assert r.returncode == 0, r.stderr
        assert "viper kernels left out" in r.stdout
        assert _wait_json(board.flash / "ran.json")["backend"] == "python"
        assert not list(board.flash.rglob("_viper*"))


# -- package.json / mip --------------------------------------------------------------

def _package_names():
    """Names blesmp/__init__.py defines itself (`from . import _drop` imports no module)."""
    tree = ast.parse((ROOT / "lib" / "blesmp" / "__init__.py").read_text())
    names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    names.update(t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name))
    return names


def _imports_of(path):
    """blesmp modules a module imports (relative or absolute)."""
    names = set()
    own = _package_names()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                if node.module:
                    names.add(node.module.split(".")[0])
                else:
                    names.update(a.name for a in node.names if a.name not in own)
            elif node.module and node.module.startswith("blesmp."):
                names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names if a.name.startswith("blesmp."))
    return names


def test_package_json_is_complete_for_mip():
    pj = json.loads((ROOT / "package.json").read_text())
    listed = {t for t, _ in pj["urls"]}
    for target, url in pj["urls"]:
        assert (ROOT / url).is_file(), "package.json lists a missing file %s" % url
        assert target == url[len("lib/"):]
    assert "blesmp/__init__.py" in listed
    for target in listed:
        for dep in _imports_of(ROOT / "lib" / target):
            assert "blesmp/%s.py" % dep in listed, "%s imports blesmp.%s, which package.json lacks " \
                "(python tools/board/deploy.py --write-package-json)" % (target, dep)


def test_mip_install_from_the_checkout(tmp_path):
    with FakeBoard(tmp_path / "dev") as board:
        r = board.mpremote("mip", "install", str(ROOT / "package.json"))
        assert r.returncode == 0, r.stdout + r.stderr
        pj = json.loads((ROOT / "package.json").read_text())
        for target, url in pj["urls"]:
            assert (board.flash / "lib" / target).read_bytes() == (ROOT / url).read_bytes()
        r = board.mpremote("exec", "import blesmp.crypto as c; print('OK', c.BACKEND, c.ah(bytes(16), bytes(3)).hex())")
        assert r.returncode == 0, r.stderr
        from blesmp import crypto
        assert r.stdout.split()[-3:] == ["OK", "viper", crypto.ah(bytes(16), bytes(3)).hex()]


# -- flash ---------------------------------------------------------------------------

def _image(chip_id, offset, partition_table=True, size=0x10000):
    img = bytearray(b"\xff" * size)
    img[0] = 0xE9
    img[12:14] = chip_id.to_bytes(2, "little")
    if partition_table:
        img[0x8000 - offset:0x8000 - offset + 2] = b"\xaa\x50"
    return bytes(img)


def _recorder(ran):
    def run(cmd, **kw):
        ran.append(cmd)
        return subprocess.CompletedProcess(cmd, 0)
    return run


@pytest.mark.parametrize("name,chip_id,offset", [("esp32", 0, 0x1000), ("esp32s3", 9, 0), ("esp32c3", 5, 0)])
def test_flash_runs_erase_then_write_at_the_boards_offset(name, chip_id, offset, tmp_path, monkeypatch):
    fw = tmp_path / "fw.bin"
    fw.write_bytes(_image(chip_id, offset))
    ran = []
    monkeypatch.setattr(flash.subprocess, "run", _recorder(ran))
    assert flash.main(["--port", "/dev/ttyUSB7", "--board", name, "--firmware", str(fw)]) == 0
    chip = deploy.load_board(name)["chip"]
    assert ran == [
        [flash.ESPTOOL, "--chip", chip, "--port", "/dev/ttyUSB7", "erase-flash"],
        [flash.ESPTOOL, "--chip", chip, "--port", "/dev/ttyUSB7", "--baud", "460800", "write-flash",
         hex(offset), str(fw)],
    ]


def test_flash_refuses_wrong_images(tmp_path, monkeypatch, capsys):
    ran = []
    monkeypatch.setattr(flash.subprocess, "run", _recorder(ran))
    cases = {
        "s3.bin": (_image(9, 0), "image is for esp32s3, board esp32c3 is esp32c3"),
        "app.bin": (_image(5, 0, partition_table=False), "app-only image"),
        "junk.bin": (b"\x00" * 100, "not an ESP firmware image"),
    }
    for fname, (data, why) in cases.items():
        (tmp_path / fname).write_bytes(data)
        assert flash.main(["--port", "/dev/ttyUSB0", "--board", "esp32c3", "--firmware", str(tmp_path / fname)]) == 2
        assert why in capsys.readouterr().err
    assert ran == []
    # the merged ESP32 image has its partition table at file offset 0x7000 (flash 0x8000 - 0x1000)
    assert flash.check_image(_image(0, 0x1000), deploy.load_board("esp32")) == []
    assert flash.check_image(_image(0, 0), deploy.load_board("esp32")) != []


def test_flash_esptool_accepts_the_command_syntax():
    # esptool parses (and rejects unknown options) before it looks for a chip
    cmd = flash.esptool_commands(deploy.load_board("esp32c3"), "/dev/null", "x.bin")[-1]
    r = subprocess.run(cmd[:5] + [cmd[-3], "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "write-flash" in r.stdout.replace("write_flash", "write-flash")


# -- repl ----------------------------------------------------------------------------

def test_repl_command_keeps_the_app_running():
    cmd = repl.mpremote_command("/dev/ttyACM0")
    assert cmd[:4] == [repl.MPREMOTE, "connect", "/dev/ttyACM0", "resume"]
    assert cmd[4] == "exec" and cmd[5].startswith("from lockapp import *") and cmd[-1] == "repl"
    central = repl.mpremote_command("/dev/ttyACM0", "central", soft_reset=True)
    assert central[3:5] == ["exec", repl.helper_code("central")]
    assert "from centralapp import *" in repl.helper_code("central")


def test_repl_reaches_the_running_apps_helpers(tmp_path):
    # main.py started the app at boot; `make repl` must neither soft-reset (that would stop
    # it) nor import a second copy: status() must see the instance main.py made.
    import os
    import pty
    import select

    fb = FakeBoard(tmp_path / "dev")
    (fb.flash / "lockapp.py").write_text(
        "APP = None\nLOADS = []\nLOADS.append(1)\n"
        "def status():\n    print('STATUS', APP, len(LOADS))\n")
    (fb.flash / "main.py").write_text("import lockapp\nlockapp.APP = 'running'\n")
    with fb as board:
        master, slave = pty.openpty()  # mpremote's own terminal
        p = subprocess.Popen(repl.mpremote_command(board.port), stdin=slave, stdout=slave, stderr=slave)
        os.close(slave)
        seen = b""

        def read_until(marker, secs=20):
            nonlocal seen
            end = time.monotonic() + secs
            while marker not in seen and time.monotonic() < end:
                if select.select([master], [], [], 0.1)[0]:
                    try:
                        seen += os.read(master, 4096)
                    except OSError:
                        break
            return marker in seen

        try:
            assert read_until(b">>> "), seen
            os.write(master, b"status()\r")
            assert read_until(b"STATUS running 1"), seen
            os.write(master, b"\x1d")  # Ctrl-] leaves mpremote
            assert p.wait(20) == 0
        finally:
            if p.poll() is None:
                p.kill()
            os.close(master)
        assert b"blesmp helpers from lockapp" in seen
        assert board.resets() == ["hard"]  # no soft reset: the app kept running


def test_firmware_apps_type_check_against_the_esp32_stubs(tmp_path):
    # the apps run on the board: only the firmware's API (micropython-esp32-stubs), as lib/ does
    import shutil
    import sysconfig
    from pathlib import Path

    site = Path(sysconfig.get_paths()["purelib"])
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for f in site.glob("*.pyi"):
        shutil.copy(f, stubs / f.name)
    shutil.copytree(site / "_mpy_shed", stubs / "_mpy_shed")
    apps = [str(ROOT / "firmware" / n) for n in ("boardio.py", "lockapp.py", "centralapp.py", "main.py", "central.py")]
    r = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "mypy.ini"),
                        "--custom-typeshed-dir", str(site), "--cache-dir", str(tmp_path / "cache"), *apps],
                       cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={"MYPYPATH": "%s:%s:%s" % (stubs, ROOT / "lib", ROOT / "firmware"), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stdout + r.stderr


def test_manifest_freezes_existing_files():
    # Evaluated the way MicroPython's tools/manifestfile.py does: the file is Python that
    # calls include/package/module; paths are relative to the manifest's folder.
    calls = []
    env = {"include": lambda p, **kw: calls.append(("include", p, kw)),
           "package": lambda p, files=None, base_path=".", opt=None: calls.append(("package", p, base_path)),
           "module": lambda p, base_path=".", opt=None: calls.append(("module", p, base_path))}
    manifest = ROOT / "firmware" / "manifest.py"
    exec(compile(manifest.read_text(), str(manifest), "exec"), env)
    assert ("include", "$(PORT_DIR)/boards/manifest.py", {}) in calls
    pkgs = [(p, b) for k, p, b in calls if k == "package"]
    assert pkgs == [("blesmp", "../lib")]
    assert (manifest.parent / "../lib/blesmp/__init__.py").resolve().is_file()
    mods = {p for k, p, b in calls if k == "module"}
    assert mods == {"boardio.py", "lockapp.py", "centralapp.py"}
    for m in mods:
        assert (manifest.parent / m).is_file()
