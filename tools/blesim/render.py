"""Sequence charts of a blesim trace, in the style of the ESP-IDF SMP documentation figures.

Each board gets four columns (lifelines): its application (the script), the API (the
`bluetooth` module: calls and IRQs), the host (NimBLE: SMP and ATT) and the link layer. With
two boards the second is mirrored, so the air sits in the middle:

    app | api | host | ll        ll | host | api | app
    ------------ board a ----    ---- board b ------------

Records (tools/blesim/trace.py) become rows: API calls are arrows app -> api (merged with
their return when nothing happened in between), IRQs arrows api -> app (with the handler's
return value), PDUs arrows host -> peer host (SMP in red, ATT in grey), link-layer and host
events notes on their lifeline. `text(trace)` gives terminal text, `svg(trace)` an SVG
document. `python -m tools.blesim.render trace.jsonl [--svg out.svg]` renders a saved trace.

Options common to both: `boards` (order and selection), `kinds` (record kinds to show),
`skip` (record names to leave out, e.g. advertising noise), `att=False` (hide ATT PDUs),
`phases=False` (no separators for the pairing phases: 1 feature exchange, 2 LE Secure
Connections or legacy, 3 key distribution, and encryption with a stored LTK).
"""

import sys

__all__ = ["text", "svg", "layout", "Row"]

COLS = ("app", "api", "host", "ll")
# The default leaves out what repeats every advertising interval.
DEFAULT_SKIP = ("adv_report",)


class Row:
    """One row of the chart: an arrow (src != dst) or a note (src == dst), columns as ints."""

    __slots__ = ("t", "src", "dst", "label", "style")

    def __init__(self, t, src, dst, label, style):
        self.t = t
        self.src = src
        self.dst = dst
        self.label = label
        self.style = style

    def __repr__(self):
        return "<Row %.3f %d->%d %s %s>" % (self.t, self.src, self.dst, self.style, self.label)


def _short(v, n=14):
    if isinstance(v, str):
        if v.startswith(("<function", "<bound method")):
            return "handler"
        if v.startswith("UUID("):
            return v
        if len(v) > n and all(c in "0123456789abcdef" for c in v):
            return v[: n - 2] + ".."
        return repr(v) if not v.isdigit() else v
    if isinstance(v, list):
        return "(" + ",".join(_short(x, n) for x in v) + ")"
    if isinstance(v, dict):
        return "{" + ",".join("%s=%s" % (k, _short(x, n)) for k, x in v.items()) + "}"
    return repr(v)


def _clip(s, n):
    return s if len(s) <= n else s[: n - 2] + ".."


def _call_label(rec):
    a = rec.args or {}
    parts = [_short(x) for x in a.get("args", [])]
    parts += ["%s=%s" % (k, _short(x)) for k, x in (a.get("kwargs") or {}).items()]
    return "%s(%s)" % (rec.name, ",".join(parts))


def _ret_label(rec):
    a = rec.args or {}
    if "error" in a:
        e = a.get("errno")
        return "!%s%s" % (a["error"], "" if e is None else " %s" % e)
    r = a.get("result")
    return None if r is None else _short(r)


def _irq_label(rec):
    a = rec.args or {}
    data = a.get("data", [])
    s = rec.name + " " + ",".join(_short(x, 10) for x in data) if data else rec.name
    if a.get("dropped"):
        s += " (no handler)"
    elif a.get("result") is not None:
        s += " -> " + _short(a["result"], 10)
    return s


_REASONS = {1: "Passkey Entry Failed", 2: "OOB Not Available", 3: "Authentication Requirements",
            4: "Confirm Value Failed", 5: "Pairing Not Supported", 6: "Encryption Key Size",
            7: "Command Not Supported", 8: "Unspecified Reason", 9: "Repeated Attempts",
            10: "Invalid Parameters", 11: "DHKey Check Failed", 12: "Numeric Comparison Failed",
            13: "BR/EDR Pairing In Progress", 14: "Cross-transport Key Derivation Not Allowed",
            15: "Key Rejected"}
_IO = ("DisplayOnly", "DisplayYesNo", "KeyboardOnly", "NoInputNoOutput", "KeyboardDisplay")


