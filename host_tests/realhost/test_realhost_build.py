"""The real-host interpreters (tools/realhost/build.py): both build (or come from the cache)
and run MicroPython's `bluetooth` module with the pairing API; missing sources and a failing
compiler give one clear line; the cache is keyed by the sources and builds once under a race."""

import os
import subprocess
import threading

import pytest

from tools.realhost import build

SMOKE = """
import bluetooth
ble = bluetooth.BLE()
for name in ("active", "config", "irq", "gap_advertise", "gap_connect", "gap_pair", "gap_passkey",
             "gatts_register_services", "gatts_notify"):
    assert hasattr(ble, name), name
ble.config(bond=True, mitm=True, le_secure=True, io=4)
try:
    ble.config("mac")
except OSError as e:
    print("inactive", e.errno)
print("ok", ble.active())
"""


def _interpreter(host):
    try:
        return build.interpreter(host)
    except build.SourcesMissing as e:
        pytest.skip(str(e))


@pytest.mark.parametrize("host", build.HOSTS)
def test_interpreter_runs_bluetooth(host):
    exe = _interpreter(host)
    r = subprocess.run([exe, "-c", SMOKE], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, MICROPYBTUART="/nonexistent"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[-2:] == ["ok", "False"]


def test_the_two_hosts_are_different_nimbles():
    # esp-nimble's HCI transport names its pools; mynewt's older transport has none of them.
    with open(_interpreter("esp"), "rb") as f:
        esp = f.read()
    with open(_interpreter("mynewt"), "rb") as f:
        mynewt = f.read()
    assert b"transport_pool_evt" in esp
    assert b"transport_pool_evt" not in mynewt


def test_missing_sources_is_one_line(monkeypatch, tmp_path):
    monkeypatch.delenv("MPY_SRC", raising=False)
    monkeypatch.setenv("BLESMP_THIRDPARTY", str(tmp_path))
    with pytest.raises(build.SourcesMissing) as e:
        build.interpreter("mynewt")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("real-host tier skipped") and "MPY_SRC=" in msg


def test_a_folder_that_is_not_micropython_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("MPY_SRC", str(tmp_path))
    with pytest.raises(build.SourcesMissing, match="not a MicroPython checkout"):
        build.sources("mynewt")


def test_unknown_host():
    with pytest.raises(ValueError, match="esp, mynewt"):
        build.interpreter("bluedroid")


def _fake_checkout(top):
    sm = top / "lib" / "mynewt-nimble" / "nimble" / "host" / "src" / "ble_sm.c"
    sm.parent.mkdir(parents=True)
    sm.write_text("/* v1 */\n")
    (top / "py").mkdir()
    (top / "py" / "obj.c").write_text("int x;\n")
    return sm


def test_cache_key_follows_the_checkout_content(monkeypatch, tmp_path):
    sm = _fake_checkout(tmp_path)
    monkeypatch.setenv("MPY_SRC", str(tmp_path))
    first = build.build_key("mynewt")
    assert build.build_key("mynewt") == first
    sm.write_text("/* v2 */\n")
    assert build.build_key("mynewt") != first
    (tmp_path / "ports" / "unix" / "build-standard").mkdir(parents=True)
    (tmp_path / "ports" / "unix" / "build-standard" / "x.o").write_text("objects do not count")
    sm.write_text("/* v1 */\n")
    assert build.build_key("mynewt") == first


def test_racing_builds_compile_once_and_share_the_result(monkeypatch, tmp_path):
    _fake_checkout(tmp_path / "src")
    monkeypatch.setenv("MPY_SRC", str(tmp_path / "src"))
    monkeypatch.setenv("BLESMP_REALHOST_CACHE", str(tmp_path / "cache"))
    calls = []
    gate = threading.Event()

    def fake_compile(host, top, log, quiet, extra=()):
        calls.append(host)
        gate.wait(5)
        assert os.path.isfile(os.path.join(top, "py", "obj.c"))  # the tree was copied in
        exe = os.path.join(top, "micropython")
        with open(exe, "w") as f:
            f.write("#!/bin/sh\n")
        os.chmod(exe, 0o755)
        open(log, "w").close()
        return exe

    monkeypatch.setattr(build, "_compile", fake_compile)
    results = []
    threads = [threading.Thread(target=lambda: results.append(build.interpreter("mynewt"))) for _ in range(3)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(10)
    assert calls == ["mynewt"]
    assert len(results) == 3 and len(set(results)) == 1
    assert build.interpreter("mynewt") == results[0] and calls == ["mynewt"]
    # nothing half-built is left beside the result
    left = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert left == [build.build_key("mynewt"), build.build_key("mynewt") + ".lock"]


def test_compiler_failure_names_the_log_and_leaves_no_binary(monkeypatch, tmp_path):
    try:
        build.sources("mynewt")
    except build.SourcesMissing as e:
        pytest.skip(str(e))
    monkeypatch.setenv("BLESMP_REALHOST_CACHE", str(tmp_path))
    monkeypatch.setattr(build, "MAKE_FLAGS", build.MAKE_FLAGS + ("CC=false",))
    with pytest.raises(build.BuildError) as e:
        build.interpreter("mynewt")
    first = str(e.value).splitlines()[0]
    assert first.startswith("building the mynewt real-host interpreter failed") and e.value.log in first
    assert os.path.isfile(e.value.log)
    assert build.cached("mynewt") is None
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
