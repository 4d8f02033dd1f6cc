"""MicroPython's `json` semantics on a CPython board process (run.py).

MicroPython's `json.dump`/`json.dumps` write a `bytes` object as a JSON string of its raw
bytes (`mp_str_print_json` in py/objstr.c serves str and bytes alike); CPython's raise
TypeError. Board code relies on it: aioble's `security._save_secrets` dumps the
`binascii.b2a_base64` values (bytes) of the bond store. `install()` makes this process's
`json.dump`/`json.dumps` accept bytes the same way; everything else is CPython's.
"""

import json

__all__ = ["install"]


def _bytes_as_str(o):
    if isinstance(o, bytes):  # not bytearray: MicroPython prints that as bytearray(b'...')
        return o.decode("utf-8", "surrogateescape")
    raise TypeError("Object of type %s is not JSON serializable" % type(o).__name__)


def install():
    if getattr(json.dumps, "_blesim", False):
        return
    dumps, dump = json.dumps, json.dump

    def mp_dumps(obj, *args, **kwargs):
        kwargs.setdefault("default", _bytes_as_str)
        return dumps(obj, *args, **kwargs)

    def mp_dump(obj, fp, *args, **kwargs):
        kwargs.setdefault("default", _bytes_as_str)
        return dump(obj, fp, *args, **kwargs)

    mp_dumps._blesim = True
    json.dumps, json.dump = mp_dumps, mp_dump
