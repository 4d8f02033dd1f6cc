# The NVS backend of blesmp.store (BondStore(nvs=...)): the image as one NVS blob, key "bonds",
# committed atomically by NVS. Its own module so that file-store apps do not hold it in RAM;
# loading and quarantine ("bonds_bad") are done by blesmp.bondload, saving by blesmp.bondwrite.
# Not part of the API.


class NvsBackend:
    def __init__(self, nvs):
        if isinstance(nvs, str):
            import esp32

            nvs = esp32.NVS(nvs)
        self.nvs = nvs

    def _get(self, key, limit=0x40000):
        n = 512
        while n < limit * 4:
            buf = bytearray(n)
            try:
                m = self.nvs.get_blob(key, buf)
                return bytes(buf[:m])
            except OSError as e:
                c = e.args[0]
                if c in (2, -0x1102):  # ENOENT / ESP_ERR_NVS_NOT_FOUND
                    return None
                if c != -0x110C:  # anything but ESP_ERR_NVS_INVALID_LENGTH (buffer too small)
                    raise
                n *= 4
        raise OSError(27)  # EFBIG

    def _set(self, key, data):
        self.nvs.set_blob(key, data)
        self.nvs.commit()
