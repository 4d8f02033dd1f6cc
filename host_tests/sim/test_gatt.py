"""GATT on simulated ESP32 boards: NimBLE's permission checks (reference §2.4), the read
request IRQ, notify/indicate, discovery and the client's statuses."""

import pytest
from simhelpers import (
    _IRQ_ENCRYPTION_UPDATE,
    _IRQ_GATTC_CHARACTERISTIC_DONE,
    _IRQ_GATTC_CHARACTERISTIC_RESULT,
    _IRQ_GATTC_NOTIFY,
    _IRQ_GATTC_READ_DONE,
    _IRQ_GATTC_READ_RESULT,
    _IRQ_GATTC_SERVICE_DONE,
    _IRQ_GATTC_SERVICE_RESULT,
    _IRQ_GATTC_WRITE_DONE,
    _IRQ_GATTS_READ_REQUEST,
    _IRQ_GATTS_WRITE,
    _IRQ_GET_SECRET,
    _IRQ_MTU_EXCHANGED,
    Recorder,
    connect,
)

from tools.blesim import World
from tools.blesim.firmware import UUID, secstruct

_IRQ_GATTC_DESCRIPTOR_RESULT = 13
_IRQ_GATTC_DESCRIPTOR_DONE = 14
_IRQ_GATTC_INDICATE = 19
_IRQ_GATTS_INDICATE_DONE = 20

F_READ, F_WRITE, F_NOTIFY, F_INDICATE = 0x02, 0x08, 0x10, 0x20
F_READ_ENC, F_READ_AUTHEN, F_READ_AUTHOR = 0x0200, 0x0400, 0x0800
F_WRITE_ENC = 0x1000

SVC = UUID("00000000-1111-2222-3333-000000000000")
CHARS = [
    (UUID(0x2A19), F_READ | F_NOTIFY | F_INDICATE),          # open
    (UUID(0x2A1A), F_READ | F_READ_ENC),                      # encrypted
    (UUID(0x2A1B), F_READ | F_READ_AUTHEN),                   # authenticated
    (UUID(0x2A1C), F_READ | F_READ_AUTHOR),                   # authorized
    (UUID(0x2A1D), F_WRITE | F_WRITE_ENC),                    # write, encrypted
    (UUID(0x2A1E), F_WRITE, ((UUID(0x2901), F_READ),)),       # no read; user descriptor
]


def setup(profile="esp32"):
    w = World(profile=profile)
    p, c = w.board("p"), w.board("c")
    rp, rc = Recorder(p.ble), Recorder(c.ble)
    for b, r in ((p, rp), (c, rc)):
        b.ble.irq(r)
        b.ble.active(True)
    ((h_open, h_enc, h_auth, h_author, h_wenc, h_nord, h_dsc),) = p.ble.gatts_register_services(((SVC, CHARS),))
    for h in (h_open, h_enc, h_auth, h_author):
        p.ble.gatts_write(h, b"v%d" % h)
    rp.clear(), rc.clear()
    hp, hc = connect(w, p, c)
    return w, p, c, rp, rc, hp, hc, (h_open, h_enc, h_auth, h_author, h_wenc, h_nord, h_dsc)


def read(w, c, rc, hc, h):
    rc.clear()
    c.ble.gattc_read(hc, h)
    assert w.run_until(lambda: rc.last(_IRQ_GATTC_READ_DONE), 2)
    return rc.last(_IRQ_GATTC_READ_RESULT), rc.last(_IRQ_GATTC_READ_DONE)


def test_register_returns_value_and_descriptor_handles_in_order():
    w, p, c, rp, rc, hp, hc, hs = setup()
    with pytest.raises(OSError) as e:
        p.ble.gatts_register_services(((SVC, CHARS),))  # connected: NimBLE's table is not mutable
    assert e.value.errno == 16
    assert list(hs) == sorted(hs) and len(set(hs)) == 7
    assert hs[6] == hs[5] + 1  # the user descriptor follows its characteristic's value
    assert p.ble.gatts_read(hs[0]) == b"v%d" % hs[0]
    with pytest.raises(OSError):
        p.ble.gatts_read(999)


