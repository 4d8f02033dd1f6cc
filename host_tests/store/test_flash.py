# The simulated flash filesystem: os-like behaviour, persistence across a reset,
# power cuts after the N-th mutating operation, torn writes, the LittleFS model.
import pytest

from tools.blesim.flash import Flash, PowerLoss


def test_os_like_calls():
    fs = Flash()
    with fs.open("a.bin", "wb") as f:
        assert f.write(b"hello") == 5
    assert fs.stat("a.bin")[6] == 5
    assert fs.stat("a.bin")[0] == 0x8000
    fs.mkdir("d")
    fs.rename("a.bin", "d/b.bin")
    assert fs.listdir() == ["d"]
    assert fs.listdir("/d") == ["b.bin"]
    with fs.open("d/b.bin", "rb") as f:
        assert f.read() == b"hello"
    with fs.open("d/b.bin", "a") as f:
        f.write("!")
    with fs.open("d/b.bin") as f:
        assert f.read() == "hello!"
    fs.remove("d/b.bin")
    with pytest.raises(OSError) as e:
        fs.stat("d/b.bin")
    assert e.value.args[0] == 2 and e.value.errno == 2
    with pytest.raises(OSError) as e:
        fs.open("nope", "rb")
    assert e.value.args[0] == 2
    with pytest.raises(OSError) as e:
        fs.mkdir("d")
    assert e.value.args[0] == 17


def test_contents_survive_reset_but_handles_do_not():
    fs = Flash()
    f = fs.open("x", "wb")
    f.write(b"abc")
    fs.reset()
    with pytest.raises(OSError):
        f.write(b"d")
    assert fs.read_bytes("x") == b"abc"  # direct model: the write landed


def test_cut_after_nth_operation_and_tear():
    fs = Flash()
    fs.cut_after(2, tear=True)  # op 1 = open, op 2 = write (torn)
    f = fs.open("x", "wb")
    with pytest.raises(PowerLoss):
        f.write(b"12345678")
    assert not fs.powered
    with pytest.raises(PowerLoss):
        fs.listdir()
    with pytest.raises(PowerLoss):
        f.close()
    fs.power_on()
    assert fs.read_bytes("x") == b"1234"
    assert not issubclass(PowerLoss, Exception)


def test_littlefs_model_commits_at_close():
    fs = Flash(model="littlefs")
    fs.write_bytes("x", b"old")
    fs.cut_after(2)
    f = fs.open("x", "wb")
    with pytest.raises(PowerLoss):
        f.write(b"new data")
    fs.reset()
    assert fs.read_bytes("x") == b"old"
    with fs.open("x", "wb") as f:
        f.write(b"new")
    assert fs.read_bytes("x") == b"new"


def test_counters():
    fs = Flash()
    m = fs.mark()
    with fs.open("t", "wb") as f:
        f.write(b"1")
        f.write(b"2")
    fs.rename("t", "u")
    d = fs.since(m)
    assert d["open"] == 1 and d["write"] == 2 and d["close"] == 1 and d["rename"] == 1
    assert d["ops"] == 5 and d["replaces"] == 1 and d["bytes_written"] == 2


def test_enospc():
    fs = Flash(capacity=10)
    with fs.open("a", "wb") as f:
        f.write(b"123456")
        with pytest.raises(OSError) as e:
            f.write(b"123456")
    assert e.value.args[0] == 28
