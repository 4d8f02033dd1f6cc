"""SecurityManager on simulated ESP32 boards (tools/blesim): the ESP-IDF SMP flows end to end,
the failure cases, and the policy features. Virtual time only.

"phone" = a central whose firmware forwards passkey prompts (simkit.Phone): stock ESP32
firmware never does that as central, so flows where the central must type or compare need it.
"""

import pytest
from simkit import Dev, Phone, World, both_done, connect, done, world_fixture

from blesmp import const as C
from blesmp.agents import CallbackAgent

w = world_fixture(7)


def ltk_of(dev):
    bonds = dev.store.bonds()
    assert len(bonds) == 1, bonds
    assert bonds[0].ltk is not None
    return bonds[0].ltk


def pdus(w, name, after=0.0):
    return [r for r in w.trace.records if r.kind == "pdu" and r.name == name and r.t >= after]


# ---------------------------------------------------------------- the three ESP-IDF flows


def test_flow_just_works_initiated_by_central(w):
    p = Dev(w, "periph")
    c = Dev(w, "central")
    hc, hp = connect(w, c, p)
    assert c.call(c.sm.pair, hc)
    assert both_done(w, c, p)
    assert c.names() == ["BOND_ADDED", "AUTH_CMPL"]
    assert p.names() == ["SEC_REQ", "BOND_ADDED", "AUTH_CMPL"]
    for d in (c, p):
        r = d.result()
        assert r.success and r.reason == C.OK and r.level == 2
        assert (r.encrypted, r.authenticated, r.bonded, r.key_size, r.sc) == (1, 0, 1, 16, 1)
        assert d.sm.state(r.conn).level == 2
    assert c.result().addr == p.board.public_addr and p.result().addr == c.board.public_addr
    assert ltk_of(c) == ltk_of(p)


def _passkey_flow(w, periph_io, phone_io):
    p = Dev(w, "periph", io=periph_io, mitm=True)
    ph = Phone(w, "phone", io=phone_io, mitm=True)
    shown = {}
    for d in (p, ph):
        d.answers["PASSKEY_NOTIF"] = lambda dev, conn, v: shown.setdefault("pk", v)
    for d in (p, ph):
        # the user reads the code on one device and types it on the other (a moment later)
        d.answers["PASSKEY_REQ"] = lambda dev, conn, v: w.schedule(
            3.0, lambda: dev.call(dev.sm.passkey_reply, conn, True, shown["pk"]))
    hc, hp = connect(w, ph, p)
    ph.call(ph.sm.pair, hc)
    assert both_done(w, p, ph)
    return p, ph, shown["pk"]


def test_flow_passkey_entry_esp32_displays(w):
    p, ph, pk = _passkey_flow(w, C.IO_DISPLAY_ONLY, C.IO_KEYBOARD_ONLY)
    assert p.names() == ["SEC_REQ", "PASSKEY_NOTIF", "BOND_ADDED", "AUTH_CMPL"]
    assert ph.names() == ["PASSKEY_REQ", "BOND_ADDED", "AUTH_CMPL"]
    assert 0 <= pk <= 999999
    for d in (p, ph):
        r = d.result()
        assert r.success and r.authenticated == 1 and r.sc == 1 and r.level == 4
    assert ltk_of(p) == ltk_of(ph)
    # what the ESP32 injected is what it reported
    inj = [r for r in w.trace.records if r.kind == "call" and r.board == "periph" and r.name == "gap_passkey"]
    assert [x.args["args"] for x in inj] == [[0, 3, pk]]


def test_flow_passkey_entry_esp32_types(w):
    p, ph, pk = _passkey_flow(w, C.IO_KEYBOARD_ONLY, C.IO_DISPLAY_ONLY)
    assert p.names() == ["SEC_REQ", "PASSKEY_REQ", "BOND_ADDED", "AUTH_CMPL"]
    assert ph.names() == ["PASSKEY_NOTIF", "BOND_ADDED", "AUTH_CMPL"]
    assert p.result().success and p.result().level == 4 and ph.result().success


def test_flow_bond_power_cycle_reconnect_with_stored_ltk(w):
    p = Dev(w, "periph")
    c = Dev(w, "central")
    hc, hp = connect(w, c, p)
    c.call(c.sm.pair, hc)
    assert both_done(w, c, p)
    ltk = ltk_of(p)
    p.power_cycle()
    c.power_cycle()
    t_boot = w.now
    assert [b.addr for b in p.store.bonds()] == [c.board.public_addr]  # read back from flash
    hc, hp = connect(w, c, p)
    c.call(c.sm.pair, hc)
    assert both_done(w, c, p)
    for d in (c, p):
        r = d.result()
        assert d.names() == ["AUTH_CMPL"]  # no SEC_REQ, no new bond: re-encryption
        assert r.success and r.reencrypt and r.bonded == 1 and r.key_size == 16 and r.sc == 1
    assert not pdus(w, "PAIRING_REQUEST", after=t_boot)
    assert ltk_of(p) == ltk == ltk_of(c)


@pytest.mark.parametrize("profile", ["esp32-v1.25", "esp32-v1.23"])
def test_old_firmware_order_update_before_keys(w, profile):
    p = Dev(w, "periph", profile=profile)
    c = Dev(w, "central", profile=profile)
    hc, hp = connect(w, c, p)
    c.call(c.sm.pair, hc)
    assert both_done(w, c, p)
    assert p.names() == ["SEC_REQ", "BOND_ADDED", "AUTH_CMPL"]
    assert p.result().success and p.result().sc == 1 and ltk_of(p) == ltk_of(c)


