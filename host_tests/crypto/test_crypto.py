# Runs on MicroPython too (make test-mp).
# The crypto toolbox against the specification's sample data and RFC 4493.
# Runs under pytest (CPython) and under tools/checks/mptest.py (MicroPython, viper and
# pure backends): plain asserts only, no pytest features.
import json
import os

from blesmp import _pure, crypto

try:
    from blesmp import _viper
except (SyntaxError, ImportError):
    _viper = None

_HERE = __file__.rsplit("/", 1)[0]


def _vectors(function):
    with open(_HERE + "/smp_sample_data.json") as f:
        data = json.load(f)
    out = [v for v in data if v["function"] == function]
    assert out, function
    return out


def _h(s):
    return bytes.fromhex(s)


def _first(d, prefix):
    # The sample file labels some inputs "W (DHKey)" or "keyID (constant: ...)".
    for k in d:
        if k == prefix or k.startswith(prefix + " "):
            return d[k]
    raise KeyError(prefix)


def test_aes_cmac_rfc4493():
    for v in _vectors("aes_cmac"):
        i = v["inputs_msb_first"]
        got = crypto.aes_cmac(_h(i["K"]), _h(i["M"]))
        assert got == _h(v["expected_msb_first"]["T"]), v["id"]


def test_aes_cmac_long_message_and_reuse():
    # Longer than the preallocated buffer, and the same key used repeatedly:
    # the CBC chaining value must be cancelled on every call.
    key = _h("2b7e151628aed2a6abf7158809cf4f3c")
    m = _h(_vectors("aes_cmac")[3]["inputs_msb_first"]["M"])
    t = _h("51f0bebf7e3b9d92fc49741779363cfe")
    for _ in range(3):
        assert crypto.aes_cmac(key, m) == t
        assert crypto.aes_cmac(key, bytearray(m)) == t
        assert crypto.aes_cmac(key, memoryview(m)) == t
    big = crypto.aes_cmac(key, m * 3)
    assert len(big) == 16 and big != t
    assert crypto.aes_cmac(key, m * 3) == big


def test_e_is_s1_sample():
    # The s1 sample doubles as a test of e: e(0, 112233...00) = s1 output.
    assert crypto.e(bytes(16), _h("112233445566778899aabbccddeeff00")) == _h(
        "9a1fe1f0e8b0f49b5b4216ae796da062"
    )


def test_c1():
    for v in _vectors("c1"):
        i = v["inputs_msb_first"]
        got = crypto.c1(
            _h(i["k"]), _h(i["r"]), _h(i["preq"]), _h(i["pres"]),
            int(i["iat"], 16), int(i["rat"], 16), _h(i["ia"]), _h(i["ra"]),
        )
        assert got == _h(v["expected_msb_first"]["c1"])


def test_s1():
    for v in _vectors("s1"):
        i = v["inputs_msb_first"]
        assert crypto.s1(_h(i["k"]), _h(i["r1"]), _h(i["r2"])) == _h(v["expected_msb_first"]["s1"])


def test_ah():
    for v in _vectors("ah"):
        i = v["inputs_msb_first"]
        got = crypto.ah(_h(_first(i, "IRK")), _h(_first(i, "prand")))
        assert got == _h(v["expected_msb_first"]["ah"])


def test_f4():
    for v in _vectors("f4"):
        i = v["inputs_msb_first"]
        got = crypto.f4(_h(i["U"]), _h(i["V"]), _h(i["X"]), int(i["Z"], 16))
        assert got == _h(v["expected_msb_first"]["f4"])


def test_f5():
    for v in _vectors("f5"):
        i = v["inputs_msb_first"]
        mackey, ltk = crypto.f5(
            _h(_first(i, "W")), _h(i["N1"]), _h(i["N2"]), _h(i["A1"]), _h(i["A2"])
        )
        ex = v["expected_msb_first"]
        assert mackey == _h(_first(ex, "MacKey"))
        assert ltk == _h(_first(ex, "LTK"))


def test_f6():
    for v in _vectors("f6"):
        i = v["inputs_msb_first"]
        got = crypto.f6(
            _h(_first(i, "W")), _h(i["N1"]), _h(i["N2"]), _h(i["R"]), _h(i["IOcap"]),
            _h(i["A1"]), _h(i["A2"]),
        )
        assert got == _h(v["expected_msb_first"]["f6"])


def test_g2():
    for v in _vectors("g2"):
        i = v["inputs_msb_first"]
        got = crypto.g2(_h(i["U"]), _h(i["V"]), _h(i["X"]), _h(i["Y"]))
        ex = v["expected_msb_first"]
        assert got == int(ex["g2"], 16)
        assert got % 1000000 == int(_first(ex, "six-digit value"))


