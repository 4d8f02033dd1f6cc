"""The firmware model: MicroPython's NimBLE binding + the NimBLE host, per board.

`BLE` (ble.py) is what `bluetooth.BLE()` returns on a simulated board; `Profile`/`PROFILES`
(profile.py) select version-dependent behaviour; `secstruct` packs NimBLE's
`ble_store_value_sec`; `gatt`/`server`/`client` are ATT/GATT; `UUID` is `bluetooth.UUID`.
"""

from . import secstruct
from .ble import BLE, IRQ_NAMES
from .profile import PROFILES, Profile, get_profile
from .uuid import UUID

__all__ = ["BLE", "IRQ_NAMES", "PROFILES", "Profile", "get_profile", "UUID", "secstruct"]