# ---------------------------------------------------------------- numeric comparison


def test_numeric_comparison_accepted(w):
    p = Dev(w, "periph", io=C.IO_DISPLAY_YESNO, mitm=True)
    ph = Phone(w, "phone", io=C.IO_DISPLAY_YESNO, mitm=True)
    numbers = []
    for d in (p, ph):
        d.answers["NC_REQ"] = lambda dev, conn, v: (numbers.append(v), dev.sm.confirm_reply(conn, True))
    hc, hp = connect(w, ph, p)
    ph.call(ph.sm.pair, hc)
    assert both_done(w, p, ph)
    assert len(numbers) == 2 and numbers[0] == numbers[1]
    assert p.names() == ["SEC_REQ", "NC_REQ", "BOND_ADDED", "AUTH_CMPL"]
    assert p.result().level == 4 and ph.result().level == 4


def test_numeric_comparison_rejected(w):
    p = Dev(w, "periph", io=C.IO_DISPLAY_YESNO, mitm=True)
    ph = Phone(w, "phone", io=C.IO_DISPLAY_YESNO, mitm=True)
    p.answers["NC_REQ"] = lambda dev, conn, v: dev.sm.confirm_reply(conn, False)
    ph.answers["NC_REQ"] = lambda dev, conn, v: w.schedule(2.0, dev.call, dev.sm.confirm_reply, conn, True)
    hc, hp = connect(w, ph, p)
    t0 = w.now
    ph.call(ph.sm.pair, hc)
    assert both_done(w, p, ph)
    assert w.now - t0 < 10  # promptly, not after the 30 s SMP timeout
    assert p.result().reason == C.REJECTED and not p.result().success
    assert not ph.result().success and ph.result().reason in (C.PEER_FAILED, C.AUTH_FAILED)
    assert pdus(w, "PAIRING_FAILED")  # the peer was told (0x0C)
    assert p.store.bonds() == [] and ph.store.bonds() == []


# ---------------------------------------------------------------- failures


def test_wrong_passkey(w):
    p = Dev(w, "periph", io=C.IO_DISPLAY_ONLY, mitm=True)
    ph = Phone(w, "phone", io=C.IO_KEYBOARD_ONLY, mitm=True)
    shown = []
    p.answers["PASSKEY_NOTIF"] = lambda dev, conn, v: shown.append(v)
    ph.answers["PASSKEY_REQ"] = lambda dev, conn, v: dev.sm.passkey_reply(conn, True, (shown[-1] + 1) % 1000000)
    hc, hp = connect(w, ph, p)
    ph.call(ph.sm.pair, hc)
    assert both_done(w, p, ph)
    assert p.result().reason == C.AUTH_FAILED and ph.result().reason == C.AUTH_FAILED
    assert p.store.bonds() == [] and ph.store.bonds() == []


def _leaves_when_pairing_fails(dev):
    # a phone's OS: Pairing Failed (its failed ENCRYPTION_UPDATE), then it drops the link at once
    def irq(event, data):
        if event == 28 and not data[1]:
            dev.ble.gap_disconnect(data[0])

    return irq


def test_wrong_passkey_then_the_phone_leaves(w):
    # NimBLE on the lock finds the mismatch, sends Pairing Failed and raises the failed update; the
    # phone's disconnection comes a connection interval later, inside the lock's 250 ms grace: a
    # later host delivery, so the lock names the wrong passkey, not a lost link.
    p = Dev(w, "periph", io=C.IO_DISPLAY_ONLY, mitm=True)
    ph = Phone(w, "phone", io=C.IO_KEYBOARD_ONLY, mitm=True)
    ph.kw["handler"] = _leaves_when_pairing_fails(ph)
    ph.boot()
    shown, links = [], []
    p.answers["PASSKEY_NOTIF"] = lambda dev, conn, v: shown.append(v)
    p.answers["AUTH_CMPL"] = lambda dev, conn, v: links.append((w.now, len(dev.sm.connections())))
    ph.answers["PASSKEY_REQ"] = lambda dev, conn, v: dev.sm.passkey_reply(conn, True, (shown[-1] + 1) % 1000000)
    hc, hp = connect(w, ph, p)
    ph.call(ph.sm.pair, hc)
    assert both_done(w, p, ph)
    assert p.result().reason == C.AUTH_FAILED and ph.result().reason == C.AUTH_FAILED
    failed = pdus(w, "PAIRING_FAILED")
    assert [r.board for r in failed] == ["periph"]
    # reported at the DISCONNECT (the link was gone), 2 connection intervals after Pairing Failed
    assert links[0][1] == 0 and 0.05 < links[0][0] - failed[0].t < 0.25, (links, failed[0].t)
    assert p.store.bonds() == [] and ph.store.bonds() == []


def test_link_lost_after_the_passkey_was_shown(w):
    # The link goes while the phone's user types: NimBLE ends the pairing and the link in one host
    # call (the failed update, then the DISCONNECT, back to back): LINK_LOST, although a passkey
    # was shown (a failure in a later delivery would be AUTH_FAILED)
    p = Dev(w, "periph", io=C.IO_DISPLAY_ONLY, mitm=True)
    ph = Phone(w, "phone", io=C.IO_KEYBOARD_ONLY, mitm=True)
    ph.answers["PASSKEY_REQ"] = lambda dev, conn, v: w.set_in_range(p.board, ph.board, False)
    hc, hp = connect(w, ph, p)
    ph.call(ph.sm.pair, hc)
    assert both_done(w, p, ph, 10)
    assert p.names()[:2] == ["SEC_REQ", "PASSKEY_NOTIF"]
    assert p.result().reason == C.LINK_LOST and ph.result().reason == C.LINK_LOST
    irqs = [r.name for r in w.trace.records if r.kind == "irq" and r.board == "periph"]
    assert irqs[-2:] == ["_IRQ_ENCRYPTION_UPDATE", "_IRQ_CENTRAL_DISCONNECT"], irqs[-4:]


