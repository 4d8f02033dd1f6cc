"""The BLE object's mechanics on a simulated ESP32: IRQ delivery, config, errors, the air."""

import time

import pytest
from simhelpers import (
    _IRQ_CENTRAL_CONNECT,
    _IRQ_CENTRAL_DISCONNECT,
    _IRQ_GET_SECRET,
    _IRQ_PERIPHERAL_CONNECT,
    _IRQ_PERIPHERAL_DISCONNECT,
    _IRQ_SCAN_DONE,
    _IRQ_SCAN_RESULT,
    ADV,
    Recorder,
    connect,
)

from tools.blesim import World


def two(profile="esp32", active=True):
    w = World(profile=profile)
    p, c = w.board("p"), w.board("c")
    rp, rc = Recorder(p.ble), Recorder(c.ble)
    p.ble.irq(rp)
    c.ble.irq(rc)
    if active:
        p.ble.active(True)
        c.ble.active(True)
    rp.clear()
    rc.clear()
    return w, p, c, rp, rc


def test_config_read_and_write_as_esp32():
    w = World()
    b = w.board("b")
    ble = b.ble
    assert ble.config("gap_name") == b"MPY ESP32"
    for k in ("bond", "mitm", "io", "le_secure", "addr_mode", "rxbuf", "nope"):
        with pytest.raises(ValueError, match="unknown config param"):
            ble.config(k)
    with pytest.raises(OSError) as e:
        ble.config("mac")
    assert e.value.errno == 19  # ENODEV: stack not active
    with pytest.raises(OSError) as e:
        ble.config(addr_mode=1)
    assert e.value.errno == 19
    with pytest.raises(TypeError):
        ble.config()
    with pytest.raises(TypeError):
        ble.config("mac", "mtu")
    with pytest.raises(TypeError):
        ble.config("mac", bond=1)
    with pytest.raises(ValueError):
        ble.config(foo=1)
    # security keys can be written before active(); writes return None
    assert ble.config(bond=0, mitm=1, io=4, le_secure=0) is None
    assert ble.active(True) is True
    assert ble.active() is True
    assert ble.config("mac") == (0, b.public_addr)
    assert isinstance(ble.config("mac")[1], bytes)
    assert ble.config("mtu") == 256
    ble.config(gap_name="x" * 31)
    with pytest.raises(OSError) as e:
        ble.config(gap_name="x" * 32)
    assert e.value.errno == 22
    ble.config(addr_mode=2)
    with pytest.raises(OSError) as e:
        ble.config("mac")
    assert e.value.errno == 22  # EINVAL in RPA mode
    ble.config(addr_mode=1)
    t, a = ble.config("mac")
    assert t == 1 and a[0] & 0xC0 == 0xC0  # random static
    ble.config(addr_mode=7)  # unknown: silently ignored
    assert ble.config("mac") == (t, a)
    # the security settings survive active(False/True) and reach the SMP engine
    ble.active(False)
    ble.active(True)
    assert (ble._bond, ble._mitm, ble._io, ble._le_secure) == (0, 1, 4, 0)


def test_esp32_defaults_and_nimble_profile_defaults():
    w = World()
    b = w.board("b")
    assert (b.ble._bond, b.ble._mitm, b.ble._le_secure, b.ble._io) == (1, 0, 1, 3)
    n = w.board("n", profile="nimble")
    assert n.ble._bond == 0


def test_irq_rejects_non_callable():
    w = World()
    b = w.board("b")
    with pytest.raises(ValueError, match="invalid handler"):
        b.ble.irq(5)
    assert b.ble.irq(None) is None


