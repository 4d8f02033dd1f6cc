# The cheap facts about NimBLE's secret-store values that resident code needs (the store, the
# manager, the link-time code): the store key of an address, a raw blob's layout and strength,
# read in place. Decoding and encoding live in blesmp.blob (the public module, which re-exports
# these), loaded only when a bond is decoded, so a board at rest does not hold it.
# See blesmp.blob for the three layouts. Not part of the API: use blesmp.blob.
ESP88 = "esp88"
ESP80 = "esp80"
NIMBLE80 = "nimble80"


def detect(blob):
    """The layout of a raw blob, or None if its size is none of them."""
    n = len(blob)
    if n == 88:
        return ESP88
    if n == 80:
        return NIMBLE80 if blob[7] else ESP80
    return None


def addr_key(addr_type, addr):
    """The 7-byte store key (NimBLE `ble_addr_t`) of an address given MSB first."""
    return bytes((addr_type & 1,)) + bytes(reversed(bytes(addr)))


def info(blob):
    """(key_size, authenticated, sc) of a raw blob, (0, 0, 0) for None/no LTK."""
    if not blob:
        return (0, 0, 0)
    lay = detect(blob)
    if lay is None or not blob[40] & 1:
        return (0, 0, 0)
    if lay == ESP88:
        return (blob[10], blob[80] & 1, (blob[80] >> 1) & 1)
    return (blob[7] if lay == NIMBLE80 else blob[10], (blob[74] >> 1) & 1, (blob[74] >> 2) & 1)