def test_open_read_fires_read_request_and_returns_value():
    w, p, c, rp, rc, hp, hc, hs = setup()
    res, done = read(w, c, rc, hc, hs[0])
    assert res == (hc, hs[0], b"v%d" % hs[0])
    assert done == (hc, hs[0], 0)
    assert rp.of(_IRQ_GATTS_READ_REQUEST) == [(_IRQ_GATTS_READ_REQUEST, (hp, hs[0]))]


def test_read_request_return_value_is_the_att_error():
    w, p, c, rp, rc, hp, hc, hs = setup()
    rp.read_rc = 0x0E
    res, done = read(w, c, rc, hc, hs[0])
    assert res is None and done == (hc, hs[0], 0x10E)


def test_encrypted_read_without_bond_is_0x05_with_visible_lookup():
    w, p, c, rp, rc, hp, hc, hs = setup()
    rp.clear()
    res, done = read(w, c, rc, hc, hs[1])
    assert done == (hc, hs[1], 0x105)  # 261: Insufficient Authentication
    # NimBLE looked up the peer's LTK (visible), and never asked Python for the read
    assert rp.events == [(_IRQ_GET_SECRET, (2, 0, secstruct.store_key(0, c.public_addr)))]


def test_encrypted_read_with_stored_ltk_is_0x0f_then_works_after_pairing():
    w, p, c, rp, rc, hp, hc, hs = setup()
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE) and rc.last(_IRQ_ENCRYPTION_UPDATE), 5)
    c.ble.gap_disconnect(hc)
    w.run(1)
    hp, hc = connect(w, p, c)
    res, done = read(w, c, rc, hc, hs[1])
    assert done == (hc, hs[1], 0x10F)  # 271: Insufficient Encryption (the peer has a bond)
    rc.clear()
    c.ble.gap_pair(hc)  # the client pairs itself: re-encryption with the stored LTK
    assert w.run_until(lambda: rc.last(_IRQ_ENCRYPTION_UPDATE), 5)
    res, done = read(w, c, rc, hc, hs[1])
    assert done == (hc, hs[1], 0) and res[2] == b"v%d" % hs[1]
    # Just Works is not authenticated: the AUTHEN characteristic still refuses (0x05)
    res, done = read(w, c, rc, hc, hs[2])
    assert done == (hc, hs[2], 0x105)


def test_authorization_is_always_rejected_on_esp32_but_allowed_upstream():
    w, p, c, rp, rc, hp, hc, hs = setup()
    res, done = read(w, c, rc, hc, hs[3])
    assert done == (hc, hs[3], 0x108)
    assert rp.of(_IRQ_GATTS_READ_REQUEST) == []
    w, p, c, rp, rc, hp, hc, hs = setup(profile="nimble")
    res, done = read(w, c, rc, hc, hs[3])
    assert done == (hc, hs[3], 0)


def test_read_not_permitted_and_descriptor_flags():
    w, p, c, rp, rc, hp, hc, hs = setup()
    res, done = read(w, c, rc, hc, hs[5])
    assert done == (hc, hs[5], 0x102)
    res, done = read(w, c, rc, hc, hs[6])  # user descriptor: READ -> read request fires
    assert done == (hc, hs[6], 0)
    assert rp.last(_IRQ_GATTS_READ_REQUEST) == (hp, hs[6])