def test_irq_data_shape_ints_and_released_readonly_memoryviews():
    w, p, c, rp, rc = two()
    kept = []
    ro = []

    def h(event, data):
        kept.append(data)
        ro.extend(x.readonly for x in data if isinstance(x, memoryview))
        return rp(event, data)

    p.ble.irq(h)
    hp, hc = connect_raw(w, p, c)
    data = [d for d in kept if len(d) == 3 and isinstance(d[2], memoryview)][0]
    conn, addr_type, addr = data
    assert type(conn) is int and type(addr_type) is int
    assert isinstance(addr, memoryview) and ro and all(ro)
    with pytest.raises(ValueError):
        bytes(addr)  # released after the handler returned
    assert rp.last(_IRQ_CENTRAL_CONNECT) == (hp, 0, c.public_addr)


def test_handler_exception_is_printed_and_removes_the_handler(capsys):
    w, p, c, rp, rc = two()

    def bad(event, data):
        raise ValueError("boom")

    p.ble.irq(bad)
    hp, hc = connect_raw(w, p, c)
    out = capsys.readouterr().out
    assert "Unhandled exception in IRQ callback handler" in out
    assert "ValueError: boom" in out
    assert p.ble._handler is None
    # every later event is lost; a secret lookup behaves as "not found"
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: rc.last(28), 5)
    assert rc.last(28) == (hc, 1, 0, 1, 16)  # the central still bonds; the peripheral saw nothing
    err = w.trace.select("irq_error", "p")[0]
    later = [r for r in w.trace.select("irq", "p") if r.seq > err.seq and not r.args.get("raised")]
    assert later and all(r.args.get("dropped") for r in later)
    assert any(r.name == "_IRQ_GET_SECRET" for r in later)  # dropped = "not found"


def connect_raw(w, p, c):
    p.ble.gap_advertise(100000, ADV)
    c.ble.gap_connect(0, p.public_addr)
    assert w.run_until(lambda: c.ble._handler.last(_IRQ_PERIPHERAL_CONNECT), 5)
    return w.trace.select("link", "p", "connect")[0].conn, c.ble._handler.last(_IRQ_PERIPHERAL_CONNECT)[0]


def test_get_secret_returning_wrong_size_or_str_and_none_handler():
    w, p, c, rp, rc = two()
    # IRK of 15 bytes: "not found"; str is a buffer in MicroPython
    b = w.board("b")
    calls = []

    def h(event, data):
        calls.append((event, data[0]))
        if event == _IRQ_GET_SECRET and data[0] == 10:
            return b"x" * 15
        return None

    b.ble.irq(h)
    b.ble.active(True)
    assert (30, 10) in calls  # so a new IRK was offered with SET(10, b'irk', ...)


def test_active_false_raises_the_disconnect_inside_the_call_on_esp32():
    """ESP32: mp_bluetooth_nimble_port_shutdown (ports/esp32/mpnimbleport.c) runs
    nimble_port_stop() -> ble_hs_stop() while the binding is still ACTIVE, so the link's
    disconnect reaches Python inside active(False), and a NimBLE call made from that handler
    fails with BLE_HS_EDISABLED (OSError -30)."""
    w, p, c, rp, rc = two()
    hp, hc = connect(w, p, c)
    p.ble.gap_scan(0)
    rp.clear()
    seen = []

    def on_disconnect(event, data):
        if event == _IRQ_CENTRAL_DISCONNECT:
            seen.append(("active", p.ble.active()))
            try:
                p.ble.gap_advertise(100000)
            except OSError as e:
                seen.append(("gap_advertise", e.errno))
        return rp(event, data)

    p.ble.irq(on_disconnect)
    p.ble.active(False)
    # scanning stops first (SCAN_DONE), then the link ends, all before active(False) returns
    assert rp.events == [(_IRQ_SCAN_DONE, ()), (_IRQ_CENTRAL_DISCONNECT, (hp, 0, c.public_addr))]
    assert seen == [("active", True), ("gap_advertise", -30)]
    assert p.ble.active() is False
    assert w.run_until(lambda: rc.last(_IRQ_PERIPHERAL_DISCONNECT), 2)
    assert rc.last(_IRQ_PERIPHERAL_DISCONNECT) == (hc, 0, p.public_addr)
    with pytest.raises(OSError) as e:
        p.ble.gap_advertise(100000)
    assert e.value.errno == 19