def test_prompt_timeout_before_smp_timeout(w):
    p = Dev(w, "periph", io=C.IO_KEYBOARD_ONLY, mitm=True, prompt_timeout_ms=20000)
    ph = Phone(w, "phone", io=C.IO_DISPLAY_ONLY, mitm=True)
    hc, hp = connect(w, ph, p)
    t0 = w.now
    ph.call(ph.sm.pair, hc)  # nobody types the code on the ESP32
    assert w.run_until(done(p), 40)
    assert p.result().reason == C.PROMPT_TIMEOUT
    assert 19 < w.now - t0 < 25
    assert "PROMPT_CANCEL" in p.names()
    assert w.run_until(done(ph), 5)  # the link was dropped: the phone knows at once
    assert ph.result().reason == C.LINK_LOST
    assert not p.sm.connections()


def test_link_lost_mid_pairing(w):
    p = Dev(w, "periph", io=C.IO_DISPLAY_YESNO, mitm=True)
    ph = Phone(w, "phone", io=C.IO_DISPLAY_YESNO, mitm=True)
    ph.answers["NC_REQ"] = lambda dev, conn, v: w.set_in_range(p.board, ph.board, False)
    hc, hp = connect(w, ph, p)
    t0 = w.now
    ph.call(ph.sm.pair, hc)
    assert both_done(w, p, ph, 10)
    assert w.now - t0 < 5
    assert p.result().reason == C.LINK_LOST and ph.result().reason == C.LINK_LOST
    assert p.store.bonds() == []


def test_key_size_below_minimum(w):
    p = Dev(w, "periph", min_key_size=16)
    ph = Phone(w, "phone", max_key_size=10)
    hc, hp = connect(w, ph, p)
    ph.call(ph.sm.pair, hc)
    assert both_done(w, p, ph)
    r = p.result()
    assert r.reason == C.KEY_TOO_SHORT and r.key_size == 10
    assert p.store.bonds() == []
    w.run(1)
    assert not p.sm.connections() and not ph.sm.connections()
    # the same peer with min_key_size=7 on the ESP32 would have bonded: the floor is what refused
    w2 = World(seed=8)
    try:
        p2 = Dev(w2, "periph", min_key_size=7)
        ph2 = Phone(w2, "phone", max_key_size=10)
        hc, hp = connect(w2, ph2, p2)
        ph2.call(ph2.sm.pair, hc)
        assert both_done(w2, p2, ph2)
        assert p2.result().success and p2.result().key_size == 10
    finally:
        w2.close()


def test_sc_only_against_legacy_only_peer(w):
    p = Dev(w, "periph", io=C.IO_DISPLAY_ONLY, sc_only=True)
    ph = Phone(w, "phone", io=C.IO_KEYBOARD_ONLY, mitm=True, sc=False)
    shown = []
    p.answers["PASSKEY_NOTIF"] = lambda dev, conn, v: shown.append(v)
    ph.answers["PASSKEY_REQ"] = lambda dev, conn, v: dev.sm.passkey_reply(conn, True, shown[-1])
    hc, hp = connect(w, ph, p)
    ph.call(ph.sm.pair, hc)
    assert both_done(w, p, ph)
    r = p.result()
    assert r.reason == C.LEGACY_UNDER_SC_ONLY and r.sc == 0 and r.authenticated == 1
    assert p.store.bonds() == []
    w.run(1)
    assert not p.sm.connections()


def _nc_pairing(w, **periph_kw):
    # The phone pairs with the peripheral by numeric comparison, both users confirming; returns
    # both devices and the phone's connection handle.
    p = Dev(w, "periph", io=C.IO_DISPLAY_YESNO, **periph_kw)
    ph = Phone(w, "phone", io=C.IO_DISPLAY_YESNO, mitm=True)
    for d in (p, ph):
        d.answers["NC_REQ"] = lambda dev, conn, v: dev.sm.confirm_reply(conn, True)
    hc, hp = connect(w, ph, p)
    ph.call(ph.sm.pair, hc)
    assert both_done(w, p, ph)
    return p, ph, hc


def test_sc_only_accepts_sc_peer(w):
    p, ph, _hc = _nc_pairing(w, sc_only=True)
    assert p.result().success and p.result().level == 4


# ---------------------------------------------------------------- accept / reject


def test_rejected_incoming_pairing(w):
    asked = []
    agent = CallbackAgent(accept=lambda conn, t, a: asked.append(bytes(a)) or False)
    p = Dev(w, "periph", agent=agent)
    c = Dev(w, "central")
    hc, hp = connect(w, c, p)
    c.call(c.sm.pair, hc)
    assert both_done(w, c, p, 10)
    assert asked == [c.board.public_addr]
    assert p.names() == ["SEC_REQ", "AUTH_CMPL"] and p.result().reason == C.REJECTED
    assert not c.result().success
    assert p.store.bonds() == [] and c.store.bonds() == []
    w.run(1)
    assert not p.sm.connections() and not c.sm.connections()


