"""Stand-in for MicroPython's `esp32` module: `NVS` persisted per simulated board.

Writes become visible to every NVS object of the namespace at once but are only kept across
a reset/power cut after `commit()` (uncommitted changes are lost, the pessimistic reading of
ESP-IDF's "call nvs_commit"). Errors as the firmware raises them: a missing key is
`OSError(-4354)` (ESP_ERR_NVS_NOT_FOUND), a too small buffer `OSError(-4364)`.
"""

__all__ = ["NVS"]

ESP_ERR_NVS_NOT_FOUND = 0x1102
ESP_ERR_NVS_INVALID_LENGTH = 0x110C
_ERR_NAMES = {ESP_ERR_NVS_NOT_FOUND: "ESP_ERR_NVS_NOT_FOUND", ESP_ERR_NVS_INVALID_LENGTH: "ESP_ERR_NVS_INVALID_LENGTH"}

_ram = {}  # board -> {namespace: {key: (kind, value)}} (uncommitted)


def _err(code):
    return OSError(-code, _ERR_NAMES.get(code, str(code)))


def _board_store():
    from tools.blesim import world as W

    b = W.current_board()
    if b is None:
        return ("<none>", None), {}
    key = (b.name, id(b.world), b.boots)
    return key, b.nvs


class NVS:
    def __init__(self, namespace):
        if not isinstance(namespace, str) or not 0 < len(namespace) <= 15:
            raise ValueError("invalid namespace")
        self._ns = namespace
        self._key, self._flash = _board_store()

    def _view(self):
        pending = _ram.setdefault(self._key, {}).setdefault(self._ns, None)
        if pending is None:
            pending = dict(self._flash.get(self._ns, {}))
            _ram[self._key][self._ns] = pending
        return pending

    def _check_key(self, key):
        if not isinstance(key, str) or not 0 < len(key) <= 15:
            raise ValueError("invalid key")

    def set_i32(self, key, value):
        self._check_key(key)
        self._view()[key] = ("i32", int(value) & 0xFFFFFFFF)

    def get_i32(self, key):
        v = self._view().get(key)
        if v is None or v[0] != "i32":
            raise _err(ESP_ERR_NVS_NOT_FOUND)
        n = v[1]
        return n - (1 << 32) if n & 0x80000000 else n

    def set_blob(self, key, value):
        self._check_key(key)
        if isinstance(value, str):
            value = value.encode()
        self._view()[key] = ("blob", bytes(value))

    def get_blob(self, key, buffer):
        v = self._view().get(key)
        if v is None or v[0] != "blob":
            raise _err(ESP_ERR_NVS_NOT_FOUND)
        data = v[1]
        if len(buffer) < len(data):
            raise _err(ESP_ERR_NVS_INVALID_LENGTH)
        buffer[: len(data)] = data
        return len(data)

    def erase_key(self, key):
        view = self._view()
        if key not in view:
            raise _err(ESP_ERR_NVS_NOT_FOUND)
        del view[key]

    def commit(self):
        self._flash[self._ns] = dict(self._view())
