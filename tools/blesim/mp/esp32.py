"""`esp32` for a board process: `NVS` kept in a JSON file in the board's
filesystem directory (the process's working directory), one namespace per file
(`nvs_<namespace>.json`). Same surface and errors as the firmware: set_i32,
get_i32, set_blob, get_blob(key, buffer) -> length, erase_key, commit (values
are visible at once to every NVS object of the namespace and reach the file
only on commit, so uncommitted changes are lost when the process ends).
A missing key raises OSError(-4354) (ESP_ERR_NVS_NOT_FOUND).
"""

import binascii
import json

_ESP_ERR_NVS_NOT_FOUND = -4354
_open = {}


class NVS:
    def __init__(self, namespace):
        if not isinstance(namespace, str) or not 0 < len(namespace) <= 15:
            raise ValueError("namespace")
        self._file = "nvs_" + namespace + ".json"
        d = _open.get(namespace)
        if d is None:
            try:
                with open(self._file) as f:
                    d = json.load(f)
            except (OSError, ValueError):
                d = {}
            _open[namespace] = d
        self._d = d  # shared by every NVS object of the namespace, as on the board

    def _get(self, key, kind):
        v = self._d.get(key)
        if v is None or v[0] != kind:
            raise OSError(_ESP_ERR_NVS_NOT_FOUND)
        return v[1]

    def set_i32(self, key, value):
        self._d[key] = ["i", int(value)]

    def get_i32(self, key):
        return self._get(key, "i")

    def set_blob(self, key, value):
        if isinstance(value, str):
            value = value.encode()
        self._d[key] = ["b", binascii.hexlify(bytes(value)).decode()]

    def get_blob(self, key, buf):
        b = binascii.unhexlify(self._get(key, "b"))
        if len(buf) < len(b):
            raise OSError(-4364)  # ESP_ERR_NVS_INVALID_LENGTH
        buf[: len(b)] = b
        return len(b)

    def erase_key(self, key):
        if key not in self._d:
            raise OSError(_ESP_ERR_NVS_NOT_FOUND)
        del self._d[key]

    def commit(self):
        with open(self._file, "w") as f:
            json.dump(self._d, f)
