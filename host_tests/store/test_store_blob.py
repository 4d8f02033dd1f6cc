# Runs on MicroPython too (make test-mp).
# NimBLE's ble_store_value_sec layouts (lib/blesmp/blob.py), checked against
# blobs built byte by byte from the documented offsets (not from blob.py's own
# struct formats). Runs under pytest and under MicroPython (tools/checks/mptest.py).
from blesmp import blob

ADDR = bytes((0xC0, 0x11, 0x22, 0x33, 0x44, 0x55))  # MSB first, as IRQs show it
LTK = bytes(range(16))
IRK = bytes(range(0x20, 0x30))
CSRK = bytes(range(0x40, 0x50))


def _put(b, off, data):
    for i, x in enumerate(data):
        b[off + i] = x


def _le(v, n):
    return bytes((v >> (8 * i)) & 0xFF for i in range(n))


def _rev(b):
    return bytes(reversed(b))


def hand_esp88(ks=16, ediv=0x1234, rand=0x0102030405060708, auth=1, sc=0, counter=7):
    b = bytearray(88)
    b[0] = 1
    _put(b, 1, _rev(ADDR))
    b[10] = ks
    _put(b, 12, _le(ediv, 2))
    _put(b, 16, _le(rand, 8))
    _put(b, 24, _rev(LTK))
    b[40] = 1
    _put(b, 41, _rev(IRK))
    b[57] = 1
    _put(b, 58, _rev(CSRK))
    b[74] = 1
    _put(b, 76, _le(counter, 4))
    b[80] = auth | (sc << 1)
    return bytes(b)


def hand_nimble80(ks=16, ediv=0x1234, rand=0x0102030405060708, auth=1, sc=1):
    b = bytearray(80)
    b[0] = 1
    _put(b, 1, _rev(ADDR))
    b[7] = ks
    _put(b, 8, _le(ediv, 2))
    _put(b, 16, _le(rand, 8))
    _put(b, 24, _rev(LTK))
    b[40] = 1
    _put(b, 41, _rev(IRK))
    b[57] = 1
    b[74] = 0 | (auth << 1) | (sc << 2)  # no CSRK
    return bytes(b)


def hand_esp80(ks=12, auth=0, sc=1):
    b = bytearray(80)
    b[0] = 0
    _put(b, 1, _rev(ADDR))
    b[10] = ks
    _put(b, 24, _rev(LTK))
    b[40] = 1
    b[74] = 1 | (auth << 1) | (sc << 2)
    _put(b, 58, _rev(CSRK))
    return bytes(b)


def test_detect_by_size_and_byte7():
    assert blob.detect(hand_esp88()) == blob.ESP88
    assert blob.detect(hand_nimble80()) == blob.NIMBLE80
    assert blob.detect(hand_esp80()) == blob.ESP80
    assert blob.detect(bytes(81)) is None
    assert blob.detect(b"") is None


def test_decode_esp88_fields():
    s = blob.decode(hand_esp88())
    assert (s.addr_type, s.addr) == (1, ADDR)
    assert s.key_size == 16 and s.ediv == 0x1234 and s.rand == 0x0102030405060708
    assert s.ltk == LTK and s.irk == IRK and s.csrk == CSRK
    assert s.sign_counter == 7 and s.authenticated == 1 and s.sc == 0


def test_decode_nimble80_fields():
    s = blob.decode(hand_nimble80())
    assert (s.addr_type, s.addr) == (1, ADDR)
    assert s.key_size == 16 and s.ediv == 0x1234 and s.rand == 0x0102030405060708
    assert s.ltk == LTK and s.irk == IRK and s.csrk is None
    assert s.authenticated == 1 and s.sc == 1 and s.sign_counter == 0


def test_decode_esp80_fields():
    s = blob.decode(hand_esp80())
    assert (s.addr_type, s.addr) == (0, ADDR)
    assert s.key_size == 12 and s.ltk == LTK and s.irk is None and s.csrk == CSRK
    assert s.authenticated == 0 and s.sc == 1


def test_encode_reproduces_hand_built_blobs():
    assert blob.encode(blob.decode(hand_esp88()), blob.ESP88) == hand_esp88()
    assert blob.encode(blob.decode(hand_nimble80()), blob.NIMBLE80) == hand_nimble80()
    assert blob.encode(blob.decode(hand_esp80()), blob.ESP80) == hand_esp80()


def test_convert_between_layouts_keeps_keys():
    for src in (hand_esp88(sc=1, counter=0), hand_nimble80(), hand_esp80()):
        for lay in blob.LAYOUTS:
            out = blob.convert(src, lay)
            assert len(out) == blob.SIZES[lay]
            assert blob.detect(out) == lay or blob.decode(src).key_size == 0
            a, b = blob.decode(src), blob.decode(out)
            for f in ("addr_type", "addr", "key_size", "ediv", "rand", "ltk", "irk", "csrk", "authenticated", "sc"):
                assert getattr(a, f) == getattr(b, f), (lay, f)
    x = hand_esp88()
    assert blob.convert(x, blob.ESP88) is x
    # 88 -> 80 -> 88 loses only the sign counter, which 80-byte layouts lack
    back = blob.convert(blob.convert(hand_esp88(counter=0), blob.NIMBLE80), blob.ESP88)
    assert back == hand_esp88(counter=0)


def test_info_reads_strength_without_decoding():
    assert blob.info(hand_esp88(ks=16, auth=1, sc=0)) == (16, 1, 0)
    assert blob.info(hand_nimble80(ks=10, auth=0, sc=1)) == (10, 0, 1)
    assert blob.info(hand_esp80(ks=12, auth=1, sc=1)) == (12, 1, 1)
    assert blob.info(None) == (0, 0, 0)
    nolt = bytearray(hand_esp88())
    nolt[40] = 0
    assert blob.info(bytes(nolt)) == (0, 0, 0)


def test_decode_rejects_wrong_size():
    try:
        blob.decode(bytes(87))
    except ValueError:
        return
    raise AssertionError("no ValueError")