def test_active_false_drops_links_silently_on_upstream_nimble():
    """The default port (mp_bluetooth_nimble_port_shutdown in extmod/nimble/modbluetooth_nimble.c)
    sets the state to STOPPING before ble_hs_stop(): the gap callbacks check
    mp_bluetooth_is_active() and raise nothing; the peer still sees the disconnection."""
    w, p, c, rp, rc = two(profile="nimble")
    hp, hc = connect(w, p, c)
    p.ble.gap_scan(0)
    rp.clear()
    p.ble.active(False)
    assert rp.events == [(_IRQ_SCAN_DONE, ())]
    assert p.ble.active() is False
    assert w.run_until(lambda: rc.last(_IRQ_PERIPHERAL_DISCONNECT), 2)
    assert rc.last(_IRQ_PERIPHERAL_DISCONNECT) == (hc, 0, p.public_addr)
    w.run(1.0)
    assert rp.last(_IRQ_CENTRAL_DISCONNECT) is None


def test_connect_failure_reports_65535_255_zero_addr():
    w, p, c, rp, rc = two()
    c.ble.gap_connect(0, bytes.fromhex("112233445566"), 500)
    w.run(0.4)
    assert rc.last(_IRQ_PERIPHERAL_DISCONNECT) is None
    assert w.run_until(lambda: rc.last(_IRQ_PERIPHERAL_DISCONNECT), 1)
    assert rc.last(_IRQ_PERIPHERAL_DISCONNECT) == (65535, 255, bytes(6))


def test_connect_errors():
    w, p, c, rp, rc = two()
    c.ble.gap_connect(0, bytes(6), 2000)
    with pytest.raises(OSError) as e:
        c.ble.gap_connect(0, bytes(6), 2000)
    assert e.value.errno == 120  # EALREADY
    c.ble.gap_connect(None)  # cancel
    c.ble.gap_connect(0, bytes(6), 100)
    with pytest.raises(ValueError):
        c.ble.gap_connect(0, bytes(5))


def test_disconnect_both_sides_and_return_values():
    w, p, c, rp, rc = two()
    hp, hc = connect(w, p, c)
    assert c.ble.gap_disconnect(hc) is True
    assert w.run_until(lambda: rp.last(_IRQ_CENTRAL_DISCONNECT) and rc.last(_IRQ_PERIPHERAL_DISCONNECT), 2)
    assert rp.last(_IRQ_CENTRAL_DISCONNECT) == (hp, 0, c.public_addr)
    assert c.ble.gap_disconnect(hc) is False
    reasons = {r.board: r.args["reason"] for r in w.trace.select("link", name="disconnect")}
    assert reasons == {"p": 0x13, "c": 0x16}


def test_scan_results_with_rssi_scan_response_and_done():
    w, p, c, rp, rc = two()
    p.ble.gap_advertise(50000, ADV, resp_data=b"\x03\x03\x0f\x18")
    c.ble.gap_scan(500, 30000, 30000, True)
    w.run(0.6)
    res = rc.of(_IRQ_SCAN_RESULT)
    adv = [d for e, d in res if d[2] == 0]
    rsp = [d for e, d in res if d[2] == 4]
    assert adv and rsp
    assert adv[0][0] == 0 and adv[0][1] == p.public_addr and adv[0][4] == ADV
    assert rsp[0][4] == b"\x03\x03\x0f\x18"
    assert all(-60 < d[3] < -20 for d in adv)  # 1 m apart
    assert rc.of(_IRQ_SCAN_DONE) == [(_IRQ_SCAN_DONE, ())]
    # further away: weaker
    w.move(p, (20.0, 0.0))
    rc.clear()
    c.ble.gap_scan(300, 30000, 30000)
    w.run(0.4)
    far = [d[3] for e, d in rc.of(_IRQ_SCAN_RESULT)]
    assert far and max(far) < min(d[3] for d in adv)
    # out of range: nothing
    w.move(p, (500.0, 0.0))
    rc.clear()
    c.ble.gap_scan(300, 30000, 30000)
    w.run(0.4)
    assert rc.of(_IRQ_SCAN_RESULT) == [] and rc.of(_IRQ_SCAN_DONE)