def test_h6():
    for v in _vectors("h6"):
        i = v["inputs_msb_first"]
        assert crypto.h6(_h(i["W"]), _h(_first(i, "keyID"))) == _h(v["expected_msb_first"]["h6"])


def test_h7():
    for v in _vectors("h7"):
        i = v["inputs_msb_first"]
        assert crypto.h7(_h(_first(i, "SALT")), _h(i["W"])) == _h(v["expected_msb_first"]["h7"])


def test_ctkd_chains_h6_h7():
    # Cross-transport key derivation samples exercise h6 and h7 together.
    for v in _vectors("ctkd_ltk_to_link_key"):
        i = v["inputs_msb_first"]
        ltk = _h(i["LTK"])
        ilk = crypto.h7(_h("000000000000000000000000746d7031"), ltk) if i["CT2"] == "01" else crypto.h6(ltk, b"tmp1")
        assert crypto.h6(ilk, b"lebr") == _h(v["expected_msb_first"]["LinkKey"])


def _raises_value_error(fn, *args):
    try:
        fn(*args)
    except ValueError as e:
        return str(e)
    raise AssertionError("no ValueError")


def test_bad_input_names_the_argument():
    k = bytes(16)
    assert "key" in _raises_value_error(crypto.e, bytes(15), k)
    assert "block" in _raises_value_error(crypto.e, k, bytes(17))
    assert "key" in _raises_value_error(crypto.e, "0123456789abcdef", k)
    assert "irk" in _raises_value_error(crypto.ah, 12345, b"abc")
    assert "r3" in _raises_value_error(crypto.ah, k, b"ab")
    assert "z" in _raises_value_error(crypto.f4, bytes(32), bytes(32), k, 256)
    assert "iat" in _raises_value_error(crypto.c1, k, k, bytes(7), bytes(7), 2, 0, bytes(6), bytes(6))
    assert "io_cap" in _raises_value_error(crypto.f6, k, k, k, k, bytes(2), bytes(7), bytes(7))
    assert "a2" in _raises_value_error(crypto.f5, bytes(32), k, k, bytes(7), bytes(6))
    assert "msg" in _raises_value_error(crypto.aes_cmac, k, None)


def test_key_cache_is_bounded_and_correct():
    # More keys than the cache holds, then the first again: still right.
    first = os.urandom(16)
    want = crypto.aes_cmac(first, b"hello")
    for _ in range(20):
        crypto.aes_cmac(os.urandom(16), b"x")
    assert len(crypto._cache) <= 8
    assert crypto.aes_cmac(first, b"hello") == want


def _kernels():
    mods = [_pure]
    if _viper is not None and crypto.BACKEND == "viper":
        mods.append(_viper)
    return mods


def test_kernels_basic():
    a = bytes(range(0xF0, 0x100))
    b = bytes(range(16))
    for k in _kernels():
        out = bytearray(16)
        k.xor16(out, a, b)
        assert bytes(out) == bytes(x ^ y for x, y in zip(a, b))
        buf = bytearray(40)
        k.xor_at(buf, 17, a)
        assert bytes(buf[17:33]) == a and buf[16] == 0 and buf[33] == 0
        assert k.shl1(out, b"\x80" + bytes(14) + b"\x01") == 1
        assert bytes(out) == bytes(15) + b"\x02"
        assert k.shl1(out, b"\x7f" + b"\xff" * 15) == 0
        assert bytes(out) == b"\xff" * 15 + b"\xfe"
        assert k.ct_eq(a, a, 16) and not k.ct_eq(a, b, 16)
        assert k.ct_eq(a, bytes(a[:15]) + b"\x00", 15)


def test_kernels_differential_high_bits():
    # Viper ints are machine words: random inputs with high bits set show a
    # missing mask on the 64-bit host the same way it would on ESP32.
    ks = _kernels()
    for _ in range(200):
        a = bytes(x | 0x80 for x in os.urandom(16))
        b = os.urandom(16)
        d0 = os.urandom(20)
        outs = []
        for k in ks:
            o1 = bytearray(16)
            k.xor16(o1, a, b)
            o2 = bytearray(16)
            c = k.shl1(o2, a)
            d = bytearray(d0)
            k.xor_at(d, 3, a)
            pads = []
            for n in (0, 1, 15, 16, 17, 31, 32, 53, 64, 65, 80):
                buf = bytearray(d0 * 5)
                blocks = k.cmac_pad(buf, n, a, b, d0[:16])
                pads.append((blocks, bytes(buf)))
            outs.append((bytes(o1), bytes(o2), c, bytes(d), k.ct_eq(a, b, 16), pads))
        assert outs[0][0] == bytes(x ^ y for x, y in zip(a, b))
        assert all(o == outs[0] for o in outs)
