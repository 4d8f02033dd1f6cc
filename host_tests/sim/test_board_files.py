"""An in-process board's files are its own flash (board.fs), as each ESP32 has its own file
system: lib's default bond store (`SecurityManager(ble)`, `BondStore()`) writes bonds.db there
while the board's code runs, never into the host's working directory."""

import os

from simhelpers import Recorder

from tools.blesim import World

APP = """
import bluetooth
from blesmp.manager import SecurityManager
sm = SecurityManager(bluetooth.BLE(), timer=None)
bluetooth.BLE().gap_advertise(100000, b'\\x02\\x01\\x06')
"""


def test_default_bond_store_of_an_in_process_board_is_in_its_flash(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    w = World()
    p, c = w.board("p"), w.board("c")
    g = p.exec(APP)
    rc = Recorder(c.ble)
    c.ble.irq(rc)
    c.ble.active(True)
    c.ble.gap_connect(*p.ble.config("mac"))
    assert w.run_until(lambda: rc.last(7), 2)
    c.ble.gap_pair(rc.last(7)[0])
    assert w.run_until(lambda: g["sm"].get_bond_device_num() == 1, 5)
    assert os.listdir(tmp_path) == []  # nothing in the host's directory
    assert "bonds.db" in p.fs.listdir(".") and "bonds.db" not in c.fs.listdir(".")
    # the board's next boot finds its bond in its flash
    p.reset()
    g2 = p.exec(APP)
    assert g2["sm"].get_bond_device_num() == 1
    assert os.listdir(tmp_path) == []