def test_write_checks_then_gatts_write():
    w, p, c, rp, rc, hp, hc, hs = setup()
    rc.clear()
    c.ble.gattc_write(hc, hs[4], b"x", 1)
    assert w.run_until(lambda: rc.last(_IRQ_GATTC_WRITE_DONE), 2)
    assert rc.last(_IRQ_GATTC_WRITE_DONE) == (hc, hs[4], 0x105)
    assert rp.of(_IRQ_GATTS_WRITE) == []
    c.ble.gattc_write(hc, hs[5], b"hello", 1)
    assert w.run_until(lambda: rp.last(_IRQ_GATTS_WRITE), 2)
    assert rp.last(_IRQ_GATTS_WRITE) == (hp, hs[5])
    assert p.ble.gatts_read(hs[5]) == b"hello"
    w.run(0.1)
    assert rc.last(_IRQ_GATTC_WRITE_DONE) == (hc, hs[5], 0)
    c.ble.gattc_write(hc, hs[0], b"nope", 1)
    assert w.run_until(lambda: rc.last(_IRQ_GATTC_WRITE_DONE)[1] == hs[0], 2)
    assert rc.last(_IRQ_GATTC_WRITE_DONE) == (hc, hs[0], 0x103)
    # write without response: no WRITE_DONE, value stored (truncated to the 20-byte buffer)
    rc.clear()
    c.ble.gattc_write(hc, hs[5], b"y" * 30)
    w.run(0.2)
    assert rc.of(_IRQ_GATTC_WRITE_DONE) == []
    assert p.ble.gatts_read(hs[5]) == b"y" * 20


def test_notify_without_data_reads_with_conn_handle_65535():
    w, p, c, rp, rc, hp, hc, hs = setup()
    rp.clear()
    p.ble.gatts_notify(hp, hs[0])
    assert rp.of(_IRQ_GATTS_READ_REQUEST) == [(_IRQ_GATTS_READ_REQUEST, (65535, hs[0]))]
    assert w.run_until(lambda: rc.last(_IRQ_GATTC_NOTIFY), 2)
    assert rc.last(_IRQ_GATTC_NOTIFY) == (hc, hs[0], b"v%d" % hs[0])
    rp.read_rc = 2
    with pytest.raises(OSError) as e:
        p.ble.gatts_notify(hp, hs[0])
    assert e.value.errno == -9  # BLE_HS_EAPP
    p.ble.gatts_notify(hp, hs[0], b"explicit")
    assert w.run_until(lambda: rc.last(_IRQ_GATTC_NOTIFY)[2] == b"explicit", 2)


def test_indicate_and_confirmation():
    w, p, c, rp, rc, hp, hc, hs = setup()
    p.ble.gatts_indicate(hp, hs[0], b"ind")
    assert w.run_until(lambda: rp.last(_IRQ_GATTS_INDICATE_DONE), 2)
    assert rc.last(_IRQ_GATTC_INDICATE) == (hc, hs[0], b"ind")
    assert rp.last(_IRQ_GATTS_INDICATE_DONE) == (hp, hs[0], 0)


def test_cccd_subscription_and_send_update():
    w, p, c, rp, rc, hp, hc, hs = setup()
    c.ble.gattc_write(hc, hs[0] + 1, b"\x01\x00", 1)  # the CCCD follows the value
    assert w.run_until(lambda: rc.last(_IRQ_GATTC_WRITE_DONE), 2)
    assert rp.of(_IRQ_GATTS_WRITE) == []  # CCCD writes are NimBLE's own
    rp.clear()
    p.ble.gatts_write(hs[0], b"new", True)
    assert rp.events == []  # NimBLE's host task sends later (ble_hs_notifications_sched)
    p.ble.gatts_write(hs[0], b"newer", True)  # before it ran: still one update per connection
    assert w.run_until(lambda: rc.last(_IRQ_GATTC_NOTIFY), 2)
    assert rp.events == [(_IRQ_GATTS_READ_REQUEST, (65535, hs[0]))]  # NimBLE reads it back
    assert rc.of(_IRQ_GATTC_NOTIFY) == [(_IRQ_GATTC_NOTIFY, (hc, hs[0], b"newer"))]