def test_pairing_window(w):
    p = Dev(w, "periph", window=True)
    c = Dev(w, "central")
    hc, hp = connect(w, c, p)
    c.call(c.sm.pair, hc)
    assert both_done(w, c, p, 10)
    assert p.result().reason == C.NOT_IN_WINDOW and p.store.bonds() == []
    w.run(3)
    p.call(p.sm.open_window, 30)  # the user presses the pairing button
    p.events.clear()
    c.events.clear()
    hc, hp = connect(w, c, p)
    c.call(c.sm.pair, hc)
    assert both_done(w, c, p, 10)
    assert p.result().success and len(p.store.bonds()) == 1
    # a bonded peer reconnects with the window closed
    w.run(40)
    assert not p.sm.window_open()
    c.call(c.ble.gap_disconnect, hc)
    w.run(1)
    p.events.clear()
    c.events.clear()
    hc, hp = connect(w, c, p)
    c.call(c.sm.pair, hc)
    assert both_done(w, c, p, 10)
    assert p.result().success and p.result().reencrypt


def test_repeated_failure_backoff(w):
    # A waiting interval after every failed pairing (Vol 3 Part H 2.3.6, SECURITY.md F7), doubling.
    p = Dev(w, "periph", io=C.IO_DISPLAY_ONLY, mitm=True, backoff_ms=4000)
    ph = Phone(w, "phone", io=C.IO_KEYBOARD_ONLY, mitm=True)
    ph.answers["PASSKEY_REQ"] = lambda dev, conn, v: dev.sm.passkey_reply(conn, True, 424242)  # a guess

    def attempt():
        p.events.clear()
        ph.events.clear()
        hc, hp = connect(w, ph, p)
        t0 = w.now
        ph.call(ph.sm.pair, hc)
        assert both_done(w, p, ph, 40)
        reason = p.result().reason
        w.run(1)
        if ph.sm.connections():
            ph.call(ph.ble.gap_disconnect, hc)
            w.run(1)
        return reason, t0

    r1, _ = attempt()
    t_fail = w.now
    assert r1 == C.AUTH_FAILED
    # at once after the first wrong guess: the peer must wait (dropped before any passkey step)
    r2, t2 = attempt()
    assert r2 == C.REPEATED_ATTEMPTS and t2 - t_fail < 4.0
    assert "PASSKEY_NOTIF" not in p.names()
    w.run(max(0.0, 4.1 - (w.now - t_fail)))  # the first interval (4 s) is over
    r3, _ = attempt()
    t_fail = w.now
    assert r3 == C.AUTH_FAILED  # second wrong guess: now 8 s
    w.run(max(0.0, 5.0 - (w.now - t_fail)))
    r4, t4 = attempt()
    assert r4 == C.REPEATED_ATTEMPTS and 4.0 < t4 - t_fail < 8.0
    # after the waiting interval a correct pairing works
    w.run(10)
    shown = []
    p.answers["PASSKEY_NOTIF"] = lambda dev, conn, v: shown.append(v)
    ph.answers["PASSKEY_REQ"] = lambda dev, conn, v: dev.sm.passkey_reply(conn, True, shown[-1])
    p.events.clear()
    ph.events.clear()
    hc, hp = connect(w, ph, p)
    ph.call(ph.sm.pair, hc)
    assert both_done(w, p, ph, 40)
    assert p.result().success


def test_spoofed_peer_cannot_evict_bond(w):
    p, ph, hc = _nc_pairing(w, mitm=True)
    bond = p.store.bonds()[0]
    assert bond.authenticated
    ph.call(ph.ble.gap_disconnect, hc)
    w.run(1)
    ph.board.power_off()
    # an attacker with the phone's address and no IO (Just Works) pairs with the ESP32
    spoof = Dev(w, "spoof", addr=(ph.board.addr_type, ph.board.public_addr))
    p.events.clear()
    hc, hp = connect(w, spoof, p)
    spoof.call(spoof.sm.pair, hc)
    assert both_done(w, spoof, p)
    assert p.result().reason == C.WEAKER_THAN_BOND
    w.run(1)
    # the spoofer's pairing looked complete to it, but the ESP32 kept nothing and dropped it
    assert not spoof.sm.connections() and not p.sm.connections()
    after = p.store.bonds()
    assert len(after) == 1 and after[0].ltk == bond.ltk and after[0].authenticated
    w.run(1)
    spoof.board.power_off()
    # the real phone comes back and re-encrypts with its bond
    ph.board.power_on()
    ph.boot()
    p.events.clear()
    hc, hp = connect(w, ph, p)
    ph.call(ph.sm.pair, hc)
    assert both_done(w, p, ph)
    assert p.result().success and p.result().reencrypt and p.result().authenticated


def _central_bonded_then_peripheral_loses_keys(w, profile=None, **policy):
    # ESP32 central bonded (Just Works) with a peripheral; then a device with that peripheral's
    # address and no keys (a spoofer, or the peripheral after a factory reset) connects.
    esp = Dev(w, "esp32", profile=profile, **policy)
    friend = Dev(w, "friend", profile=profile)
    hc, _hp = connect(w, esp, friend)
    esp.call(esp.sm.pair, hc)
    assert both_done(w, esp, friend) and esp.result().success
    bond = esp.store.bonds()[0]
    esp.call(esp.ble.gap_disconnect, hc)
    w.run(1)
    friend.board.power_off()
    other = Dev(w, "other", profile=profile, addr=(friend.board.addr_type, friend.board.public_addr))
    esp.events.clear()
    hc, hp = connect(w, esp, other)
    return esp, other, bond, hc, hp


