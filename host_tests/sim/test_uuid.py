"""bluetooth.UUID as the firmware has it (extmod/modbluetooth.c bluetooth_uuid_make_new,
_print, _binary_op, _get_buffer): the model's class (CPython boards in one process) and the
board process's class (tools/blesim/mp/bluetooth.py, on CPython and on MicroPython) answer
the same table. upstream ble_irq_calls.py needs the buffer protocol (`bytes(uuid)`)."""

import json
import os
import subprocess
import sys

import pytest

from tools.blesim.firmware.uuid import UUID
from tools.blesim.run import MP_DIR, micropython_exe

# (constructor argument as source, repr or "!ExceptionName: message")
CASES = [
    ("0x2902", "UUID(0x2902)"),
    ("65535", "UUID(0xffff)"),
    ("65536", "!ValueError: invalid UUID"),  # ints are 16-bit only
    ("0x12345678", "!ValueError: invalid UUID"),
    ("-1", "UUID(0xffff)"),  # the low 16 bits of a negative int
    ("-(1 << 40)", "!OverflowError: overflow converting long int to machine word"),  # not a machine word
    ("b'\\x02\\x29'", "UUID(0x2902)"),  # 2, 4, 16 bytes: little-endian, as they are
    ("bytearray(b'\\x78\\x56\\x34\\x12')", "UUID(0x12345678)"),
    ("memoryview(bytes(range(16)))", "UUID('0f0e0d0c-0b0a-0908-0706-050403020100')"),
    ("'6E400001-B5A3-F393-E0A9-E50E24DCCA9E'", "UUID('6e400001-b5a3-f393-e0a9-e50e24dcca9e')"),
    ("'6e400001b5a3f393e0a9e50e24dcca9e'", "UUID('6e400001-b5a3-f393-e0a9-e50e24dcca9e')"),
    ("'6e40-0001b5a3f393e0a9e50e24dc-ca9e'", "UUID('6e400001-b5a3-f393-e0a9-e50e24dcca9e')"),
    ("'abcd'", "UUID(0x64636261)"),  # a 4-character str is 4 bytes of buffer
    ("'xyz'", "!ValueError: invalid char in UUID"),
    ("'6e400001-b5a3-f393-e0a9-e50e24dcca9e0'", "!ValueError: UUID too long"),
    ("'6e400001-b5a3-f393-e0a9-e50e24dcca'", "!ValueError: UUID too short"),
    ("3.5", "!TypeError: object with buffer protocol required"),
    ("None", "!TypeError: object with buffer protocol required"),
    ("True", "!TypeError: object with buffer protocol required"),
]

# behaviours checked as expressions over u = UUID(0x2902), v = UUID(0x2903), w = its 128-bit form
CHECKS = [
    ("bytes(u)", "b'\\x02)'"),
    ("bytes(w)[12:14]", "b'\\x02)'"),
    ("bytearray(b'x') + u", "bytearray(b'x\\x02)')"),
    ("u == UUID(b'\\x02\\x29')", "True"),
    ("u == b'\\x02\\x29'", "False"),  # only UUIDs compare equal to UUIDs
    ("u == w", "False"),  # sizes differ: not equal (bluetooth_uuid_binary_op)
    ("u != v", "True"),
    ("u < v", "True"),
    ("u < w", "True"),  # a different size compares by size
    ("{u: 1}[UUID(0x2902)]", "1"),
    ("u * 2", "!TypeError: unsupported types for __mul__: 'UUID', 'int'"),
    ("1 in u", "!TypeError: 'UUID' object isn't iterable"),
    ("u < b'\\x02\\x29'", "!TypeError: unsupported types for comparison: 'UUID', 'bytes'"),
    ("UUID(u) == u", "True"),  # a UUID has the buffer protocol: UUID(UUID) copies it
    ("str(w)", "\"UUID('00002902-0000-1000-8000-00805f9b34fb')\""),
]

_RUN = r'''
import sys
import json
import _blesim
_blesim.connect = lambda: {}
from bluetooth import UUID
out = []
with open(sys.argv[1]) as f:
    cases, checks = json.load(f)
for src in cases:
    try:
        out.append(repr(UUID(eval(src))))
    except Exception as e:
        out.append("!%s: %s" % (type(e).__name__, e))
u, v = UUID(0x2902), UUID(0x2903)
w = UUID("00002902-0000-1000-8000-00805f9b34fb")
for src in checks:
    try:
        out.append(repr(eval(src)))
    except Exception as e:
        out.append("!%s: %s" % (type(e).__name__, e))
print(json.dumps(out))
'''


def _expected():
    return [r for _, r in CASES] + [r for _, r in CHECKS]


def _here():
    out = []
    for src, _ in CASES:
        try:
            out.append(repr(UUID(eval(src))))
        except Exception as e:  # noqa: BLE001 (the table names the exception)
            out.append("!%s: %s" % (type(e).__name__, e))
    ns = {"UUID": UUID, "u": UUID(0x2902), "v": UUID(0x2903), "w": UUID("00002902-0000-1000-8000-00805f9b34fb")}
    for src, _ in CHECKS:
        try:
            out.append(repr(eval(src, ns)))
        except Exception as e:  # noqa: BLE001
            out.append("!%s: %s" % (type(e).__name__, e))
    return out


def _board_process(exe, env_key, tmp_path):
    script = tmp_path / "uuid_table.py"
    script.write_text(_RUN)
    table = tmp_path / "uuid_table.json"  # a file: this micropython dies on a command line word > 256 bytes
    table.write_text(json.dumps([[s for s, _ in CASES], [s for s, _ in CHECKS]]))
    env = dict(os.environ)
    env[env_key] = MP_DIR
    p = subprocess.run([exe, str(script), str(table)], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(p.stdout)


def test_model_uuid_is_the_firmwares():
    assert _here() == _expected()


def test_board_process_uuid_on_cpython_is_the_firmwares(tmp_path):
    assert _board_process(sys.executable, "PYTHONPATH", tmp_path) == _expected()


def test_board_process_uuid_on_micropython_is_the_firmwares(tmp_path):
    try:
        exe = micropython_exe()
    except RuntimeError:
        pytest.skip("no micropython interpreter")
    assert _board_process(exe, "MICROPYPATH", tmp_path) == _expected()


def test_uuid_has_no_len_and_no_items():
    u = UUID(0x2902)
    with pytest.raises(TypeError):
        len(u)
    with pytest.raises(TypeError):
        u[0]
    with pytest.raises(TypeError):
        list(u)
