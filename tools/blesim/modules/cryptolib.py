"""Stand-in for MicroPython's `cryptolib` on ESP32 (mbedTLS backend).

Same surface and limits as the firmware: `aes(key, mode[, IV])` with modes 1
(ECB) and 2 (CBC) only, keys of 16/24/32 bytes, data a multiple of 16 bytes,
an object used for encrypt or decrypt but never both, and the CBC chaining
value carried over from one call to the next. AES itself is `cryptography`'s.
"""

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

_MODE_ECB = 1
_MODE_CBC = 2


def _buffer(v):
    if isinstance(v, str):
        return v.encode()
    return bytes(v)


class aes:  # noqa: N801 (the firmware's name)
    def __init__(self, key, mode, IV=None):  # noqa: N803
        key = _buffer(key)
        if len(key) not in (16, 24, 32):
            raise ValueError("key")
        if mode not in (_MODE_ECB, _MODE_CBC):
            raise ValueError("mode")
        iv = bytes(16)
        if IV is not None:
            iv = _buffer(IV)
            if len(iv) != 16:
                raise ValueError("IV")
        self._mode = mode
        self._iv = iv
        self._alg = algorithms.AES(key)
        self._ecb = Cipher(self._alg, modes.ECB())
        self._dir = None  # 'e' or 'd' once used

    def _run(self, direction, data, out):
        if self._dir is None:
            self._dir = direction
        elif self._dir != direction:
            raise ValueError("can't encrypt & decrypt")
        data = _buffer(data)
        if len(data) % 16:
            raise ValueError("blksize % 16")
        if out is not None and len(out) != len(data):
            raise ValueError("output len")
        if self._mode == _MODE_ECB:
            ctx = (self._ecb.encryptor() if direction == "e" else self._ecb.decryptor())
            res = ctx.update(data) + ctx.finalize()
        else:
            res = self._cbc(direction, data)
        if out is None:
            return res
        out[:] = res
        return None

    def _cbc(self, direction, data):
        # One cryptography CBC pass from the carried-over chaining value (same result as
        # block-by-block, without a Python loop per block).
        mode = modes.CBC(self._iv)
        cipher = Cipher(self._alg, mode)
        ctx = cipher.encryptor() if direction == "e" else cipher.decryptor()
        res = ctx.update(data) + ctx.finalize()
        self._iv = bytes(res[-16:] if direction == "e" else data[-16:])
        return res

    def encrypt(self, in_buf, out_buf=None):
        return self._run("e", in_buf, out_buf)

    def decrypt(self, in_buf, out_buf=None):
        return self._run("d", in_buf, out_buf)
