"""run.py / run_boards: unmodified board scripts, one process each (MicroPython and CPython
mixed), on one simulated air; the trace and its sequence chart (text and SVG)."""

import io
import os
import xml.etree.ElementTree as ET

import pytest

from tools.blesim import render
from tools.blesim.run import micropython_exe, run_boards

HERE = os.path.dirname(os.path.abspath(__file__))


def _mp_ok():
    try:
        micropython_exe()
        return True
    except RuntimeError:
        return False


@pytest.mark.parametrize("periph_interp", ["mp", "cpython"])
def test_two_boards_pair_and_trace(periph_interp, tmp_path):
    if periph_interp == "mp" and not _mp_ok():
        pytest.skip("no micropython")
    out = io.StringIO()
    svg = tmp_path / "chart.svg"
    res = run_boards([(HERE + "/scripts/periph_plain.py", {"name": "lock"}, periph_interp),
                      (HERE + "/scripts/central_plain.py", {"name": "fob"}, "cpython")],
                     trace=str(svg), out=out, width=140, timeout=60)
    by = {r.name: r for r in res}
    assert by["lock"].rc == 0 and by["fob"].rc == 0, out.getvalue()
    assert by["fob"].lines == ["found lock", "encryption (1, 0, 1, 16)", "battery 100", "bye"]
    assert by["lock"].lines == ["connected", "encrypted 1 bonded 1 key_size 16", "disconnected",
                                "stored types [1, 2, 10]"]
    tr = res.trace
    # every layer is in the trace: API calls, IRQs with the handler's answers, SMP PDUs, link events
    smp = [r.name for r in tr.select(kind="pdu") if r.args.get("layer") == "smp"]
    assert smp[:2] == ["PAIRING_REQUEST", "PAIRING_RESPONSE"]
    assert "PAIRING_DHKEY_CHECK" in smp
    sets = [r for r in tr.select(kind="irq", board="lock", name="_IRQ_SET_SECRET")]
    assert any(r.args["result"] is True and r.args["data"][0] == 2 for r in sets)
    assert tr.select(kind="call", board="fob", name="gap_pair")
    assert tr.select(kind="link", board="lock", name="enc_change")
    # the chart: printed after the run, and as an SVG document
    text = out.getvalue()
    assert "[ lock ]" in text and "[ fob ]" in text
    lines = text.splitlines()
    i = [n for n, ln in enumerate(lines) if "PAIRING_REQUEST" in ln][0]
    # drawn as an arrow between the two hosts (under its label when the label is too long to sit on it)
    assert any("<-" in ln or "->" in ln for ln in lines[i:i + 2])
    phases = [ln.strip("= ") for ln in text.splitlines() if ln.strip().startswith("===")]
    assert phases == ["Phase 1: Pairing Feature Exchange",
                      "Phase 2: LE Secure Connections (public keys, authentication, DHKey check)",
                      "Encryption with the key from phase 2", "Phase 3: Transport Specific Key Distribution"]
    root = ET.parse(str(svg)).getroot()
    assert root.tag.endswith("svg")
    labels = [t.text for t in root.iter() if t.tag.endswith("text")]
    assert any(x.startswith("PAIRING_REQUEST ") for x in labels) and "Host (SMP/ATT)" in labels


def test_render_layout_directions():
    from tools.blesim.trace import Trace

    t = Trace()
    t.add("call", "a", "gap_pair", args={"args": [0], "kwargs": {}})
    t.add("return", "a", "gap_pair", args={"result": None})
    t.add("pdu", "a", "PAIRING_REQUEST", peer="b", args={"layer": "smp"})
    t.add("irq", "b", "_IRQ_ENCRYPTION_UPDATE", args={"event": 28, "data": [0, 1, 0, 1, 16], "result": None})
    t.add("link", "b", "enc_change", args={"status": 0})
    titles, rows = render.layout(t, phases=False)
    assert [x for x in titles[:4]] == [("a", "app"), ("a", "api"), ("a", "host"), ("a", "ll")]
    assert [x[1] for x in titles[4:]] == ["ll", "host", "api", "app"]  # the peer is mirrored
    call, pdu, irq, link = rows
    assert (call.src, call.dst, call.label) == (0, 1, "gap_pair(0)")  # merged with its return
    assert (pdu.src, pdu.dst) == (2, 5)  # a's host to b's host
    assert (irq.src, irq.dst) == (6, 7) and irq.label == "_IRQ_ENCRYPTION_UPDATE 0,1,0,1,16"
    assert link.src == link.dst == 4
    txt = render.text(t, width=120)
    assert "PAIRING_REQUEST" in txt and ">" in txt.splitlines()[[i for i, ln in enumerate(txt.splitlines())
                                                                 if "PAIRING_REQUEST" in ln][0]]
    ET.fromstring(render.svg(t))
    _, rows = render.layout(t)
    assert [r.label for r in rows if r.style == "phase"] == ["Phase 1: Pairing Feature Exchange"]
    assert rows[1].style == "phase" and rows[2].label == "PAIRING_REQUEST"


@pytest.mark.parametrize("interp", ["mp", "cpython"])
def test_machine_reset_boots_the_script_again(interp, tmp_path):
    if interp == "mp" and not _mp_ok():
        pytest.skip("no micropython")
    res = run_boards([(HERE + "/scripts/reboot.py", {"name": "b", "fs": str(tmp_path)}, interp)],
                     quiet=True, timeout=60)
    assert res[0].rc == 0
    assert res[0].lines == ["boot 1 active False t>=500 False", "boot 2 active False t>=500 True", "done"]
    assert [r.name for r in res.trace.select(kind="link", board="b")].count("reset") >= 1


