"""RPAs made with AES-ECB from the `cryptography` package in the specification's byte order:
a reference that shares no code with lib/blesmp (CPython only)."""

import os

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def ah_ref(irk, prand):
    """ah(k, r) = e(k, 0^104 || r) mod 2^24, MSB-first, from `cryptography`."""
    enc = Cipher(algorithms.AES(bytes(irk)), modes.ECB()).encryptor()
    return (enc.update(bytes(13) + bytes(prand)) + enc.finalize())[13:16]


def rpa_ref(irk):
    """A fresh RPA for `irk`: prand (top bits 01) || ah(irk, prand), MSB-first."""
    p = bytearray(os.urandom(3))
    p[0] = (p[0] & 0x3F) | 0x40
    return bytes(p) + ah_ref(irk, p)


def resolves(irk, addr):
    return (addr[0] & 0xC0) == 0x40 and ah_ref(irk, addr[0:3]) == addr[3:6]