def _auth(b):
    flags = [n for bit, n in ((1, "bond"), (4, "MITM"), (8, "SC"), (16, "keypress")) if b & bit]
    return "+".join(flags) or "none"


def _pdu_label(rec):
    """An SMP PDU's name with what decides the pairing: the reason of a Pairing Failed, the IO
    capability, AuthReq and key size of the feature exchange."""
    name = rec.name
    h = (rec.args or {}).get("hex")
    if (rec.args or {}).get("layer", "smp") != "smp" or not isinstance(h, str):
        return name
    try:
        b = bytes.fromhex(h)
    except ValueError:
        return name
    if name == "PAIRING_FAILED" and len(b) >= 2:
        return "%s 0x%02x %s" % (name, b[1], _REASONS.get(b[1], "(reserved)"))
    if name in ("PAIRING_REQUEST", "PAIRING_RESPONSE") and len(b) >= 5:
        io = _IO[b[1]] if b[1] < len(_IO) else "io 0x%02x" % b[1]
        return "%s %s, %s, key %d" % (name, io, _auth(b[3]), b[4])
    if name == "SECURITY_REQUEST" and len(b) >= 2:
        return "%s %s" % (name, _auth(b[1]))
    return name


def _order(trace, boards):
    if boards:
        return list(boards)
    seen = []
    for r in trace.records:
        for b in (r.board, r.peer):
            if b is not None and b not in seen:
                seen.append(b)
    return seen


_KEYS = ("ENCRYPTION_INFORMATION", "CENTRAL_IDENTIFICATION", "IDENTITY_INFORMATION", "IDENTITY_ADDRESS_INFORMATION",
         "SIGNING_INFORMATION")


class _Phases:
    """The pairing phases of Core Vol 3 Part H (as the ESP-IDF figures label them), per link."""

    def __init__(self):
        self.state = {}  # frozenset(boards) -> phase reached in the current pairing

    def see(self, r):
        k = frozenset((r.board, r.peer))
        st = self.state.get(k, 0)
        if r.kind == "pdu" and (r.args or {}).get("layer", "smp") == "smp":
            n = r.name
            if n == "SECURITY_REQUEST":
                return None
            if n == "PAIRING_REQUEST":
                self.state[k] = 1
                return "Phase 1: Pairing Feature Exchange"
            if n == "PAIRING_PUBLIC_KEY" and st < 2:
                self.state[k] = 2
                return "Phase 2: LE Secure Connections (public keys, authentication, DHKey check)"
            if n == "PAIRING_CONFIRM" and st < 2:
                self.state[k] = 2
                return "Phase 2: Legacy pairing (confirm/random, STK)"
            if n in _KEYS and st < 3:
                self.state[k] = 3
                return "Phase 3: Transport Specific Key Distribution"
            if n == "PAIRING_FAILED":
                self.state[k] = 0
        elif r.kind == "link" and r.name == "enc_start":
            if st == 0:
                return "Encryption with the stored LTK (no pairing)"
            if st == 2:
                return "Encryption with the key from phase 2"
        elif r.kind == "link" and r.name == "disconnect":
            for key in list(self.state):
                if r.board in key:
                    self.state[key] = 0
        return None