@pytest.mark.parametrize("profile", [None, "esp32-v1.25"])
@pytest.mark.parametrize("trigger", ["security_request", "our_pair"])
@pytest.mark.parametrize("policy", [{}, {"repeat": "deny"}])
def test_central_key_missing_repair_cannot_replace_bond(w, policy, trigger, profile):
    # F8: esp-nimble re-pairs by itself when the peripheral answers our stored LTK with "key
    # missing"; the Just Works keys of that pairing must not replace the bond.
    esp, spoof, bond, hc, hp = _central_bonded_then_peripheral_loses_keys(w, profile, **policy)
    if trigger == "security_request":
        spoof.call(spoof.sm.pair, hp)
    else:
        esp.call(esp.sm.pair, hc)
    assert w.run_until(done(esp), 40)
    r = esp.result()
    assert not r.success and r.reason == C.WEAKER_THAN_BOND, esp.events
    assert "BOND_ADDED" not in esp.names()
    w.run(2)
    assert not esp.sm.connections() and not spoof.sm.connections()  # the link was dropped
    after = esp.store.bonds()
    assert [(b.addr, b.ltk, b.irk) for b in after] == [(bond.addr, bond.ltk, bond.irk)]
    esp.power_cycle()  # and on flash
    assert [(b.addr, b.ltk) for b in esp.store.bonds()] == [(bond.addr, bond.ltk)]


@pytest.mark.parametrize("how", ["window", "allow"])
def test_central_key_missing_repair_replaces_bond_when_vouched_for(w, how):
    # The real peripheral lost its keys: with the pairing window open (or repeat="allow") the
    # re-pair esp-nimble starts replaces the bond, as in the peripheral role.
    esp, other, bond, hc, hp = _central_bonded_then_peripheral_loses_keys(
        w, **({"repeat": "allow"} if how == "allow" else {}))
    if how == "window":
        esp.sm.open_window(30)
    esp.call(esp.sm.pair, hc)
    assert w.run_until(done(esp), 40)
    w.run(2)  # (the other side reports KEY_MISSING first, then its new bond)
    r = esp.result()
    assert r.success and not r.reencrypt and r.bonded, esp.events
    after = esp.store.bonds()
    assert len(after) == 1 and after[0].ltk != bond.ltk and after[0].ltk == ltk_of(other), other.events


# ---------------------------------------------------------------- roles


def test_central_role_limitation_fails_fast(w):
    p = Dev(w, "periph", io=C.IO_DISPLAY_YESNO, mitm=True)
    c = Dev(w, "central", io=C.IO_DISPLAY_YESNO, mitm=True)
    p.answers["NC_REQ"] = lambda dev, conn, v: dev.sm.confirm_reply(conn, True)
    hc, hp = connect(w, c, p)
    # level 3 as central is impossible on stock firmware: refused before anything goes on air
    assert c.call(c.sm.pair, hc, 3) is False
    assert c.result().reason == C.CENTRAL_NO_PROMPTS
    assert not [r for r in w.trace.records if r.name == "PAIRING_REQUEST"]
    c.call(c.sm.require, hc, 1, None, False)
    c.events.clear()
    # a pairing that turns out to need a prompt on the central side: fails in seconds, not 30
    t0 = w.now
    c.call(c.sm.pair, hc)
    assert w.run_until(done(c), 40)
    assert c.result().reason == C.CENTRAL_NO_PROMPTS and w.now - t0 < 8
    assert [r for r in w.trace.records if r.name == "passkey_action_not_delivered" and r.board == "central"]
    assert w.run_until(done(p), 5)
    assert not p.result().success and p.store.bonds() == []


def test_application_callbacks_that_raise(w):
    def bad_cb(event, conn, value):
        raise RuntimeError("app bug in callback")

    def bad_irq(event, data):
        raise ValueError("app bug in IRQ handler")

    agent = CallbackAgent(display=lambda conn, pk: 1 / 0, accept=lambda *a: [][3], done=lambda r: None.x)
    p = Dev(w, "periph", io=C.IO_DISPLAY_ONLY, mitm=True, agent=agent, handler=bad_irq)
    p.sm.register_callback(bad_cb)
    ph = Phone(w, "phone", io=C.IO_KEYBOARD_ONLY, mitm=True)
    pk = []
    orig = p.sm._emit

    def spy(event, conn, value=None):
        if event == C.PASSKEY_NOTIF_EVT:
            pk.append(value)
        orig(event, conn, value)

    p.sm._emit = spy
    ph.answers["PASSKEY_REQ"] = lambda dev, conn, v: dev.sm.passkey_reply(conn, True, pk[-1])
    hc, hp = connect(w, ph, p)
    ph.call(ph.sm.pair, hc)
    assert w.run_until(done(ph), 40)
    assert ph.result().success
    w.run(1)
    assert p.sm.state(hp).level == 4 and len(p.store.bonds()) == 1
    assert p.ble._handler is not None  # never removed by an escaped exception
    assert not [r for r in w.trace.records if r.kind == "irq_error"]


# ---------------------------------------------------------------- GATT authorization, status


