"""Pairing method selection (Vol 3 Part H 2.3.5.1, Tables 2.6-2.8)."""

from . import const as C

_JW = (C.JUST_WORKS, None)
_PK_RD = (C.PASSKEY, C.RESP_DISPLAYS)  # responder displays, initiator inputs
_PK_ID = (C.PASSKEY, C.INIT_DISPLAYS)  # initiator displays, responder inputs
_PK_BI = (C.PASSKEY, C.BOTH_INPUT)
_NC = (C.NUMERIC_COMPARISON, None)

# IO_TABLE[sc][initiator io_cap][responder io_cap] -> (method, passkey roles); Table 2.8
# (the spec prints responder rows x initiator columns; this is the same table transposed)
_LEGACY = (
    # resp: DisplayOnly, DisplayYesNo, KeyboardOnly, NoInputNoOutput, KeyboardDisplay
    (_JW, _JW, _PK_ID, _JW, _PK_ID),  # init DisplayOnly
    (_JW, _JW, _PK_ID, _JW, _PK_ID),  # init DisplayYesNo
    (_PK_RD, _PK_RD, _PK_BI, _JW, _PK_RD),  # init KeyboardOnly
    (_JW, _JW, _JW, _JW, _JW),  # init NoInputNoOutput
    (_PK_RD, _PK_RD, _PK_ID, _JW, _PK_ID),  # init KeyboardDisplay
)
_SC = (
    (_JW, _JW, _PK_ID, _JW, _PK_ID),  # init DisplayOnly
    (_JW, _NC, _PK_ID, _JW, _NC),  # init DisplayYesNo
    (_PK_RD, _PK_RD, _PK_BI, _JW, _PK_RD),  # init KeyboardOnly
    (_JW, _JW, _JW, _JW, _JW),  # init NoInputNoOutput
    (_PK_RD, _NC, _PK_ID, _JW, _NC),  # init KeyboardDisplay
)
IO_TABLE = (_LEGACY, _SC)


def select(sc, init_io, resp_io, init_oob, resp_oob, init_mitm, resp_mitm):
    """-> (method, passkey_roles or None).
    Legacy: OOB if both have OOB data; else Just Works unless one side wants MITM; else Table 2.8.
    LE SC: OOB if either has the peer's OOB data; else the same MITM rule and Table 2.8."""
    if sc:
        if init_oob or resp_oob:
            return (C.OOB, None)
    elif init_oob and resp_oob:
        return (C.OOB, None)
    if not (init_mitm or resp_mitm):
        return _JW
    return IO_TABLE[1 if sc else 0][init_io][resp_io]