def test_discovery_and_mtu():
    w, p, c, rp, rc, hp, hc, hs = setup()
    rc.clear()
    c.ble.gattc_exchange_mtu(hc)
    assert w.run_until(lambda: rc.last(_IRQ_MTU_EXCHANGED) and rp.last(_IRQ_MTU_EXCHANGED), 2)
    assert rc.last(_IRQ_MTU_EXCHANGED) == (hc, 256) and rp.last(_IRQ_MTU_EXCHANGED) == (hp, 256)
    c.ble.gattc_discover_services(hc)
    assert w.run_until(lambda: rc.last(_IRQ_GATTC_SERVICE_DONE), 2)
    svcs = [d for e, d in rc.of(_IRQ_GATTC_SERVICE_RESULT)]
    assert [d[3] for d in svcs] == [UUID(0x1800), UUID(0x1801), SVC]
    assert rc.last(_IRQ_GATTC_SERVICE_DONE) == (hc, 0)
    s, e = svcs[2][1:3]
    c.ble.gattc_discover_characteristics(hc, s, e)
    with pytest.raises(OSError) as err:
        c.ble.gattc_discover_characteristics(hc, s, e)
    assert err.value.errno == 16  # EBUSY: one characteristic discovery at a time
    assert w.run_until(lambda: rc.last(_IRQ_GATTC_CHARACTERISTIC_DONE), 2)
    chars = [d for ev, d in rc.of(_IRQ_GATTC_CHARACTERISTIC_RESULT)]
    assert [d[4] for d in chars] == [u for u, *_ in CHARS]
    assert [d[2] for d in chars] == list(hs[:6])
    assert [d[3] for d in chars] == [f & 0xFF for _u, f, *_ in CHARS]
    assert chars[-1][1] == e and chars[0][1] == chars[1][2] - 2  # end handles
    c.ble.gattc_discover_descriptors(hc, hs[5], e)
    assert w.run_until(lambda: rc.last(_IRQ_GATTC_DESCRIPTOR_DONE), 2)
    assert rc.of(_IRQ_GATTC_DESCRIPTOR_RESULT) == [(_IRQ_GATTC_DESCRIPTOR_RESULT, (hc, hs[6], UUID(0x2901)))]
    # by UUID
    rc.clear()
    c.ble.gattc_discover_services(hc, SVC)
    assert w.run_until(lambda: rc.last(_IRQ_GATTC_SERVICE_DONE), 2)
    assert [d[1:] for e_, d in rc.of(_IRQ_GATTC_SERVICE_RESULT)] == [(s, e, SVC)]


def test_client_errors_not_connected():
    w, p, c, rp, rc, hp, hc, hs = setup()
    with pytest.raises(OSError) as e:
        c.ble.gattc_read(hc + 5, 1)
    assert e.value.errno == 128
    with pytest.raises(OSError) as e:
        p.ble.gatts_notify(hp + 5, hs[0], b"x")
    assert e.value.errno == 128
    with pytest.raises(OSError) as e:
        c.ble.gattc_write(hc, hs[5], b"x", 2)
    assert e.value.errno == 22


def test_writes_without_response_beyond_the_buffer_pool_get_enomem_until_pdus_leave():
    """NimBLE takes an msys mbuf for each outgoing PDU (ble_hs_mbuf_from_flat) and frees it
    once sent; with the pool (ESP-IDF default 24 blocks) empty the write fails with
    BLE_HS_ENOMEM -> OSError(ENOMEM = 12). upstream perf_gatt_char_write.py retries on OSError;
    a simulator without the limit took no time for 40 writes (and divided by zero)."""
    from tools.blesim.firmware.ble import TX_BUFFERS

    w, p, c, rp, rc, hp, hc, hs = setup()
    sent = 0
    with pytest.raises(OSError) as e:
        for i in range(TX_BUFFERS + 1):
            c.ble.gattc_write(hc, hs[5], bytes([i]), 0)
            sent += 1
    assert e.value.errno == 12 and sent == TX_BUFFERS
    with pytest.raises(OSError):
        c.ble.gattc_write(hc, hs[5], b"x", 0)  # still full: nothing has left yet
    assert w.run_until(lambda: len(rp.of(_IRQ_GATTS_WRITE)) == TX_BUFFERS, 1)
    c.ble.gattc_write(hc, hs[5], b"again", 0)  # delivered PDUs gave their buffers back
    assert w.run_until(lambda: len(rp.of(_IRQ_GATTS_WRITE)) == TX_BUFFERS + 1, 1)
    # notifications draw on the same pool
    for _ in range(TX_BUFFERS):
        p.ble.gatts_notify(hp, hs[0], b"n")
    with pytest.raises(OSError) as e:
        p.ble.gatts_notify(hp, hs[0], b"n")
    assert e.value.errno == 12