def test_gatt_read_authorization(w, capsys):
    import bluetooth

    p = Dev(w, "periph")
    c = Dev(w, "central")
    chr_uuid = bluetooth.UUID("00000000-1111-2222-3333-444444444444")
    svc = (bluetooth.UUID(0x181A), ((chr_uuid, bluetooth.FLAG_READ),))
    ((vh,),) = p.call(p.ble.gatts_register_services, (svc,))
    p.call(p.ble.gatts_write, vh, b"secret")
    p.call(p.sm.protect, vh, C.LEVEL_ENCRYPT)
    hc, hp = connect(w, c, p)

    def read():
        c.call(c.ble.gattc_read, hc, vh)
        w.run(1)
        return [r for r in w.trace.records if r.kind == "irq" and r.board == "central"
                and r.name == "_IRQ_GATTC_READ_DONE"][-1].args["data"]

    before = read()
    assert before[-1] == 0x105  # Insufficient Authentication, from our READ_REQUEST answer
    c.call(c.sm.pair, hc)
    assert both_done(w, c, p)
    after = read()
    assert after[-1] == 0
    p.call(p.sm.status)
    out = capsys.readouterr().out
    assert "level=2" in out and "1 bond(s)" in out


def test_protected_value_never_notified_to_an_unpaired_subscriber(w):
    # Issue 17 item 5. NimBLE reads a value to notify it with conn 65535 (ble_gattc_notify_custom ->
    # ble_att_svr_read_handle(BLE_HS_CONN_HANDLE_NONE, ...), which skips the permission checks) and
    # any peer may write the CCCD unencrypted. A stranger subscribes to a protected characteristic:
    # it gets nothing; the bonded friend gets the value through sm.notify.
    import bluetooth

    p = Dev(w, "periph")
    friend = Dev(w, "friend")
    stranger = Dev(w, "stranger")
    chr_uuid = bluetooth.UUID("00000000-1111-2222-3333-444444444444")
    svc = (bluetooth.UUID(0x181A), ((chr_uuid, bluetooth.FLAG_READ | bluetooth.FLAG_NOTIFY | bluetooth.FLAG_INDICATE),))
    ((vh,),) = p.call(p.ble.gatts_register_services, (svc,))
    p.call(p.sm.protect, vh, C.LEVEL_ENCRYPT)
    hf, hpf = connect(w, friend, p)
    friend.call(friend.sm.pair, hf)
    assert both_done(w, friend, p)
    hs, hps = connect(w, stranger, p)
    assert p.sm.state(hps).level == 1 and p.sm.state(hpf).level == 2
    for dev, h in ((friend, hf), (stranger, hs)):
        dev.call(dev.ble.gattc_write, h, vh + 1, b"\x01\x00", 1)  # subscribe (no encryption needed)
    w.run(1)

    rx = {"friend": [], "stranger": []}
    for dev in (friend, stranger):
        dev.sm.irq(lambda e, d, n=dev.board.name: rx[n].append(bytes(d[2])) if e in (18, 19) else None)

    def got(name):  # the values the central's application received (_IRQ_GATTC_NOTIFY / _INDICATE)
        return rx[name]

    p.call(p.ble.gatts_write, vh, b"secret-1", True)  # NimBLE notifies every subscriber
    w.run(1)
    assert got("stranger") == [] and got("friend") == []  # one link below the level: no one
    try:
        p.call(p.ble.gatts_notify, hps, vh)  # the database value, straight to the stranger
        raise AssertionError("notified")
    except OSError:
        pass
    assert not p.call(p.sm.notify, hps, vh)
    assert not p.call(p.sm.notify, hps, vh, b"secret-2", True)
    assert p.call(p.sm.notify, hpf, vh)
    assert p.call(p.sm.notify, hpf, vh, b"secret-3", True)
    w.run(1)
    assert got("stranger") == []
    assert got("friend") == [b"secret-1", b"secret-3"]
    stranger.call(stranger.ble.gap_disconnect, hs)
    w.run(1)
    p.call(p.ble.gatts_write, vh, b"secret-4", True)  # every link qualifies again
    w.run(1)
    assert got("friend")[-1] == b"secret-4" and got("stranger") == []


def test_security_request_from_peripheral(w):
    p = Dev(w, "periph")
    c = Dev(w, "central")
    hc, hp = connect(w, c, p)
    assert p.call(p.sm.pair, hp)  # ESP32 peripheral: sends a Security Request
    assert both_done(w, c, p)
    assert pdus(w, "SECURITY_REQUEST")
    assert c.names() == ["SEC_REQ", "BOND_ADDED", "AUTH_CMPL"]  # NimBLE paired by itself
    assert p.names() == ["BOND_ADDED", "AUTH_CMPL"]  # our own request: nobody to ask
    assert c.result().success and p.result().success and ltk_of(c) == ltk_of(p)


def test_require_drops_reencryption_with_weak_stored_key(w):
    p = Dev(w, "periph", io=C.IO_DISPLAY_YESNO, mitm=True)
    c = Dev(w, "central")
    hc, hp = connect(w, c, p)
    c.call(c.sm.pair, hc)
    assert both_done(w, c, p)
    assert p.result().level == 2  # Just Works: the central has no IO
    c.call(c.ble.gap_disconnect, hc)
    w.run(1)
    p.events.clear()
    c.events.clear()
    hc, hp = connect(w, c, p)
    p.call(p.sm.require, hp, 3, None, False)  # this product now wants MITM protection
    c.call(c.sm.pair, hc)  # the central re-encrypts with the old Just Works key
    assert both_done(w, c, p)
    r = p.result()
    assert r.reencrypt and r.reason == C.LEVEL_TOO_LOW and r.level == 2
    w.run(1)
    assert not p.sm.connections() and not c.sm.connections()
    assert len(p.store.bonds()) == 1  # a refused re-encryption never deletes the bond


