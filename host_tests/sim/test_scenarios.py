"""Whole scenarios: an unmodified board script on a simulated ESP32, three boards, store
failures, a firmware crash."""

import pytest
from simhelpers import (
    _IRQ_ENCRYPTION_UPDATE,
    _IRQ_GET_SECRET,
    _IRQ_PERIPHERAL_CONNECT,
    _IRQ_SET_SECRET,
    Recorder,
    Store,
    connect,
)

from tools.blesim import World
from tools.blesim.firmware import secstruct

BOARD_SCRIPT = r'''
# A peripheral written for an ESP32 (shape of MicroPython's examples/bluetooth/ble_bonding_peripheral.py)
import bluetooth
import time
from micropython import const

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_ENCRYPTION_UPDATE = const(28)
_IRQ_GET_SECRET = const(29)
_IRQ_SET_SECRET = const(30)
_IRQ_PASSKEY_ACTION = const(31)
_PASSKEY_ACTION_DISPLAY = const(3)
_IO_CAPABILITY_DISPLAY_ONLY = const(0)

secrets = {}
state = {"enc": None}
log = []


def irq(event, data):
    if event == _IRQ_CENTRAL_CONNECT:
        log.append("connect")
    elif event == _IRQ_ENCRYPTION_UPDATE:
        conn_handle, encrypted, authenticated, bonded, key_size = data
        state["enc"] = (encrypted, authenticated, bonded, key_size)
        log.append("encryption_update %d %d %d %d" % state["enc"])
    elif event == _IRQ_PASSKEY_ACTION:
        conn_handle, action, passkey = data
        if action == _PASSKEY_ACTION_DISPLAY:
            print("passkey", 123456)
            ble.gap_passkey(conn_handle, action, 123456)
    elif event == _IRQ_SET_SECRET:
        sec_type, key, value = data
        key = sec_type, bytes(key)
        value = bytes(value) if value else None
        if value is None:
            if key in secrets:
                del secrets[key]
                return True
            return False
        secrets[key] = value
        return True
    elif event == _IRQ_GET_SECRET:
        sec_type, index, key = data
        if key is None:
            i = 0
            for (t, _key), value in secrets.items():
                if t == sec_type:
                    if i == index:
                        return value
                    i += 1
            return None
        return secrets.get((sec_type, bytes(key)), None)


ble = bluetooth.BLE()
ble.irq(irq)
ble.config(bond=True, le_secure=True, mitm=True, io=_IO_CAPABILITY_DISPLAY_ONLY)
ble.active(True)
ble.gap_advertise(100000, b"\x02\x01\x06")
t0 = time.ticks_ms()
while state["enc"] is None and time.ticks_diff(time.ticks_ms(), t0) < 10000:
    time.sleep_ms(50)
print("done", state["enc"], len(secrets))
'''


def test_unmodified_board_script_pairs_with_passkey(capsys):
    w = World()
    p = w.board("esp32")
    phone = w.board("phone", profile="phone")
    shown = {}

    class Phone(Recorder):
        def __call__(self, event, data):
            r = super().__call__(event, data)
            if event == _IRQ_PERIPHERAL_CONNECT:
                self.ble.gap_pair(data[0])
            return r

    rc = Phone(phone.ble, passkey=lambda conn, action, n: shown.get("n") if action == 2 else None)
    phone.ble.irq(rc)
    phone.ble.config(mitm=True)
    phone.ble.active(True)
    phone.ble.gap_connect(0, p.public_addr, 5000)

    real_print = print

    def board_print(*a):
        if a and a[0] == "passkey":
            shown["n"] = a[1]
        real_print(*a)

    g = p.exec(BOARD_SCRIPT, "ble_bonding_peripheral.py", env={"print": board_print})
    out = capsys.readouterr().out
    assert "passkey 123456" in out
    assert "done (1, 1, 1, 16) 3" in out  # IRK + our keys + peer keys
    assert g["log"] == ["connect", "encryption_update 1 1 1 16"]
    assert rc.last(_IRQ_ENCRYPTION_UPDATE)[1:] == (1, 1, 1, 16)
    # the keys the script stored are the phone's
    ours = secstruct.unpack("88", g["secrets"][(1, secstruct.store_key(0, phone.public_addr))])
    theirs = secstruct.unpack("88", rc.store.secrets[(2, secstruct.store_key(0, p.public_addr))])
    assert ours["ltk"] == theirs["ltk"] and ours["authenticated"] == 1


