# The package's text: name tables of reasons and events, reprs, status printing, long messages;
# imported only when text is needed. Bytecode loaded from .py/.mpy lives in the heap, so text an app at rest never needs
# stays out of the modules it imports (manager, store, blob, const). Not part of the API.

# Names of the failure reasons (blesmp.const): codes in _RCODES order, one string (no dict).
_RCODES = b"\x00\x01\x03\x04\x05\x06\x08\x09\x0c\x20\x21\x22\x23\x24\x25\x26\x27\x28\x29\x2a\x2b\x2c\x2d\x2e\x30\x31"
_RNAMES = ("OK PASSKEY_ENTRY_FAILED AUTH_REQUIREMENTS CONFIRM_VALUE_FAILED PAIRING_NOT_SUPPORTED "
           "ENCRYPTION_KEY_SIZE UNSPECIFIED REPEATED_ATTEMPTS NUMERIC_COMPARISON_FAILED REJECTED "
           "PROMPT_TIMEOUT LINK_LOST SMP_TIMEOUT KEY_TOO_SHORT LEGACY_UNDER_SC_ONLY WEAKER_THAN_BOND "
           "PEER_FAILED AUTH_FAILED LEVEL_TOO_LOW CENTRAL_NO_PROMPTS NOT_IN_WINDOW NOT_ALLOWED "
           "KEY_MISSING BUSY STORE_FULL METHOD_NOT_ALLOWED")
_EVENT_NAMES = "- SEC_REQ PASSKEY_NOTIF PASSKEY_REQ NC_REQ AUTH_CMPL BOND_ADDED BOND_REMOVED PROMPT_CANCEL"

CENTRAL_STALL = ("conn %d: as central the firmware cannot show passkey/numeric-comparison prompts "
                 "to Python; the pairing would stall for 30 s (use io=IO_NO_INPUT_OUTPUT/mitm=False "
                 "as central, or pair from the other side)")


def reason_name(reason):
    i = _RCODES.find(bytes((reason & 0xFF,))) if isinstance(reason, int) and 0 <= reason < 256 else -1
    return _RNAMES.split()[i] if i >= 0 else "0x%02x" % reason


def event_name(event):
    if isinstance(event, int) and 0 < event <= 8:
        return _EVENT_NAMES.split()[event]
    return str(event)


def hexaddr(b, fmt="%02x"):
    return ":".join(fmt % x for x in b)


def auth_repr(r):
    # %s for what came from the firmware's tuples unchecked (the same text for ints): a repr
    # (status()) must not raise on a malformed event the manager kept
    return "<AUTH_CMPL conn=%s %s %s level=%d key_size=%d auth=%d bonded=%d sc=%s%s peer=%s/%s>" % (
        r.conn, "success" if r.success else "FAILED",
        reason_name(r.reason), r.level, r.key_size, r.authenticated, r.bonded,
        r.sc, " reencrypt" if r.reencrypt else "", r.addr_type, hexaddr(r.addr))


def link_repr(c):
    return "<conn %s %s %s/%s level=%d enc=%d auth=%d bonded=%d key_size=%d sc=%s%s>" % (
        c.handle, "central" if c.role == 0 else "peripheral", c.addr_type,
        hexaddr(c.addr), c.level, c.enc, c.auth, c.bonded, c.key_size, c.sc,
        " busy" if c.busy else "")


def sec_repr(s):
    return "<Sec %d %s ks=%d auth=%d sc=%d ltk=%d irk=%d csrk=%d>" % (
        s.addr_type, hexaddr(s.addr, "%02X"), s.key_size, s.authenticated, s.sc,
        s.ltk is not None, s.irk is not None, s.csrk is not None,
    )


def bond_repr(b):
    return "<Bond %d %s ks=%d auth=%d sc=%d irk=%d%s>" % (
        b.addr_type, hexaddr(b.addr, "%02X"), b.key_size,
        b.authenticated, b.sc, b.irk is not None, " pinned" if b.pinned else "",
    )


def repr_of(o):
    # repr() of AuthResult, Link (blesmp.link), Bond (store), Sec (blob)
    n = type(o).__name__
    if n == "AuthResult":
        return auth_repr(o)
    if n == "Link":
        return link_repr(o)
    if n == "Bond":
        return bond_repr(o)
    return sec_repr(o)


def status(sm):
    """SecurityManager.status(): configuration, connections, bonds."""
    print("blesmp: io=%d bond=%d mitm=%d sc=%d sc_only=%d level=%d min_key_size=%d window=%s" % (
        sm.io, sm.bond, sm.mitm, sm.sc, sm.sc_only, sm.level, sm.min_key_size,
        ("open" if sm.window_open() else "closed") if sm.window else "off"))
    if not sm._links:
        print("  no connections")
    for c in sm._links.values():
        print(" ", c)
        if c.result is not None:
            print("    last:", c.result)
    try:
        bonds = sm.store.bonds()
    except Exception as e:  # noqa: BLE001
        print("  bonds: unreadable (%r)" % (e,))
        return
    print("  %d bond(s)" % len(bonds))
    for b in bonds:
        print("   ", b)
