"""ATT/GATT as NimBLE does it under MicroPython: the server database with NimBLE's permission
checks, and the client procedures behind `gattc_*` (one request outstanding per connection).

The server and client speak real ATT PDUs (Core Vol 3 Part F) over the simulated link, so the
trace shows every request, response and error.
"""

import struct

from .uuid import UUID

# ATT opcodes
ERROR_RSP = 0x01
MTU_REQ = 0x02
MTU_RSP = 0x03
FIND_INFO_REQ = 0x04
FIND_INFO_RSP = 0x05
FIND_BY_TYPE_REQ = 0x06
FIND_BY_TYPE_RSP = 0x07
READ_BY_TYPE_REQ = 0x08
READ_BY_TYPE_RSP = 0x09
READ_REQ = 0x0A
READ_RSP = 0x0B
READ_BLOB_REQ = 0x0C
READ_BLOB_RSP = 0x0D
READ_BY_GROUP_REQ = 0x10
READ_BY_GROUP_RSP = 0x11
WRITE_REQ = 0x12
WRITE_RSP = 0x13
WRITE_CMD = 0x52
NOTIFY = 0x1B
INDICATE = 0x1D
CONFIRM = 0x1E

OPCODE_NAMES = {
    0x01: "ATT_ERROR_RSP", 0x02: "ATT_MTU_REQ", 0x03: "ATT_MTU_RSP", 0x04: "ATT_FIND_INFO_REQ",
    0x05: "ATT_FIND_INFO_RSP", 0x06: "ATT_FIND_BY_TYPE_REQ", 0x07: "ATT_FIND_BY_TYPE_RSP",
    0x08: "ATT_READ_BY_TYPE_REQ", 0x09: "ATT_READ_BY_TYPE_RSP", 0x0A: "ATT_READ_REQ", 0x0B: "ATT_READ_RSP",
    0x0C: "ATT_READ_BLOB_REQ", 0x0D: "ATT_READ_BLOB_RSP", 0x10: "ATT_READ_BY_GROUP_REQ",
    0x11: "ATT_READ_BY_GROUP_RSP", 0x12: "ATT_WRITE_REQ", 0x13: "ATT_WRITE_RSP", 0x52: "ATT_WRITE_CMD",
    0x1B: "ATT_NOTIFY", 0x1D: "ATT_INDICATE", 0x1E: "ATT_CONFIRM",
}

# ATT errors
E_INVALID_HANDLE = 0x01
E_READ_NOT_PERMITTED = 0x02
E_WRITE_NOT_PERMITTED = 0x03
E_INVALID_PDU = 0x04
E_INSUFFICIENT_AUTHEN = 0x05
E_REQ_NOT_SUPPORTED = 0x06
E_INVALID_OFFSET = 0x07
E_INSUFFICIENT_AUTHOR = 0x08
E_ATTR_NOT_FOUND = 0x0A
E_ATTR_NOT_LONG = 0x0B
E_INSUFFICIENT_ENC = 0x0F
E_UNSUPPORTED_GROUP = 0x10

# MicroPython flags (= NimBLE BLE_GATT_CHR_F_*)
F_READ = 0x0002
F_WRITE_NO_RESPONSE = 0x0004
F_WRITE = 0x0008
F_NOTIFY = 0x0010
F_INDICATE = 0x0020
F_READ_ENC = 0x0200
F_READ_AUTHEN = 0x0400
F_READ_AUTHOR = 0x0800
F_WRITE_ENC = 0x1000
F_WRITE_AUTHEN = 0x2000
F_WRITE_AUTHOR = 0x4000

U_PRIMARY = UUID(0x2800)
U_CHARACTERISTIC = UUID(0x2803)
U_CCCD = UUID(0x2902)

DEFAULT_ATTR_LEN = 20  # MP_BLUETOOTH_DEFAULT_ATTR_LEN


def describe(payload):
    """(name, text) for one ATT PDU (for the trace)."""
    if not payload:
        return "ATT_EMPTY", ""
    op = payload[0]
    name = OPCODE_NAMES.get(op, "ATT_0x%02X" % op)
    p = payload[1:]
    try:
        if op == ERROR_RSP:
            req, h, err = struct.unpack("<BHB", p)
            return name, "%s handle=%d err=0x%02X" % (OPCODE_NAMES.get(req, hex(req)), h, err)
        if op in (MTU_REQ, MTU_RSP):
            return name, "mtu=%d" % struct.unpack("<H", p)[0]
        if op in (READ_REQ,):
            return name, "handle=%d" % struct.unpack("<H", p)[0]
        if op in (WRITE_REQ, WRITE_CMD, NOTIFY, INDICATE):
            return name, "handle=%d value=%s" % (struct.unpack_from("<H", p)[0], p[2:].hex())
        if op in (READ_RSP, READ_BLOB_RSP):
            return name, "value=%s" % p.hex()
        if op in (READ_BY_TYPE_REQ, READ_BY_GROUP_REQ, FIND_INFO_REQ):
            s, e = struct.unpack_from("<HH", p)
            extra = (" type=%r" % UUID(p[4:])) if len(p) > 4 else ""
            return name, "%d..%d%s" % (s, e, extra)
    except (struct.error, ValueError):
        pass
    return name, p.hex()


