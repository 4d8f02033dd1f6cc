# GATT authorization of blesmp.manager (SecurityManager.protect/check), imported by protect():
# apps that protect no characteristic do not hold this code in RAM. Not part of the API.
from micropython import const

from .manager import _log

_ATT_INSUFFICIENT_AUTHENTICATION = const(0x05)
_ATT_INSUFFICIENT_AUTHORIZATION = const(0x08)
_ATT_INSUFFICIENT_ENCRYPTION = const(0x0F)
_ATT_INSUFFICIENT_KEY_SIZE = const(0x0C)


def check(sm, c, rule, conn, attr_handle, write):
    # c: the Link of conn or None; rule: (level, min_key_size, authorize) from protect()
    level, mks, authorize = rule
    if c is None:
        return _ATT_INSUFFICIENT_AUTHENTICATION
    if c.level < level:
        if not c.enc:
            return _ATT_INSUFFICIENT_ENCRYPTION if _has_bond(sm, c) else _ATT_INSUFFICIENT_AUTHENTICATION
        return _ATT_INSUFFICIENT_AUTHENTICATION
    if mks and c.key_size < mks:
        return _ATT_INSUFFICIENT_KEY_SIZE
    if authorize is not None:
        ok = False
        try:
            ok = authorize(conn, attr_handle, write)
        except Exception as e:  # noqa: BLE001 (an application error denies)
            _log("authorize callback raised", e)
        if not ok:
            return _ATT_INSUFFICIENT_AUTHORIZATION
    return 0


def _has_bond(sm, c):
    try:
        return sm.store.find(c.addr_type, c.addr) is not None
    except Exception:  # noqa: BLE001
        return False