@pytest.mark.parametrize("interp", ["mp", "cpython"])
def test_blesmp_aio_central_pairs_and_bonds(interp, tmp_path):
    """lib/blesmp (SecurityManager via blesmp.aio, BondStore on the board's directory) driven
    by asyncio in a board process, against a plain peripheral script."""
    if interp == "mp" and not _mp_ok():
        pytest.skip("no micropython")
    res = run_boards([(HERE + "/scripts/periph_plain.py", {"name": "lock"}, "cpython"),
                      (HERE + "/scripts/central_aio.py", {"name": "fob", "fs": str(tmp_path)}, interp)],
                     quiet=True, timeout=60)
    by = {r.name: r for r in res}
    assert by["fob"].rc == 0, by["fob"].lines
    assert by["fob"].lines == ["paired True level 2 bonded 1 key_size 16", "bonds 1 file True", "bye"]
    assert by["lock"].lines == ["connected", "encrypted 1 bonded 1 key_size 16", "disconnected",
                                "stored types [1, 2, 10]"]
    assert (tmp_path / "bonds.db").exists()


@pytest.mark.parametrize("interp", ["mp", "cpython"])
def test_a_refused_pairing_and_disconnect_leave_the_board_process_running(interp, tmp_path):
    """lib refuses the pairing (window closed) and disconnects from a micropython.schedule()d
    callback; the broker may end the board's sleep before it answers that gap_disconnect.
    The CPython board process died of it ("OSError: [Errno 5] blesim: unexpected res")."""
    if interp == "mp" and not _mp_ok():
        pytest.skip("no micropython")
    res = run_boards([(HERE + "/scripts/periph_window.py", {"name": "lock", "addr": "a4cf12000001",
                                                            "fs": str(tmp_path)}, interp),
                      (HERE + "/scripts/central_pair.py", {"name": "fob"}, "cpython")],
                     quiet=True, timeout=60)
    by = {r.name: r for r in res}
    assert by["lock"].rc == 0, by["lock"].lines
    assert by["lock"].lines == ["refused NOT_IN_WINDOW", "still running, bonds 0"]
    assert by["fob"].lines == ["disconnected by the peripheral False"]


def test_addresses_follow_the_order_of_the_boards_not_who_joins_first(tmp_path):
    """The i-th board gets the i-th address (a4cf12000001, ...02) whichever process reaches the
    broker first; one given with --addr is skipped by the others (no two boards share one)."""
    mac = HERE + "/scripts/mac.py"
    for _ in range(2):
        res = run_boards([(mac, {"name": "a"}, "cpython"), (mac, {"name": "b"}, "cpython"),
                          (mac, {"name": "c"}, "cpython")], quiet=True, timeout=60)
        assert [(r.name, r.lines) for r in res] == [("a", ["a4cf12000001"]), ("b", ["a4cf12000002"]),
                                                   ("c", ["a4cf12000003"])]
    res = run_boards([(mac, {"name": "a"}, "cpython"), (mac, {"name": "b", "addr": "a4cf12000001"}, "cpython")],
                     quiet=True, timeout=60)
    assert [(r.name, r.lines) for r in res] == [("a", ["a4cf12000002"]), ("b", ["a4cf12000001"])]


@pytest.mark.parametrize("interp", ["mp", "cpython"])
def test_an_exception_lib_catches_is_logged_with_its_traceback(interp, tmp_path):
    """lib logs what the app's handler raised with sys.print_exception, which the firmware has;
    a CPython board process has one too (MicroPython's format), so the log shows the frames."""
    if interp == "mp" and not _mp_ok():
        pytest.skip("no micropython")
    res = run_boards([(HERE + "/scripts/handler_raises.py", {"name": "b", "fs": str(tmp_path)}, interp)],
                     quiet=True, timeout=60)
    lines = [ln.replace(HERE + "/scripts/", "") for ln in res[0].lines]
    with open(HERE + "/scripts/handler_raises.py") as f:
        IRQ_LINE = f.read().split("\n").index("    helper(0)") + 1
    assert lines[0] == "blesmp: application IRQ handler raised on event 6"
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[3:5] == ['  File "handler_raises.py", line %d, in irq' % IRQ_LINE,
                          '  File "handler_raises.py", line %d, in helper' % (IRQ_LINE - 4)]
    assert lines[5].startswith("ZeroDivisionError: divi") and lines[-1] == "done"


def test_boards_left_waiting_with_nothing_to_wake_them_end_the_run_with_a_message():
    """The lock waits (asyncio, no timeout) for a connection; the fob has ended. No launcher
    timeout is set: the run ends anyway, saying why, with the waiting board killed."""
    out = io.StringIO()
    res = run_boards([(HERE + "/scripts/wait_forever.py", {"name": "lock"}, "cpython"),
                      (HERE + "/scripts/mac.py", {"name": "fob"}, "cpython")], out=out, prefix=False)
    by = {r.name: r for r in res}
    assert by["lock"].lines == ["waiting"] and by["lock"].rc != 0
    assert by["fob"].rc == 0
    assert out.getvalue().splitlines()[-1] == ("blesim: every board is waiting and nothing can wake them (fob ended): "
                                               "lock stopped")