class Attr:
    __slots__ = ("handle", "uuid", "kind", "flags", "value", "max_len", "append", "chr_flags", "end")

    def __init__(self, handle, uuid, kind, flags, value=b"", chr_flags=0):
        self.handle = handle
        self.uuid = uuid
        self.kind = kind  # "service" | "chrdecl" | "value" | "dsc" | "cccd" | "static"
        self.flags = flags
        self.value = bytearray(value)
        self.max_len = DEFAULT_ATTR_LEN
        self.append = False
        self.chr_flags = chr_flags
        self.end = handle  # services: last handle of the group


class Database:
    """The server's attribute table: NimBLE's GAP and GATT services, then the user's."""

    def __init__(self, gap_name):
        self.attrs = []
        self._gap_name = gap_name
        self.reset()

    def reset(self):
        self.attrs = []
        # GAP service: device name (read), appearance (read)
        s = self._service(UUID(0x1800))
        self._chr(UUID(0x2A00), F_READ, static=True)
        self._chr(UUID(0x2A01), F_READ, value=b"\x00\x00", static=True)
        s.end = self.attrs[-1].handle
        s = self._service(UUID(0x1801))
        self._chr(UUID(0x2A05), F_INDICATE, static=True)
        s.end = self.attrs[-1].handle

    def _next(self):
        return len(self.attrs) + 1

    def _service(self, uuid):
        a = Attr(self._next(), U_PRIMARY, "service", F_READ, bytes(uuid))
        self.attrs.append(a)
        return a

    def _chr(self, uuid, flags, value=b"", static=False):
        decl_h = self._next()
        vh = decl_h + 1
        props = flags & 0xFF
        decl = Attr(decl_h, U_CHARACTERISTIC, "chrdecl", F_READ, struct.pack("<BH", props, vh) + bytes(uuid))
        self.attrs.append(decl)
        v = Attr(vh, uuid, "static" if static else "value", flags, value, chr_flags=flags)
        self.attrs.append(v)
        if flags & (F_NOTIFY | F_INDICATE):
            c = Attr(self._next(), U_CCCD, "cccd", F_READ | F_WRITE, b"\x00\x00")
            self.attrs.append(c)
        return v

    def register(self, services):
        """services: MicroPython's definition; returns the tuple of handle tuples."""
        self.reset()
        out = []
        for svc in services:
            if not isinstance(svc, (tuple, list)) or len(svc) != 2:
                raise TypeError("invalid service")
            suuid, chrs = svc
            if not isinstance(suuid, UUID):
                raise TypeError("invalid UUID")
            s = self._service(suuid)
            handles = []
            for ch in chrs:
                if len(ch) == 2:
                    cuuid, flags = ch
                    dscs = ()
                elif len(ch) == 3:
                    cuuid, flags, dscs = ch
                else:
                    raise TypeError("invalid characteristic tuple")
                if not isinstance(cuuid, UUID):
                    raise TypeError("invalid UUID")
                v = self._chr(cuuid, flags)
                handles.append(v.handle)
                for d in dscs:
                    duuid, dflags = d
                    # descriptors: only READ/WRITE are mapped, security flags ignored
                    perm = (F_READ if dflags & F_READ else 0) | (F_WRITE if dflags & (F_WRITE | F_WRITE_NO_RESPONSE)
                                                                 else 0)
                    a = Attr(self._next(), duuid, "dsc", perm)
                    self.attrs.append(a)
                    handles.append(a.handle)
            s.end = self.attrs[-1].handle
            out.append(tuple(handles))
        return tuple(out)

    def get(self, handle):
        if 1 <= handle <= len(self.attrs):
            return self.attrs[handle - 1]
        return None

    def user_value(self, handle):
        a = self.get(handle)
        if a is None or a.kind not in ("value", "dsc"):
            return None
        return a

    def services(self):
        return [a for a in self.attrs if a.kind == "service"]

    def cccd_for(self, value_handle):
        a = self.get(value_handle + 1)
        if a is not None and a.kind == "cccd":
            return a
        return None

    def read_value(self, a):
        if a.handle == 3 and a.kind == "static":
            return self._gap_name()
        return bytes(a.value)


def uuid_bytes(u):
    return bytes(u)


def pack_handle_uuid(h, u):
    return struct.pack("<H", h) + bytes(u)