@pytest.mark.parametrize("tear", [False, True])
def test_power_cut_while_bonding_keeps_store_consistent(tear):
    # Count the flash operations of one bonding, then cut the peripheral's power at each of them.
    w = World(seed=9)
    p = Dev(w, "periph")
    c = Dev(w, "central")
    hc, hp = connect(w, c, p)
    m = p.board.fs.mark()
    c.call(c.sm.pair, hc)
    assert both_done(w, c, p)
    ops = p.board.fs.since(m)["ops"]
    w.close()
    assert ops >= 1
    for n in range(1, ops + 1):
        w = World(seed=9)
        try:
            p = Dev(w, "periph")
            c = Dev(w, "central")
            hc, hp = connect(w, c, p)
            p.board.fs.cut_after(n, tear=tear)
            c.call(c.sm.pair, hc)  # PowerLoss is a BaseException: the manager must not swallow it
            w.run(3)
            assert not p.board.powered, n
            p.board.power_on()
            p.boot()
            bonds = p.store.bonds()
            assert len(bonds) <= 1 and (not bonds or bonds[0].ltk is not None), (n, bonds)
            # whatever survived, the two boards end up bonded again with equal keys
            w.run(3)
            hc, hp = connect(w, c, p)
            c.events.clear()
            c.call(c.sm.pair, hc)
            w.run_until(done(c), 40)
            if not c.result().success:  # the ESP32 lost the bond the central still has
                # KEY_MISSING, or WEAKER_THAN_BOND: esp-nimble's key-missing re-pair may not
                # replace the central's bond outside the pairing window (F8)
                assert c.result().reason in (C.KEY_MISSING, C.WEAKER_THAN_BOND), (n, c.events)
                c.call(c.sm.remove_bond_device, p.board.addr_type, p.board.public_addr)
                w.run(3)
                hc, hp = connect(w, c, p)
                c.events.clear()
                p.events.clear()
                c.call(c.sm.pair, hc)
                assert both_done(w, c, p)
                assert c.result().success, (n, c.events, p.events)
            w.run(1)
            assert ltk_of(p) == ltk_of(c), n
        finally:
            w.close()


def test_peer_with_private_address(w):
    p = Dev(w, "periph")
    ph = Dev(w, "phone")
    ph.call(lambda: ph.ble.config(addr_mode=2))  # the central uses resolvable private addresses
    hc, hp = connect(w, ph, p)
    rpa = p.sm.state(hp).addr
    assert p.sm.state(hp).addr_type == 1 and rpa != ph.board.public_addr
    ph.call(ph.sm.pair, hc)
    assert both_done(w, p, ph)
    # the keys came under the identity address: the link and the result are known by it now
    assert p.result().addr == ph.board.public_addr and p.result().addr_type == 0
    assert p.sm.state(hp).addr == ph.board.public_addr
    assert [b.addr for b in p.store.bonds()] == [ph.board.public_addr]
    ph.call(ph.ble.gap_disconnect, hc)
    w.run(1000)  # a new RPA
    p.events.clear()
    ph.events.clear()
    hc, hp = connect(w, ph, p)
    assert p.sm.state(hp).addr == ph.board.public_addr  # resolved with the IRK restored from the store
    ph.call(ph.sm.pair, hc)
    assert both_done(w, p, ph)
    assert p.result().success and p.result().reencrypt


def test_two_centrals_pair_one_after_the_other(w):
    p = Dev(w, "periph", io=C.IO_DISPLAY_YESNO, mitm=True)
    a = Phone(w, "a", io=C.IO_DISPLAY_YESNO, mitm=True)
    b = Dev(w, "b")
    p.answers["NC_REQ"] = lambda dev, conn, v: dev.sm.confirm_reply(conn, True)
    a.answers["NC_REQ"] = lambda dev, conn, v: dev.sm.confirm_reply(conn, True)
    ha, hpa = connect(w, a, p)
    hb, hpb = connect(w, b, p)
    assert hpa != hpb
    b.call(b.sm.pair, hb)  # Just Works on link b while a is idle
    assert both_done(w, b, p)
    a.call(a.sm.pair, ha)  # then NC on link a
    assert w.run_until(lambda: len(p.results()) == 2 and done(a)(), 40)
    ra, rb = sorted(p.results(), key=lambda r: r.conn != hpa)
    assert ra.conn == hpa and ra.level == 4 and ra.addr == a.board.public_addr
    assert rb.conn == hpb and rb.level == 2 and rb.addr == b.board.public_addr
    assert [e[1] for e in p.events if e[0] == "NC_REQ"] == [hpa]
    assert p.sm.state(hpa).level == 4 and p.sm.state(hpb).level == 2
    assert len(p.store.bonds()) == 2


def test_smp_timeout_is_named(w):
    # Prompt timeouts set above 30 s on both sides: the firmware's SMP timer ends the pairing.
    p = Dev(w, "periph", io=C.IO_DISPLAY_ONLY, mitm=True, prompt_timeout_ms=45000)
    ph = Phone(w, "phone", io=C.IO_KEYBOARD_ONLY, mitm=True, prompt_timeout_ms=60000)
    hc, hp = connect(w, ph, p)
    t0 = w.now
    ph.call(ph.sm.pair, hc)  # nobody types the code on the phone
    assert w.run_until(done(p), 60)
    assert p.result().reason == C.SMP_TIMEOUT
    assert 29 < w.now - t0 < 33
    assert [r for r in w.trace.records if r.name == "smp_timeout" and r.board == "periph"]