def layout(trace, boards=None, kinds=None, skip=DEFAULT_SKIP, att=True, phases=True):
    """(column titles, rows) for a trace. Column index = 4 * board index + lane, lanes
    mirrored for odd boards (so two boards face each other across the air). With `phases`,
    rows of style "phase" (src = dst = -1) mark where each pairing phase begins."""
    order = _order(trace, boards)
    col = {}
    titles = []
    for i, b in enumerate(order):
        lanes = COLS if i % 2 == 0 else tuple(reversed(COLS))
        for lane in lanes:
            col[(b, lane)] = len(titles)
            titles.append((b, lane))
    rows = []
    recs = [r for r in trace.records if r.board in order and (kinds is None or r.kind in kinds)
            and r.name not in (skip or ())]
    ph = _Phases() if phases else None
    i = 0
    while i < len(recs):
        r = recs[i]
        k = r.kind
        if ph is not None and (k == "pdu" and r.peer in order or k == "link"):
            label = ph.see(r)
            if label:
                rows.append(Row(r.t, -1, -1, label, "phase"))
        if k == "call":
            label = _call_label(r)
            nxt = recs[i + 1] if i + 1 < len(recs) else None
            if nxt is not None and nxt.kind == "return" and nxt.board == r.board and nxt.name == r.name:
                ret = _ret_label(nxt)
                if ret is not None:
                    label += " -> " + ret
                i += 1
            rows.append(Row(r.t, col[(r.board, "app")], col[(r.board, "api")], label, "call"))
        elif k == "return":
            ret = _ret_label(r)
            rows.append(Row(r.t, col[(r.board, "api")], col[(r.board, "app")],
                            "%s -> %s" % (r.name, ret if ret is not None else "None"), "call"))
        elif k == "irq":
            rows.append(Row(r.t, col[(r.board, "api")], col[(r.board, "app")], _irq_label(r), "irq"))
        elif k == "irq_error":
            err = (r.args or {}).get("error", "")
            rows.append(Row(r.t, col[(r.board, "app")], col[(r.board, "app")], "handler raised " + err +
                            "; handler removed", "error"))
        elif k == "pdu":
            layer = (r.args or {}).get("layer", "smp")
            if layer == "att" and not att:
                i += 1
                continue
            label = _pdu_label(r)
            if r.peer in order:
                rows.append(Row(r.t, col[(r.board, "host")], col[(r.peer, "host")], label, layer))
            else:
                rows.append(Row(r.t, col[(r.board, "host")], col[(r.board, "host")], "tx " + label, layer))
        elif k == "pdu_lost":
            rows.append(Row(r.t, col[(r.board, "ll")], col[(r.board, "ll")], "lost " + r.name, "error"))
        elif k == "link":
            txt = r.name
            a = r.args or {}
            for key in ("reason", "status", "mtu", "found"):
                if key in a:
                    txt += " %s=%s" % (key, a[key])
            rows.append(Row(r.t, col[(r.board, "ll")], col[(r.board, "ll")], txt, "link"))
        elif k == "host":
            txt = r.name
            if r.text:
                txt = r.text
            rows.append(Row(r.t, col[(r.board, "host")], col[(r.board, "host")], txt, "host"))
        else:  # note
            rows.append(Row(r.t, col[(r.board, "app")], col[(r.board, "app")], r.text or r.name, "note"))
        i += 1
    return titles, rows


# ---------------------------------------------------------------------------- terminal


