"""The recorded trace of a simulated world: every API call, IRQ, PDU and link event.

One `Trace` per `World` (`world.trace`). Renderers (terminal sequence chart, SVG) read
`trace.records`, a list of `Record`s in the order they happened; nothing here draws.

Record format (stable; `Record.to_dict()` gives it as a JSON-able dict, `Trace.to_jsonl()` one
record per line, `Record.from_dict()` reads it back):

    seq     int, 0, 1, 2 ... in order of recording (several records can share one `t`)
    t       float, virtual time in seconds (World clock)
    kind    what happened (below)
    board   name of the board the record belongs to (str)
    peer    name of the other board for PDUs and link events, else None
    conn    the connection handle *on `board`* (int) or None
    name    short label: the API method, the IRQ name, the PDU opcode name, the link event
    args    dict of details (ints, str, bytes as lowercase hex strings, lists, None)
    text    one line for humans (what a chart prints on the arrow)

Kinds, with the swim-lane a renderer draws them in (app | api | host | smp/att | ll):

    "call"    app -> api   the application called a BLE method. name = method,
                           args = {"args": [...], "kwargs": {...}}
    "return"  api -> app   that call returned: args = {"result": ...} or {"error": "OSError",
                           "errno": 128}
    "irq"     api -> app   an IRQ was delivered to the handler. name = "_IRQ_...",
                           args = {"event": n, "data": [...], "result": ...} (result = the
                           handler's return value); `args["dropped"]` = True when no handler
                           was set (the event is lost, as on the board)
    "irq_error" app        the handler raised: args = {"error": "ValueError: ..."}; the handler
                           was removed. Recorded just before the "irq" record of that delivery,
                           which then has args["raised"] = True and result None
    "pdu"     board -> peer one PDU sent over the air on a connection. args = {"cid": 4|6,
                           "layer": "att"|"smp", "hex": "...", "dir": "tx"}; name = opcode
                           name ("PAIRING_REQUEST", "ATT_READ_REQ", ...). Recorded once, at
                           the sender, with `peer` set; delivery is implied unless a
                           "pdu_lost" record follows for it (args.ref = its seq).
    "link"    ll           a link-layer event on `board`: name in "adv_start", "adv_stop",
                           "scan_start", "scan_stop", "connect_start", "connect_cancel",
                           "connect" (args.role, peer_addr_type, peer_addr, interval; timeout on the central),
                           "connect_failed", "terminate" (the host asked, args.reason sent),
                           "disconnect" (args.reason HCI code as this side sees it),
                           "enc_start" (central asked to encrypt: args.ediv, rand, key_size, ltk
                           as a sniffer that knows the key would; capture.py), "ltk_request", "ltk_reply"
                           (args.found), "enc_change" (args.status, encrypted, key_size),
                           "out_of_range", "in_range", "power_off", "power_on", "reset"
    "host"    host         a NimBLE host decision not visible as an IRQ: "sync" (active(True):
                           args.irk_applied, resolving), "pairing_start" (args.role),
                           "security_request", "security_request_ignored", "repeat_pairing",
                           "encrypt_with_bond",
                           "display_passkey", "passkey_action_not_delivered" (central role),
                           "paired" (args: method, sc, authenticated, bonded, key_size),
                           "pairing_failed" (args.reason, cause, local), "smp_timeout",
                           "key_missing_repair", "store_overflow", "secret_size_mismatch",
                           "authorize_rejected", "hang", "fatal"
    "note"    any          free text (scripts and tests can add with `world.trace.note()`)

Byte values are recorded as hex strings (MSB-first for addresses as the IRQs show them;
PDUs in on-air order). Everything is plain data: a recorded trace can be saved with
`to_jsonl()` and rendered later or by another process.
"""

import json

__all__ = ["Record", "Trace"]

KINDS = ("call", "return", "irq", "irq_error", "pdu", "pdu_lost", "link", "host", "note")


def _plain(v):
    """Turns a value into JSON-able data (bytes -> hex, memoryview -> hex, tuples -> lists)."""
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex()
    if isinstance(v, memoryview):
        try:
            return bytes(v).hex()
        except ValueError:
            return "<released>"
    if isinstance(v, bool) or v is None or isinstance(v, (int, float, str)):
        return v
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return repr(v)


class Record:
    __slots__ = ("seq", "t", "kind", "board", "peer", "conn", "name", "args", "text")

    def __init__(self, seq, t, kind, board, name, peer=None, conn=None, args=None, text=""):
        self.seq = seq
        self.t = t
        self.kind = kind
        self.board = board
        self.peer = peer
        self.conn = conn
        self.name = name
        self.args = args if args is not None else {}
        self.text = text

    def to_dict(self):
        return {
            "seq": self.seq, "t": self.t, "kind": self.kind, "board": self.board, "peer": self.peer,
            "conn": self.conn, "name": self.name, "args": self.args, "text": self.text,
        }

    @classmethod
    def from_dict(cls, d):
        return cls(d["seq"], d["t"], d["kind"], d["board"], d["name"], d.get("peer"), d.get("conn"),
                   d.get("args") or {}, d.get("text", ""))

    def __repr__(self):
        who = self.board if self.peer is None else "%s->%s" % (self.board, self.peer)
        return "<%.6f %s %s %s %s>" % (self.t, self.kind, who, self.name, self.text)


class Trace:
    """Recorder. `enabled=False` keeps only a count (for long benchmark runs)."""

    def __init__(self, clock=None, enabled=True):
        self._clock = clock or (lambda: 0.0)
        self.enabled = enabled
        self.records = []
        self._seq = 0
        self._listeners = []

    def subscribe(self, fn):
        """fn(record) is called for every new record (live rendering, process mode)."""
        self._listeners.append(fn)

    def add(self, kind, board, name, peer=None, conn=None, args=None, text=""):
        seq = self._seq
        self._seq += 1
        if not self.enabled and not self._listeners:
            return None
        rec = Record(seq, self._clock(), kind, board, name, peer, conn, _plain(args or {}), text)
        if self.enabled:
            self.records.append(rec)
        for fn in self._listeners:
            fn(rec)
        return rec

    def note(self, board, text):
        return self.add("note", board, "note", text=text)

    # -- queries (handy in tests)
    def select(self, kind=None, board=None, name=None):
        out = []
        for r in self.records:
            if kind is not None and r.kind != kind:
                continue
            if board is not None and r.board != board:
                continue
            if name is not None and r.name != name:
                continue
            out.append(r)
        return out

    def to_jsonl(self):
        return "".join(json.dumps(r.to_dict()) + "\n" for r in self.records)

    @staticmethod
    def from_jsonl(text):
        t = Trace()
        for line in text.splitlines():
            if line.strip():
                t.records.append(Record.from_dict(json.loads(line)))
        t._seq = len(t.records)
        return t

    def clear(self):
        self.records = []