def test_scan_stop_gives_scan_done_and_double_scan_is_ealready():
    w, p, c, rp, rc = two()
    c.ble.gap_scan(0)
    with pytest.raises(OSError) as e:
        c.ble.gap_scan(1000)
    assert e.value.errno == 120
    c.ble.gap_scan(None)
    assert rc.of(_IRQ_SCAN_DONE) == [(_IRQ_SCAN_DONE, ())]


def test_rpa_advertising_changes_address_and_is_not_identity():
    w, p, c, rp, rc = two()
    p.ble.config(addr_mode=2)
    p.ble.gap_advertise(100000, ADV)
    c.ble.gap_scan(300, 30000, 30000)
    w.run(0.4)
    t, a = rc.of(_IRQ_SCAN_RESULT)[0][1][:2]
    assert t == 1 and (a[0] & 0xC0) == 0x40 and a != p.public_addr
    from blesmp import crypto

    assert crypto.ah(p.ble._irk, a[:3]) == a[3:]


def test_out_of_range_supervision_timeout_and_recovery():
    w, p, c, rp, rc = two()
    hp, hc = connect(w, p, c)
    w.set_in_range(p, c, False)
    w.run(1.0)
    w.set_in_range(p, c, True)  # back before the 2.56 s supervision timeout
    w.run(3.0)
    assert rp.last(_IRQ_CENTRAL_DISCONNECT) is None
    w.set_in_range(p, c, False)
    assert w.run_until(lambda: rp.last(_IRQ_CENTRAL_DISCONNECT) and rc.last(_IRQ_PERIPHERAL_DISCONNECT), 3)
    assert {r.args["reason"] for r in w.trace.select("link", name="disconnect")} == {0x08}


def test_power_off_peer_times_out_and_power_on_is_fresh():
    w, p, c, rp, rc = two()
    hp, hc = connect(w, p, c)
    p.power_off()
    assert w.run_until(lambda: rc.last(_IRQ_PERIPHERAL_DISCONNECT), 3)
    p.power_on()
    assert p.ble.active() is False and p.ble._handler is None


def test_time_functions_follow_the_virtual_clock():
    w = World()
    b = w.board("b")
    t0 = time.ticks_ms()
    w.run(1.5)
    assert time.ticks_diff(time.ticks_ms(), t0) == 1500
    time.sleep_ms(250)
    assert time.ticks_diff(time.ticks_ms(), t0) == 1750
    assert time.ticks_add(0x3FFFFFFF, 1) == 0
    assert time.ticks_diff(0, 0x3FFFFFFF) == 1
    with b:
        import machine

        assert machine.unique_id() == b.public_addr
        pin = machine.Pin(0, machine.Pin.IN, machine.Pin.PULL_UP)
        assert pin.value() == 1
        seen = []
        pin.irq(lambda p: seen.append(p.value()), machine.Pin.IRQ_FALLING)
    b.pins[0].set_input(0)
    assert seen == [0]
    ticks = []
    with b:
        tim = machine.Timer(0, period=100, mode=machine.Timer.PERIODIC, callback=lambda t: ticks.append(w.now))
    w.run(0.35)
    tim.deinit()
    w.run(0.5)
    assert len(ticks) == 3 and ticks[1] - ticks[0] == pytest.approx(0.1)


def test_nvs_persists_committed_data_across_reset():
    w = World()
    b = w.board("b")
    with b:
        import esp32

        n = esp32.NVS("app")
        n.set_i32("boots", -5)
        n.set_blob("k", b"abc")
        n.commit()
        n.set_i32("uncommitted", 1)
        assert n.get_i32("uncommitted") == 1
    b.reset()
    with b:
        n = esp32.NVS("app")
        assert n.get_i32("boots") == -5
        buf = bytearray(8)
        assert n.get_blob("k", buf) == 3 and buf[:3] == b"abc"
        with pytest.raises(OSError) as e:
            n.get_i32("uncommitted")
        assert e.value.errno == -4354


