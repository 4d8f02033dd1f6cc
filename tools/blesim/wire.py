"""The wire protocol between board processes and the air broker (broker side codec).

Transport: TCP on 127.0.0.1, one JSON object per line (UTF-8, `\\n`-terminated), both ways.
The client side is `tools/blesim/mp/_blesim.py` (MicroPython and CPython).

Values: JSON scalars as themselves (None, bool, int, float, str), lists as lists, and
tagged objects for the rest:
    {"t": [...]}        tuple
    {"b": "hex"}        bytes / bytearray / memoryview passed as a value
    {"m": "hex"}        (IRQ data only) a read-only memoryview on the receiving side,
                        released (CPython) or wiped (MicroPython) when the handler returns
    {"u": "hex"}        bluetooth.UUID: its 2, 4 or 16 bytes (little-endian), rebuilt by UUID(bytes)
    {"k": [[k, v]...]}  dict
    {"o": "repr"}       anything else (opaque; truthy)

Client -> broker (every message carries "d": the number of IRQ handlers running in the
client when it was sent):
    {"op":"hello","board":name,"opts":{...},"interp":"cpython"|"micropython"}
    {"op":"call","m":method,"a":[args],"k":{kwargs}}      a BLE method of this board
    {"op":"ret","v":value}  |  {"op":"ret","x":"Exc: text"}  the handler's return / raise
    {"op":"wait","u":until_us|null,"i":0|1[,"x":1]}     sleep (i=0), idle (i=1: wake on IRQ),
                                                        x=1: also woken by the client itself
    {"op":"resume"}                                     ends an x=1 wait (stdin became readable)
    {"op":"hold"} -> {"op":"res"}   multitest.broadcast(): the other boards have a stdin line
                                    coming; one blocked in multitest.wait() holds the clock
    {"op":"consumed","n":k}         this board has read k such lines
    {"op":"bye","rc":n}
Control connections (launchers): {"op":"expect","board":name} / {"op":"unexpect",...}
    (the clock stays still while an announced board has not joined), {"op":"status"},
    {"op":"shutdown"} (stop once every board has left).

Broker -> client (every message carries "now": virtual time in microseconds):
    {"op":"welcome","board":name,"addr":"hex MSB-first","addr_type":0|1,"methods":[...]}
    {"op":"res","v":value}  |  {"op":"err","c":"OSError","a":[args]}   end of a "call"
    {"op":"irq","e":event,"a":[data items]}   the client runs its handler and answers "ret";
                                              meanwhile it may send nested "call"s (d+1)
    {"op":"wake"}                             end of a "wait"

Interleaving: after "call" the client reads until "res"/"err", running any "irq" that comes
first (gap_pair raises GET_SECRET before it returns). While the broker waits for a "ret", a
message with a lower "d" than the IRQ's depth was sent before the client saw the IRQ; the
broker keeps it and acts on it after the handler returned; a message with the same "d" comes
from inside the handler (nested call, done at once; a sleep inside a handler takes no time).
"""

import binascii

__all__ = ["enc", "dec", "Opaque"]


class Opaque:
    def __init__(self, r):
        self.r = r

    def __repr__(self):
        return self.r

    def __bool__(self):
        return True


def enc(v, views=False):
    """Encodes a value; `views=True` sends memoryviews as {"m": ...} (IRQ data)."""
    if v is None or isinstance(v, (bool, str, float)):
        return v
    if isinstance(v, int):
        return int(v)
    if type(v).__name__ == "UUID":  # before bytes: the model's UUID is a bytes subclass
        return {"u": binascii.hexlify(bytes(v)).decode()}
    if isinstance(v, tuple):
        return {"t": [enc(x, views) for x in v]}
    if isinstance(v, list):
        return [enc(x, views) for x in v]
    if isinstance(v, dict):
        return {"k": [[enc(k), enc(x, views)] for k, x in v.items()]}
    if isinstance(v, memoryview):
        try:
            data = bytes(v)
        except ValueError:  # released
            data = b""
        return {"m" if views else "b": binascii.hexlify(data).decode()}
    if isinstance(v, (bytes, bytearray)):
        return {"b": binascii.hexlify(bytes(v)).decode()}
    return {"o": repr(v)}


def dec(v, uuid=None):
    """Decodes a value; `uuid` is the class that rebuilds UUIDs."""
    if isinstance(v, list):
        return [dec(x, uuid) for x in v]
    if not isinstance(v, dict):
        return v
    if "b" in v:
        return binascii.unhexlify(v["b"])
    if "m" in v:
        return memoryview(binascii.unhexlify(v["m"]))
    if "t" in v:
        return tuple(dec(x, uuid) for x in v["t"])
    if "u" in v:
        b = binascii.unhexlify(v["u"])
        return uuid(b) if uuid is not None else b
    if "k" in v:
        return {dec(k, uuid): dec(x, uuid) for k, x in v["k"]}
    if "o" in v:
        return Opaque(v["o"])
    return v
