"""Stand-in for MicroPython's `bluetooth` module on a simulated ESP32 (NimBLE).

Exports exactly what the firmware module does: `BLE`, `UUID`, `FLAG_READ`, `FLAG_WRITE`,
`FLAG_NOTIFY`, `FLAG_INDICATE`, `FLAG_WRITE_NO_RESPONSE`. `BLE()` returns the singleton of the
board whose code is running (`tools.blesim.world.current_board()`); outside any World a
default World with one board is created, so a plain script can `import bluetooth`.
"""

from tools.blesim.firmware.uuid import UUID

__all__ = ["BLE", "UUID", "FLAG_READ", "FLAG_WRITE", "FLAG_NOTIFY", "FLAG_INDICATE", "FLAG_WRITE_NO_RESPONSE"]

FLAG_READ = 0x0002
FLAG_WRITE_NO_RESPONSE = 0x0004
FLAG_WRITE = 0x0008
FLAG_NOTIFY = 0x0010
FLAG_INDICATE = 0x0020


def _board():
    from tools.blesim import world as W

    b = W.current_board()
    if b is None:
        w = W.current_world() or W.World()
        b = w.board()
    return b


def BLE():  # noqa: N802 (the firmware's name)
    """The board's BLE singleton (a new object after the board resets, as on the board)."""
    return _board().ble