def text(trace, width=None, **kw):
    """The chart as terminal text (one or two lines per row)."""
    titles, rows = layout(trace, **kw)
    if not titles:
        return "(empty trace)"
    ncol = len(titles)
    tw = 9  # "  12.345 "
    if width is None:
        width = max(100, min(200, 18 * ncol + tw))
    step = max(8, (width - tw - 2) // ncol)
    xs = [tw + step // 2 + i * step for i in range(ncol)]
    line_w = xs[-1] + step // 2 + 1
    out = []

    def blank():
        buf = [" "] * line_w
        for x in xs:
            buf[x] = "|"
        return buf

    # headers: board name centred over its four columns, then lane names
    head = [" "] * line_w
    lanes = [" "] * line_w
    for ci, (b, lane) in enumerate(titles):
        s = lane
        x0 = xs[ci] - len(s) // 2
        lanes[x0 : x0 + len(s)] = list(s)
        if ci % 4 == 0:
            mid = (xs[ci] + xs[min(ci + 3, ncol - 1)]) // 2
            name = "[ %s ]" % b
            x1 = max(0, mid - len(name) // 2)
            head[x1 : x1 + len(name)] = list(name)
    out.append("".join(head).rstrip())
    out.append("".join(lanes).rstrip())
    out.append("".join(blank()).rstrip())
    for r in rows:
        stamp = ("%8.3f " % r.t)[:tw]
        if r.style == "phase":
            label = " %s " % r.label
            n = max(0, line_w - tw - len(label))
            out.append(" " * tw + "=" * (n // 2) + label + "=" * (n - n // 2))
            continue
        if r.src == r.dst:
            buf = blank()
            x = xs[r.src] + 1
            label = _clip(" " + r.label, line_w - tw)
            if x + len(label) > line_w:
                x = max(tw, xs[r.src] - len(label))
            buf[x : x + len(label)] = list(label)
            buf[:tw] = list(stamp)
            out.append("".join(buf).rstrip())
            continue
        a, b = xs[r.src], xs[r.dst]
        lo, hi = min(a, b), max(a, b)
        buf = blank()
        for x in range(lo + 1, hi):
            buf[x] = "-"
        if b > a:
            buf[hi - 1] = ">"
        else:
            buf[lo + 1] = "<"
        label = " %s " % r.label
        inner = hi - lo - 4
        if len(label) <= inner:
            x0 = lo + 2 + (inner - len(label)) // 2
            buf[x0 : x0 + len(label)] = list(label)
            buf[:tw] = list(stamp)
            out.append("".join(buf).rstrip())
        else:
            lab = blank()
            lbl = _clip(r.label, line_w - tw)
            x0 = lo + 2 if lo + 2 + len(lbl) <= line_w else max(tw, line_w - len(lbl))
            lab[x0 : x0 + len(lbl)] = list(lbl)
            lab[:tw] = list(stamp)
            out.append("".join(lab).rstrip())
            out.append("".join(buf).rstrip())
    return "\n".join(out)


# ---------------------------------------------------------------------------- SVG

_STYLE = {
    "call": ("#222222", ""),
    "irq": ("#1f5fbf", ""),
    "smp": ("#c0392b", ""),
    "att": ("#7f8c8d", ""),
    "link": ("#1e8449", ""),
    "host": ("#b9770e", ""),
    "note": ("#555555", ""),
    "error": ("#c0392b", ""),
}


def _esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


# Text widths at font-size 11 (Helvetica/Arial average, a little generous): the canvas and the
# label positions are computed from them, so that no label runs past an edge.
_CHAR_W = 6.4
_TIME_W = 56  # the time column at the left


def _text_w(s):
    return int(len(s) * _CHAR_W) + 4


def _extent(r, xs, col_w):
    """(x0, x1) of a row's label (a note: its box) for lifeline positions xs."""
    if r.src == r.dst:
        x = xs[r.src]
        return x + 6, x + 6 + _note_w(r.label, col_w)
    xm = (xs[r.src] + xs[r.dst]) / 2.0
    w = _text_w(r.label)
    return xm - w / 2.0, xm + w / 2.0


def _note_w(label, col_w):
    return _text_w(label) + 10


def svg(trace, col_w=120, row_h=24, **kw):
    """The chart as an SVG document (str). The canvas grows to fit the longest labels."""
    titles, rows = layout(trace, **kw)
    top = 70
    ncol = max(1, len(titles))
    left = _TIME_W + 10
    xs = [left + col_w // 2 + i * col_w for i in range(ncol)]
    ext = [_extent(r, xs, col_w) for r in rows if r.style != "phase"]
    lo = min([x0 for x0, _ in ext] + [left])
    if lo < _TIME_W + 4:  # a label would reach into the time column: move the lanes right
        left += int(_TIME_W + 4 - lo) + 1
        xs = [left + col_w // 2 + i * col_w for i in range(ncol)]
        ext = [_extent(r, xs, col_w) for r in rows if r.style != "phase"]
    phase_w = max([_text_w(r.label) + 24 for r in rows if r.style == "phase"] + [0])
    width = int(max([x1 for _, x1 in ext] + [left + ncol * col_w, left + phase_w]) + 12)
    height = top + (len(rows) + 1) * row_h + 20
    o = []
    o.append('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
             'font-family="Helvetica, Arial, sans-serif" font-size="11">' % (width, height, width, height))
    o.append("<defs>")
    for name, (color, _) in _STYLE.items():
        o.append('<marker id="ah-%s" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
                 'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="%s"/></marker>' % (name, color))
    o.append("</defs>")
    o.append('<rect x="0" y="0" width="%d" height="%d" fill="white"/>' % (width, height))
    # board headers and lane boxes
    for ci, (b, lane) in enumerate(titles):
        if ci % 4 == 0:
            x0 = xs[ci] - col_w // 2 + 4
            x1 = xs[min(ci + 3, ncol - 1)] + col_w // 2 - 4
            o.append('<rect x="%d" y="8" width="%d" height="22" rx="4" fill="#eaf2fb" stroke="#1f5fbf"/>'
                     % (x0, x1 - x0))
            o.append('<text x="%d" y="23" text-anchor="middle" font-weight="bold">%s</text>'
                     % ((x0 + x1) // 2, _esc(b)))
        label = {"app": "Application", "api": "bluetooth API", "host": "Host (SMP/ATT)", "ll": "Link layer"}[lane]
        o.append('<rect x="%d" y="36" width="%d" height="22" rx="3" fill="#f4f4f4" stroke="#999"/>'
                 % (xs[ci] - col_w // 2 + 8, col_w - 16))
        o.append('<text x="%d" y="51" text-anchor="middle">%s</text>' % (xs[ci], label))
        o.append('<line x1="%d" y1="58" x2="%d" y2="%d" stroke="#bbb" stroke-dasharray="4,3"/>'
                 % (xs[ci], xs[ci], height - 10))
    if ncol >= 8:
        xm = (xs[3] + xs[4]) // 2
        o.append('<text x="%d" y="%d" text-anchor="middle" fill="#999" font-style="italic">air</text>' % (xm, top - 4))
    for i, r in enumerate(rows):
        y = top + (i + 1) * row_h
        color = _STYLE.get(r.style, _STYLE["note"])[0]
        if r.style == "phase":
            o.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#6c3483" stroke-dasharray="8,4"/>'
                     % (left, y + 2, width - 10, y + 2))
            pw = _text_w(r.label) + 24  # bold: a little wider
            o.append('<rect x="%d" y="%d" width="%d" height="16" fill="#f5eef8" stroke="#6c3483"/>'
                     % ((left + width) // 2 - pw // 2, y - 6, pw))
            o.append('<text x="%d" y="%d" text-anchor="middle" fill="#6c3483" font-weight="bold">%s</text>'
                     % ((left + width) // 2, y + 6, _esc(r.label)))
            continue
        o.append('<text x="6" y="%d" fill="#888">%.3f</text>' % (y + 4, r.t))
        if r.src == r.dst:
            x = xs[r.src]
            w = _note_w(r.label, col_w)
            x0 = x + 6
            o.append('<rect x="%d" y="%d" width="%d" height="%d" rx="3" fill="white" stroke="%s"/>'
                     % (x0, y - 9, w, row_h - 6, color))
            o.append('<text x="%d" y="%d" fill="%s">%s</text>' % (x0 + 6, y + 4, color, _esc(r.label)))
            continue
        x1, x2 = xs[r.src], xs[r.dst]
        dash = ' stroke-dasharray="5,3"' if r.style in ("irq",) else ""
        o.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="1.4" marker-end="url(#ah-%s)"%s/>'
                 % (x1, y + 6, x2, y + 6, color, r.style if r.style in _STYLE else "note", dash))
        xm = (x1 + x2) // 2
        # a white halo keeps the label readable where it crosses lifelines
        o.append('<text x="%d" y="%d" text-anchor="middle" fill="%s" stroke="white" stroke-width="3" '
                 'paint-order="stroke">%s</text>' % (xm, y + 1, color, _esc(r.label)))
    o.append("</svg>")
    return "\n".join(o) + "\n"


def main(argv=None):
    import argparse

    from .trace import Trace

    ap = argparse.ArgumentParser(prog="python -m tools.blesim.render")
    ap.add_argument("trace", help="a trace saved as JSON lines (Trace.to_jsonl)")
    ap.add_argument("--svg", help="also write the chart as SVG here")
    ap.add_argument("--width", type=int)
    ap.add_argument("--no-att", action="store_true", help="hide ATT PDUs")
    a = ap.parse_args(argv)
    with open(a.trace) as f:
        t = Trace.from_jsonl(f.read())
    print(text(t, width=a.width, att=not a.no_att))
    if a.svg:
        with open(a.svg, "w") as f:
            f.write(svg(t, att=not a.no_att))
    return 0


if __name__ == "__main__":
    sys.exit(main())
