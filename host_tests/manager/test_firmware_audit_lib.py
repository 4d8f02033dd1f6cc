"""lib/ against the firmware facts of issue 16's audit items 4 and 5 (tools/blesim models them;
host_tests/sim/test_firmware_audit.py pins the firmware side)."""

from simkit import Dev, Phone, World, both_done, connect

from blesmp import const as C
from tools.smp import const as SC


def test_a_key_exchange_failure_after_a_passkey_pairing_is_an_authenticated_unbonded_link():
    """Item 4 (ble_sm_enc_event_rx sets authenticated at ENC_START): the peer's Pairing Failed in
    key distribution leaves an encrypted, authenticated link and the update (h, 1, 1, 0, 16),
    which Python cannot tell from a pairing the peer did not bond. The manager reports what the
    link is, level 3 unbonded, and stores nothing."""
    w = World(seed=3)
    p = Dev(w, "p", io=C.IO_DISPLAY_ONLY, mitm=True)
    c = Phone(w, "c", io=C.IO_KEYBOARD_DISPLAY, mitm=True)
    shown = []
    p.answers["PASSKEY_NOTIF"] = lambda d, conn, v: shown.append(v)
    c.answers["PASSKEY_REQ"] = lambda d, conn, v: w.schedule(0.3, d.sm.passkey_reply, conn, True, shown[-1])
    hc, hp = connect(w, c, p)
    c.sm.pair(hc)
    assert w.run_until(lambda: w.trace.select("pdu", "p", "IDENTITY_INFORMATION"), 20)
    w.air.send(w.air.links[0], c.board, 6, bytes([SC.PAIRING_FAILED, SC.UNSPECIFIED_REASON]))
    w.run(5)
    r = p.result()
    assert (r.success, r.level, r.authenticated, r.bonded) == (True, C.LEVEL_MITM, 1, 0)
    assert p.store.bonds() == []
    w.close()


def test_an_unbonded_pairing_exchanges_keys_and_the_manager_keeps_no_bond():
    """Item 5 (ble_sm_pair_req_fill distributes keys without bonding): the peer's identity keys
    cross the link, but without BLE_SM_PROC_F_BONDING nothing reaches the store; the manager
    reports an unbonded level-2 link under the connection address."""
    w = World(seed=4)
    p = Dev(w, "p", bond=False)
    c = Dev(w, "c", bond=False)
    hc, hp = connect(w, c, p)
    c.sm.pair(hc)
    assert both_done(w, p, c, 10)
    assert w.trace.select("pdu", "c", "IDENTITY_INFORMATION")
    for d, peer in ((p, c), (c, p)):
        r = d.result()
        assert (r.success, r.level, r.bonded) == (True, C.LEVEL_ENCRYPT, 0)
        assert (r.addr_type, r.addr) == (peer.board.addr_type, peer.board.public_addr)
        assert d.store.bonds() == []
    w.close()
