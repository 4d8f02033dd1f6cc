"""SMP PDU codec (Vol 3 Part H 3.3-3.6).

Values are MSB-first (spec order) on the Python side; on the air every multi-octet field is
LSB-first, each field reversed on its own. LENGTHS[opcode] is the exact PDU length (opcode
included), 0 for an opcode the specification does not define.

    encode(opcode, *fields) -> bytes           decode(pdu) -> (opcode, fields tuple)
    describe(pdu) -> "0x01 PAIRING_REQUEST 01030009100707"

decode raises PduError(reason) with the Pairing Failed reason a receiver answers: 0x07 Command
Not Supported for an unknown opcode, 0x0A Invalid Parameters for a wrong length.
"""

from . import const as C

# opcode -> (exact length, field layout); layout letters: B = u8, H = u16 LE, Q = u64 LE,
# K = 16-byte value reversed, A = 6-byte address reversed, P = 32-byte coordinate reversed
FORMATS = {
    C.PAIRING_REQUEST: (7, "BBBBBB"),
    C.PAIRING_RESPONSE: (7, "BBBBBB"),
    C.PAIRING_CONFIRM: (17, "K"),
    C.PAIRING_RANDOM: (17, "K"),
    C.PAIRING_FAILED: (2, "B"),
    C.ENCRYPTION_INFORMATION: (17, "K"),
    C.CENTRAL_IDENTIFICATION: (11, "HQ"),
    C.IDENTITY_INFORMATION: (17, "K"),
    C.IDENTITY_ADDRESS_INFORMATION: (8, "BA"),
    C.SIGNING_INFORMATION: (17, "K"),
    C.SECURITY_REQUEST: (2, "B"),
    C.PAIRING_PUBLIC_KEY: (65, "PP"),
    C.PAIRING_DHKEY_CHECK: (17, "K"),
    C.KEYPRESS_NOTIFICATION: (2, "B"),
}

LENGTHS = bytes(FORMATS[op][0] if op in FORMATS else 0 for op in range(256))
_SIZES = {"B": 1, "H": 2, "Q": 8, "K": 16, "A": 6, "P": 32}


class PduError(Exception):
    def __init__(self, reason, message):
        Exception.__init__(self, message)
        self.reason = reason


def decode(pdu):
    """Bytes -> (opcode, fields). Raises PduError for an empty PDU, unknown opcode or bad length."""
    if not pdu:
        raise PduError(C.INVALID_PARAMETERS, "empty SMP PDU")
    op = pdu[0]
    length = LENGTHS[op]
    if not length:
        raise PduError(C.COMMAND_NOT_SUPPORTED, "unknown SMP opcode 0x%02x" % op)
    if len(pdu) != length:
        raise PduError(C.INVALID_PARAMETERS, "%s: %d bytes, expected %d" % (C.OPCODE_NAMES[op], len(pdu), length))
    fields = []
    off = 1
    for t in FORMATS[op][1]:
        n = _SIZES[t]
        raw = pdu[off : off + n]
        if t == "B":
            fields.append(raw[0])
        elif t in "HQ":
            fields.append(int.from_bytes(raw, "little"))
        else:
            fields.append(bytes(raw[::-1]))
        off += n
    return op, tuple(fields)


def encode(op, *fields):
    """(opcode, fields MSB-first) -> on-air bytes. ValueError for a wrong field."""
    if op not in FORMATS:
        raise ValueError("unknown opcode 0x%02x" % op)
    layout = FORMATS[op][1]
    if len(fields) != len(layout):
        raise ValueError("%s takes %d fields" % (C.OPCODE_NAMES[op], len(layout)))
    out = bytearray((op,))
    for t, v in zip(layout, fields):
        n = _SIZES[t]
        if t == "B":
            out.append(v)
        elif t in "HQ":
            out += int(v).to_bytes(n, "little")
        else:
            if len(v) != n:
                raise ValueError("%s field must be %d bytes" % (C.OPCODE_NAMES[op], n))
            out += bytes(v)[::-1]
    return bytes(out)


# Convenience encoders used by the engine (MSB-first values in)
def pairing_request(io_cap, oob, auth_req, max_key_size, init_kd, resp_kd):
    return bytes((C.PAIRING_REQUEST, io_cap, oob, auth_req, max_key_size, init_kd, resp_kd))


def pairing_response(io_cap, oob, auth_req, max_key_size, init_kd, resp_kd):
    return bytes((C.PAIRING_RESPONSE, io_cap, oob, auth_req, max_key_size, init_kd, resp_kd))


def value16(op, v):
    """CONFIRM, RANDOM, ENCRYPTION_INFORMATION, IDENTITY_INFORMATION, SIGNING_INFORMATION, DHKEY_CHECK."""
    return bytes((op,)) + v[::-1]


def pairing_failed(reason):
    return bytes((C.PAIRING_FAILED, reason))


def security_request(auth_req):
    return bytes((C.SECURITY_REQUEST, auth_req))


def keypress(kind):
    return bytes((C.KEYPRESS_NOTIFICATION, kind))


def central_identification(ediv, rand):
    return bytes((C.CENTRAL_IDENTIFICATION,)) + ediv.to_bytes(2, "little") + rand.to_bytes(8, "little")


def identity_address(addr_type, addr):
    return bytes((C.IDENTITY_ADDRESS_INFORMATION, addr_type)) + addr[::-1]


def public_key(x, y):
    return bytes((C.PAIRING_PUBLIC_KEY,)) + x[::-1] + y[::-1]


def name(pdu):
    if not pdu:
        return "EMPTY"
    return C.OPCODE_NAMES.get(pdu[0], "UNKNOWN")


def describe(pdu):
    """One readable trace line: opcode, name, hex (plus the reason for Pairing Failed)."""
    if not pdu:
        return "(empty PDU)"
    text = "0x%02x %s %s" % (pdu[0], name(pdu), bytes(pdu).hex())
    if pdu[0] == C.PAIRING_FAILED and len(pdu) == 2:
        text += " (%s)" % C.reason_name(pdu[1])
    return text
