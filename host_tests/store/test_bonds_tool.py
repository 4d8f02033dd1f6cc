"""tools/board/bonds.py: the table of a store file, removal (local and through mpremote, faked)."""

import io
import os

from blesmp import blob
from blesmp.store import BondStore, addr_key
from tools.board import bonds as T


def _sec(i, auth, sc, ks=16, irk=True):
    s = blob.Sec()
    s.addr_type = 1 if i % 2 else 0
    s.addr = bytes((0xC0, 0x11, 0x22, 0x33, 0x44, i))
    s.key_size = ks
    s.ltk = bytes(range(i, i + 16))
    s.irk = bytes(16) if irk else None
    s.authenticated = auth
    s.sc = sc
    return s


def _make(path, layout=blob.ESP88):
    st = BondStore(path, layout=layout)
    for i, (auth, sc, ks) in enumerate(((1, 1, 16), (1, 0, 16), (0, 1, 12)), start=1):
        s = _sec(i, auth, sc, ks, irk=i != 3)
        k = addr_key(s.addr_type, s.addr)
        st.set_secret(1, k, blob.encode(s, layout))
        st.set_secret(2, k, blob.encode(s, layout))
    st.pin(1, bytes((0xC0, 0x11, 0x22, 0x33, 0x44, 1)))
    st.set_secret(10, b"irk", bytes(16))
    return st


def test_table_of_a_local_file(tmp_path):
    p = str(tmp_path / "bonds.db")
    _make(p, blob.NIMBLE80)
    before = open(p, "rb").read()
    out = io.StringIO()
    assert T.main([p], out=out) == 0
    text = out.getvalue()
    lines = text.splitlines()
    assert lines[0].split() == ["address", "type", "keys", "level", "ks", "pin", "added", "last", "used"]
    row1 = lines[1].split()
    assert row1[:6] == ["C0:11:22:33:44:01", "random", "ltk,irk", "L4", "16", "yes"]
    assert lines[2].split()[:5] == ["C0:11:22:33:44:02", "public", "ltk,irk", "L3", "16"]
    assert lines[3].split()[:5] == ["C0:11:22:33:44:03", "random", "ltk", "L2", "12"]
    assert "3 bond(s); our IRK stored; format version 1; blob layout nimble80" in text
    assert open(p, "rb").read() == before  # listing never writes (nor converts the layout)
    assert bytes(range(1, 17)).hex() not in text  # no key material printed


def test_remove_local(tmp_path):
    p = str(tmp_path / "bonds.db")
    _make(p)
    out = io.StringIO()
    assert T.main([p, "--remove", "c0:11:22:33:44:02"], out=out) == 0
    st = BondStore(p, layout=blob.ESP88)
    assert [b.addr[5] for b in st.bonds()] == [1, 3] and st.find(1, bytes((0xC0, 0x11, 0x22, 0x33, 0x44, 1))).pinned
    assert T.main([p, "--remove", "c0:11:22:33:44:02"], out=io.StringIO()) == 1
    assert not os.path.exists(p + ".new")


def test_problems_are_reported(tmp_path):
    p = str(tmp_path / "bonds.db")
    _make(p)
    data = bytearray(open(p, "rb").read())
    data[data.find(addr_key(0, bytes((0xC0, 0x11, 0x22, 0x33, 0x44, 2)))) + 40] ^= 1
    open(p, "wb").write(bytes(data))
    out = io.StringIO()
    T.main([p], out=out)
    assert "2 bond(s)" in out.getvalue() and "problem: 1 corrupt record(s) found" in out.getvalue()


class FakeMpremote:
    """Stands in for `mpremote connect PORT cp/exec ...` over a dict of board files."""

    def __init__(self, files):
        self.files = files
        self.calls = []

    def __call__(self, cmd, capture_output=True, text=True):
        import subprocess

        args = cmd[cmd.index("connect") + 2:]
        self.calls.append(args)
        if args[0] == "cp":
            src, dst = args[1], args[2]
            if src.startswith(":"):
                with open(dst, "wb") as f:
                    f.write(self.files[src[1:]])
            else:
                with open(src, "rb") as f:
                    self.files[dst[1:]] = f.read()
        elif args[0] == "exec":
            files = self.files

            class Os:
                @staticmethod
                def rename(a, b):
                    files[b] = files.pop(a)

            exec(args[1].replace("import os\n", ""), {"os": Os})  # the board side of the script
        return subprocess.CompletedProcess(cmd, 0, "", "")


def test_fetch_and_remove_through_mpremote(tmp_path):
    p = str(tmp_path / "bonds.db")
    _make(p)
    board = {"bonds.db": open(p, "rb").read()}
    fake = FakeMpremote(board)
    out = io.StringIO()
    assert T.main(["--port", "u0", "--remove", "C0:11:22:33:44:03"], run=fake, out=out) == 0
    assert [c[0] for c in fake.calls] == ["cp", "cp", "exec"]
    assert fake.calls[1][2] == ":bonds.db.new"  # written aside, then renamed over the old file
    assert set(board) == {"bonds.db"}
    open(p, "wb").write(board["bonds.db"])
    assert [b.addr[5] for b in BondStore(p, layout=blob.ESP88).bonds()] == [1, 2]
    assert "reset the board" in out.getvalue()