def test_bluetooth_module_gives_the_current_boards_singleton():
    import bluetooth

    w = World()
    a, b = w.board("a"), w.board("b")
    with b:
        assert bluetooth.BLE() is b.ble
        assert bluetooth.BLE() is bluetooth.BLE()
    with a:
        assert bluetooth.BLE() is a.ble
    assert repr(bluetooth.UUID(0x2A6E)) == "UUID(0x2a6e)"
    u = bluetooth.UUID("6E400001-B5A3-F393-E0A9-E50E24DCCA9E")
    assert repr(u) == "UUID('6e400001-b5a3-f393-e0a9-e50e24dcca9e')"
    assert bytes(u)[::-1].hex() == "6e400001b5a3f393e0a9e50e24dcca9e"
    assert {n for n in dir(bluetooth) if n.startswith("FLAG_")} == {
        "FLAG_READ", "FLAG_WRITE", "FLAG_NOTIFY", "FLAG_INDICATE", "FLAG_WRITE_NO_RESPONSE"}


def test_trace_records_calls_irqs_pdus_and_link_events():
    w, p, c, rp, rc = two()
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    w.run(2)
    kinds = {r.kind for r in w.trace.records}
    assert {"call", "return", "irq", "pdu", "link", "host"} <= kinds
    from tools.blesim.trace import Trace

    again = Trace.from_jsonl(w.trace.to_jsonl())
    assert [r.to_dict() for r in again.records] == [r.to_dict() for r in w.trace.records]
    pdus = [r for r in w.trace.records if r.kind == "pdu" and r.args["layer"] == "smp"]
    assert pdus[0].name == "PAIRING_REQUEST" and pdus[0].board == "c" and pdus[0].peer == "p"


def test_non_connectable_advertising_is_adv_scan_ind_and_answers_scan_requests():
    """modbluetooth_nimble.c mp_bluetooth_gap_advertise_start passes disc_mode =
    BLE_GAP_DISC_MODE_GEN whatever `connectable` is, and NimBLE's ble_gap_adv_type() makes a
    non-connectable, discoverable set ADV_SCAN_IND (2), never ADV_NONCONN_IND (3): so the
    upstream ble_gap_advertise.py.exp prints "adv_types: [0, 2]". A scannable advertiser
    answers an active scan's SCAN_REQ (type 4), with empty data when no response was set."""
    w, p, c, rp, rc = two()
    p.ble.gap_advertise(50000, ADV, connectable=False)
    c.ble.gap_scan(500, 30000, 30000, True)
    w.run(0.6)
    types = {d[2] for e, d in rc.of(_IRQ_SCAN_RESULT)}
    assert types == {2, 4}
    assert {d[4] for e, d in rc.of(_IRQ_SCAN_RESULT) if d[2] == 4} == {b""}
    rc.clear()
    p.ble.gap_advertise(50000, ADV, connectable=True)
    c.ble.gap_scan(300, 30000, 30000)  # passive: no scan requests, no type 4
    w.run(0.4)
    assert {d[2] for e, d in rc.of(_IRQ_SCAN_RESULT)} == {0}


def test_boards_get_addresses_no_board_has():
    w = World()
    a = w.board("a", addr=bytes.fromhex("a4cf12000002"))
    b = w.board("b")  # the next simulator address no board has
    assert (a.public_addr.hex(), b.public_addr.hex()) == ("a4cf12000002", "a4cf12000003")
    # given explicitly, another board's address is allowed in-process: a spoofing attacker
    # (the broker refuses it for board processes: host_tests/process/test_protocol.py)
    assert w.board("spoof", addr=a.public_addr).public_addr == a.public_addr
