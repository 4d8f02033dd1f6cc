"""NimBLE's ATT server: answers one request PDU (permission checks before any IRQ)."""

import struct

from . import gatt as G
from .irq import IRQ_GATTS_WRITE, IRQ_MTU_EXCHANGED
from .uuid import UUID


def _err(req, handle, code):
    return struct.pack("<BBHB", G.ERROR_RSP, req, handle, code)


def _user(a):
    return a.kind in ("value", "dsc")


def _read_value(ble, c, a, req):
    """Permission check, READ_REQUEST IRQ for user attributes; returns (value, 0) or (None, err)."""
    err = ble._perm_check(c, a, write=False)
    if err:
        return None, err
    if _user(a):
        rc = ble._read_request_rc(c.handle, a.handle)
        if rc:
            return None, rc
    return ble._db.read_value(a), 0


def handle_request(ble, c, p):
    op = p[0]
    db = ble._db
    try:
        if op == G.MTU_REQ:
            (m,) = struct.unpack_from("<H", p, 1)
            c.mtu = max(23, min(m, ble._mtu))
            ble._att_send(c, struct.pack("<BH", G.MTU_RSP, ble._mtu))
            c.mtu_done = True
            ble._irq(IRQ_MTU_EXCHANGED, (c.handle, c.mtu), conn=c.handle)
            return None
        if op == G.FIND_INFO_REQ:
            s, e = struct.unpack_from("<HH", p, 1)
            if s == 0 or s > e:
                return _err(op, s, G.E_INVALID_HANDLE)
            out = b""
            fmt = None
            for a in db.attrs:
                if a.handle < s or a.handle > e:
                    continue
                ub = bytes(a.uuid)
                f = 1 if len(ub) == 2 else 2
                if fmt is None:
                    fmt = f
                elif f != fmt:
                    break
                ent = struct.pack("<H", a.handle) + (ub if len(ub) != 4 else a.uuid.full())
                if 2 + len(out) + len(ent) > c.mtu:
                    break
                out += ent
            if fmt is None:
                return _err(op, s, G.E_ATTR_NOT_FOUND)
            return bytes([G.FIND_INFO_RSP, fmt]) + out
        if op == G.FIND_BY_TYPE_REQ:
            s, e, t = struct.unpack_from("<HHH", p, 1)
            val = p[7:]
            if s == 0 or s > e:
                return _err(op, s, G.E_INVALID_HANDLE)
            out = b""
            if t == 0x2800:
                for a in db.services():
                    if s <= a.handle <= e and bytes(a.value) == val:  # NimBLE: the value's raw bytes
                        if 1 + len(out) + 4 > c.mtu:
                            break
                        out += struct.pack("<HH", a.handle, a.end)
            if not out:
                return _err(op, s, G.E_ATTR_NOT_FOUND)
            return bytes([G.FIND_BY_TYPE_RSP]) + out
        if op == G.READ_BY_TYPE_REQ:
            s, e = struct.unpack_from("<HH", p, 1)
            t = UUID(p[5:])
            if s == 0 or s > e:
                return _err(op, s, G.E_INVALID_HANDLE)
            entries = []
            size = None
            for a in db.attrs:
                if a.handle < s or a.handle > e or a.uuid != t:
                    continue
                v, err = _read_value(ble, c, a, op)
                if err:
                    if not entries:
                        return _err(op, a.handle, err)
                    break
                v = v[: min(c.mtu - 4, 253)]
                if size is None:
                    size = len(v)
                elif len(v) != size:
                    break
                if 2 + (len(entries) + 1) * (2 + size) > c.mtu:
                    break
                entries.append(struct.pack("<H", a.handle) + v)
            if not entries:
                return _err(op, s, G.E_ATTR_NOT_FOUND)
            return bytes([G.READ_BY_TYPE_RSP, 2 + size]) + b"".join(entries)
        if op in (G.READ_REQ, G.READ_BLOB_REQ):
            h = struct.unpack_from("<H", p, 1)[0]
            off = struct.unpack_from("<H", p, 3)[0] if op == G.READ_BLOB_REQ else 0
            a = db.get(h)
            if a is None:
                return _err(op, h, G.E_INVALID_HANDLE)
            v, err = _read_value(ble, c, a, op)
            if err:
                return _err(op, h, err)
            if off > len(v):
                return _err(op, h, G.E_INVALID_OFFSET)
            return bytes([G.READ_RSP if op == G.READ_REQ else G.READ_BLOB_RSP]) + v[off: off + c.mtu - 1]
        if op == G.READ_BY_GROUP_REQ:
            s, e = struct.unpack_from("<HH", p, 1)
            t = UUID(p[5:])
            if s == 0 or s > e:
                return _err(op, s, G.E_INVALID_HANDLE)
            if t != G.U_PRIMARY:
                return _err(op, s, G.E_UNSUPPORTED_GROUP)
            entries = []
            size = None
            for a in db.services():
                if a.handle < s or a.handle > e:
                    continue
                v = bytes(a.value)
                if size is None:
                    size = len(v)
                elif len(v) != size:
                    break
                if 2 + (len(entries) + 1) * (4 + size) > c.mtu:
                    break
                entries.append(struct.pack("<HH", a.handle, a.end) + v)
            if not entries:
                return _err(op, s, G.E_ATTR_NOT_FOUND)
            return bytes([G.READ_BY_GROUP_RSP, 4 + size]) + b"".join(entries)
        if op in (G.WRITE_REQ, G.WRITE_CMD):
            h = struct.unpack_from("<H", p, 1)[0]
            val = bytes(p[3:])
            a = db.get(h)
            if a is None:
                return None if op == G.WRITE_CMD else _err(op, h, G.E_INVALID_HANDLE)
            err = ble._perm_check(c, a, write=True)
            if err:
                return None if op == G.WRITE_CMD else _err(op, h, err)
            if a.kind == "cccd":
                c.cccd[h] = int.from_bytes(val[:2].ljust(2, b"\0"), "little")
                a.value = bytearray(val[:2])
            else:
                if a.append:
                    nv = (bytes(a.value) + val)[: a.max_len]
                else:
                    nv = val[: a.max_len]
                a.value = bytearray(nv)
                ble._irq(IRQ_GATTS_WRITE, (c.handle, h), conn=c.handle)
            return None if op == G.WRITE_CMD else bytes([G.WRITE_RSP])
    except struct.error:
        return None if op & 0x40 else _err(op, 0, G.E_INVALID_PDU)
    if op & 0x40:
        return None
    return _err(op, 0, G.E_REQ_NOT_SUPPORTED)