def test_bond_list_and_remove_bond_device(w):
    p = Dev(w, "periph")
    c = Dev(w, "central")
    hc, hp = connect(w, c, p)
    c.call(c.sm.pair, hc)
    assert both_done(w, c, p)
    bonds = p.sm.get_bond_device_list()
    assert p.sm.get_bond_device_num() == 1 and bonds[0].addr == c.board.public_addr
    assert p.call(p.sm.remove_bond_device, bonds[0].addr_type, bonds[0].addr)
    removed = [e[2] for e in p.events if e[0] == "BOND_REMOVED"]
    assert len(removed) == 1 and removed[0].addr == c.board.public_addr
    w.run(1)
    assert not p.sm.connections() and p.sm.get_bond_device_num() == 0
    # the central still has its bond: the ESP32 refuses the stored key (KEY_MISSING at once), then
    # the central's NimBLE pairs afresh by itself and both sides bond again. The central's user
    # agrees (pairing window): outside it that re-pair may not replace the central's bond (F8,
    # test_central_key_missing_repair_cannot_replace_bond)
    c.events.clear()
    p.events.clear()
    c.sm.open_window(30)
    hc, hp = connect(w, c, p)
    c.call(c.sm.pair, hc)
    assert w.run_until(lambda: done(c)() and len(p.results()) == 2, 10)
    assert [r.reason for r in p.results()] == [C.KEY_MISSING, C.OK]
    r = c.result()
    assert r.success and not r.reencrypt
    assert ltk_of(p) == ltk_of(c)


# ---------------------------------------------------------------- method policy (SECURITY.md F4)


def _method_pair(w, esp_methods, phone_io, esp_io=C.IO_DISPLAY_YESNO, mitm=True):
    p = Dev(w, "periph", io=esp_io, mitm=mitm, methods=esp_methods)
    ph = Phone(w, "phone", io=phone_io, mitm=mitm and phone_io != C.IO_NO_INPUT_OUTPUT)
    guesses = []
    for d in (p, ph):
        d.answers["NC_REQ"] = lambda dev, conn, v: dev.sm.confirm_reply(conn, True)
    # the attacker types whatever it can (it never saw a code): a guess
    ph.answers["PASSKEY_REQ"] = lambda dev, conn, v: (guesses.append(1), dev.sm.passkey_reply(conn, True, 123456))
    hc, hp = connect(w, ph, p)
    ph.call(ph.sm.pair, hc)
    assert w.run_until(done(p), 40)
    w.run(3)
    return p, ph


def test_numeric_comparison_only_refuses_an_attacker_forcing_passkey_entry(w):
    # Method confusion: a KeyboardOnly attacker turns a DisplayYesNo device's numeric comparison
    # into Passkey Entry. With methods={NC} the ESP32 never shows the code and drops the link.
    p, ph = _method_pair(w, {C.METHOD_NUMERIC_COMPARISON}, C.IO_KEYBOARD_ONLY)
    r = p.result()
    assert not r.success and r.reason == C.METHOD_NOT_ALLOWED, p.events
    assert C.reason_name(r.reason) == "METHOD_NOT_ALLOWED"
    assert "PASSKEY_NOTIF" not in p.names() and "BOND_ADDED" not in p.names()
    assert not p.store.bonds() and not p.sm.connections() and not ph.sm.connections()
    assert not ph.store.bonds()  # the pairing never completed on the attacker's side either


def test_numeric_comparison_only_still_pairs_a_comparison_peer(w):
    p, ph = _method_pair(w, {C.METHOD_NUMERIC_COMPARISON}, C.IO_DISPLAY_YESNO)
    r = p.result()
    assert r.success and r.level == 4 and "NC_REQ" in p.names()
    assert ltk_of(p) == ltk_of(ph)


def test_method_policy_refuses_comparison_and_just_works(w):
    # passkey only: a comparison is answered "no" (Pairing Failed 0x0C) and the link dropped
    p, ph = _method_pair(w, [C.METHOD_PASSKEY], C.IO_DISPLAY_YESNO)
    assert p.result().reason == C.METHOD_NOT_ALLOWED and "NC_REQ" not in p.names()
    assert not p.store.bonds() and not p.sm.connections()
    assert pdus(w, "PAIRING_FAILED")  # the clean refusal went out


def test_method_policy_refuses_just_works_when_it_completes():
    w = World(seed=8)
    try:
        # no Just Works: a peer without IO pairs; stock firmware has no hook before it completes,
        # so the keys are refused and the link dropped when it does
        p, ph = _method_pair(w, C.METHOD_PASSKEY | C.METHOD_NUMERIC_COMPARISON, C.IO_NO_INPUT_OUTPUT)
        assert p.result().reason == C.METHOD_NOT_ALLOWED, p.events
        assert not p.store.bonds() and not p.sm.connections()
    finally:
        w.close()
    w = World(seed=8)
    try:  # the default (all methods) pairs the same peer
        p, ph = _method_pair(w, None, C.IO_NO_INPUT_OUTPUT)
        assert p.result().success and len(p.store.bonds()) == 1
    finally:
        w.close()


def test_method_policy_validation(w):
    for bad in ([], 0, 8, [16]):
        with pytest.raises(ValueError):
            Dev(w, "bad%r" % (bad,), methods=bad)