def test_three_boards_one_peripheral_two_bonds():
    w = World()
    p, c1, c2 = w.board("p"), w.board("c1"), w.board("c2")
    sp = Store()
    rp = Recorder(p.ble, sp)
    r1, r2 = Recorder(c1.ble), Recorder(c2.ble)
    for b, r in ((p, rp), (c1, r1), (c2, r2)):
        b.ble.irq(r)
        b.ble.active(True)
    hp1, h1 = connect(w, p, c1)
    hp2, h2 = connect(w, p, c2)
    assert hp1 != hp2
    c1.ble.gap_pair(h1)
    assert w.run_until(lambda: len(rp.of(_IRQ_ENCRYPTION_UPDATE)) == 1, 5)
    rp.clear()
    c2.ble.gap_pair(h2)
    assert w.run_until(lambda: len(rp.of(_IRQ_ENCRYPTION_UPDATE)) == 1 and r2.last(_IRQ_ENCRYPTION_UPDATE), 5)
    # the bond count walks the existing peer entry: GET(2,0,None) found, GET(2,1,None) not
    gets = [d for e, d in rp.events if e == _IRQ_GET_SECRET][:3]
    assert gets == [(2, 0, None), (2, 1, None), (1, 0, bytes(7))]
    assert rp.last(_IRQ_ENCRYPTION_UPDATE) == (hp2, 1, 0, 1, 16)
    assert sorted(k[1] for k in sp.secrets if k[0] == 2) == sorted(
        secstruct.store_key(0, b.public_addr) for b in (c1, c2))
    assert {h for h in p.ble.connections()} == {hp1, hp2}


def test_failed_set_secret_triggers_overflow_lookup_and_no_bond_kept():
    w = World()
    p, c = w.board("p"), w.board("c")

    class Full(Recorder):
        def __call__(self, event, data):
            r = super().__call__(event, data)
            if event == _IRQ_SET_SECRET and data[2] is not None and data[0] in (1, 2):
                self.store.secrets.pop((data[0], bytes(data[1])), None)
                return False  # store full
            return r

    rp, rc = Full(p.ble), Recorder(c.ble)
    for b, r in ((p, rp), (c, rc)):
        b.ble.irq(r)
        b.ble.active(True)
    rp.clear()
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    assert w.run_until(lambda: rp.last(_IRQ_ENCRYPTION_UPDATE), 5)
    seq = [(e, d[0], d[1] if e == _IRQ_GET_SECRET else None) for e, d in rp.events
           if e in (_IRQ_SET_SECRET, _IRQ_GET_SECRET)][-4:]
    assert seq == [(_IRQ_SET_SECRET, 1, None), (_IRQ_GET_SECRET, 1, 0), (_IRQ_SET_SECRET, 2, None),
                   (_IRQ_GET_SECRET, 1, 0)]
    # the link is still encrypted and "bonded" (the flag comes from the pairing, not the store)
    assert rp.last(_IRQ_ENCRYPTION_UPDATE) == (hp, 1, 0, 1, 16)


def test_get_secret_returning_a_non_buffer_crashes_the_board(capsys):
    w = World()
    b = w.board("b")
    boots = b.boots

    def h(event, data):
        if event == _IRQ_GET_SECRET:
            return 5  # not a buffer: the conversion runs outside the protected call
        return None

    b.ble.irq(h)
    from tools.blesim.world import BoardDown

    with pytest.raises(BoardDown):  # nothing of the script runs after this point
        b.ble.active(True)
    w.run(0.1)
    assert b.boots == boots + 1 and b.ble.active() is False
    assert "FATAL" in capsys.readouterr().out


def test_power_loss_in_the_handler_turns_the_board_off():
    from tools.blesim.flash import PowerLoss

    w = World()
    p, c = w.board("p"), w.board("c")

    class Dies(Recorder):
        def __call__(self, event, data):
            if event == _IRQ_SET_SECRET and data[0] == 1:
                raise PowerLoss()
            return super().__call__(event, data)

    rp, rc = Dies(p.ble), Recorder(c.ble)
    for b, r in ((p, rp), (c, rc)):
        b.ble.irq(r)
        b.ble.active(True)
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    w.run(5)
    assert not p.powered
    assert rp.last(_IRQ_ENCRYPTION_UPDATE) is None
    p.power_on()
    assert p.ble.active() is False
