"""Test harness: two SMP engines (ours) joined by a traced in-memory link, a scripted user on each
side, a simulated link layer for encryption, and a virtual clock. Also used by tools/bench/bench_smp.py.

Every PDU passes through Link._deliver, which records a trace line (opcode name + hex) and can be
changed or dropped by a tap(src, pdu) -> pdu | None.
"""

import tracelog

from tools.smp import (
    DisplayPasskey,
    Failed,
    Keypress,
    LtkReply,
    NumericComparison,
    Paired,
    PairingRequestReceived,
    PasskeyRequest,
    SecurityRequestReceived,
    Send,
    SmpEngine,
    StartEncryption,
)

INIT_ADDR = (1, bytes.fromhex("C01122334455"))
RESP_ADDR = (1, bytes.fromhex("D066778899AA"))


class User:
    """A scripted user. passkey: the number this side shows when asked to choose one;
    typo: added to the number it types; accept_nc: answer to numeric comparison (None = compare
    with the other side's number)."""

    def __init__(self, passkey=123456, typo=0, accept_nc=None, refuse_passkey=False):
        self.passkey = passkey
        self.typo = typo
        self.accept_nc = accept_nc
        self.refuse_passkey = refuse_passkey
        self.displayed = None
        self.compared = None
        self.asked = []


class Side:
    def __init__(self, name, engine, user):
        self.name = name
        self.engine = engine
        self.user = user
        self.events = []
        self.pending = []  # user actions waiting: ("input",) / ("display",) / ("nc",)
        self.result = None
        self.failure = None

    @property
    def done(self):
        return self.result is not None or self.failure is not None


class Link:
    def __init__(self, central, peripheral, tap=None, now=0.0):
        self.c = central
        self.p = peripheral
        self.tap = tap
        self.now = now
        self.trace = []
        self.queue = []
        self.encryptions = []
        tracelog.register(self)

    def peer(self, side):
        return self.p if side is self.c else self.c

    def log(self, text):
        self.trace.append("%8.3f %s" % (self.now, text))

    def trace_text(self):
        return "\n".join(["PDU trace:"] + self.trace)

    # -------------------------------------------------------------- outputs

    def handle(self, side, outs):
        for o in outs:
            side.events.append(o)
            t = type(o)
            if t is Send:
                self.queue.append((side, o.pdu))
            elif t is StartEncryption:
                self.queue.append((side, o))
            elif t is DisplayPasskey:
                side.user.displayed = o.passkey
                self.log("%s displays %06d" % (side.name, o.passkey))
            elif t is PasskeyRequest:
                side.user.asked.append("display" if o.display else "input")
                side.pending.append("display" if o.display else "input")
            elif t is NumericComparison:
                side.user.compared = o.number
                self.log("%s compares %06d" % (side.name, o.number))
                side.pending.append("nc")
            elif t is Paired:
                side.result = o.result
                self.log("%s PAIRED %s sc=%s auth=%s ks=%d" % (
                    side.name, o.result.method, o.result.sc, o.result.authenticated, o.result.key_size))
            elif t is Failed:
                side.failure = o
                self.log("%s FAILED %r" % (side.name, o))
            elif t in (SecurityRequestReceived, PairingRequestReceived, Keypress, LtkReply):
                pass

    def _encrypt(self, central, se):
        p = self.p
        reply = p.engine.ltk_request(se.ediv, se.rand, self.now)
        self.handle(p, [o for o in reply if type(o) is not LtkReply])
        key = next((o.ltk for o in reply if type(o) is LtkReply), None)
        ok = key is not None and key == se.ltk
        self.encryptions.append((se.ltk, key, ok))
        self.log("link: LE_Enable_Encryption ediv=%d rand=%d key=%s; peripheral LTK reply=%s -> %s" % (
            se.ediv, se.rand, se.ltk.hex(), key.hex() if key else None, "encrypted" if ok else "FAILED"))
        self.handle(p, p.engine.encryption_changed(ok, se.key_size if ok else 0, self.now))
        self.handle(central, central.engine.encryption_changed(ok, se.key_size if ok else 0, self.now))

    def _deliver(self, src, item):
        dst = self.peer(src)
        if isinstance(item, StartEncryption):
            self._encrypt(src, item)
            return
        data = tracelog.tap(self, src, dst, item)
        if data is not None:
            self.handle(dst, dst.engine.receive(data, self.now))

    def _user_step(self):
        moved = False
        for side in (self.c, self.p):
            while side.pending:
                action = side.pending[0]
                other = self.peer(side)
                u = side.user
                if action == "display":
                    side.pending.pop(0)
                    moved = True
                    self.handle(side, side.engine.passkey(u.passkey, self.now))
                elif action == "input":
                    if u.refuse_passkey:
                        side.pending.pop(0)
                        moved = True
                        self.handle(side, side.engine.passkey(None, self.now))
                        continue
                    shown = other.user.displayed
                    if shown is None and "input" in other.user.asked and "display" not in other.user.asked:
                        shown = self.c.user.passkey  # both input: the users agree on one number
                    if shown is None:
                        break  # wait until the other side displays
                    side.pending.pop(0)
                    moved = True
                    self.handle(side, side.engine.passkey((shown + u.typo) % 1000000, self.now))
                elif action == "nc":
                    if u.accept_nc is None and other.user.compared is None:
                        break
                    side.pending.pop(0)
                    moved = True
                    accept = u.accept_nc if u.accept_nc is not None else (u.compared == other.user.compared)
                    self.handle(side, side.engine.confirm(accept, self.now))
                else:
                    side.pending.pop(0)
        return moved

    def run(self, limit=1000):
        """Pump PDUs and user actions until nothing moves."""
        steps = 0
        while steps < limit:
            steps += 1
            if self.queue:
                src, item = self.queue.pop(0)
                self._deliver(src, item)
                continue
            if not self._user_step() and not self.queue:
                break
        return self


def make_pair(cfg_c, cfg_p, id_c=None, id_p=None, user_c=None, user_p=None, tap=None, rng_c=None, rng_p=None,
              attempts_c=None, attempts_p=None, ecc_c=None, ecc_p=None):
    import os

    ec_ = SmpEngine("central", cfg_c, INIT_ADDR, RESP_ADDR, identity=id_c, rng=rng_c or os.urandom,
                    attempts=attempts_c, ecc_key=ecc_c)
    ep_ = SmpEngine("peripheral", cfg_p, RESP_ADDR, INIT_ADDR, identity=id_p, rng=rng_p or os.urandom,
                    attempts=attempts_p, ecc_key=ecc_p)
    return Link(Side("C", ec_, user_c or User()), Side("P", ep_, user_p or User()), tap=tap)


def pair_ours(cfg_c, cfg_p, **kw):
    link = make_pair(cfg_c, cfg_p, **kw)
    link.handle(link.c, link.c.engine.pair(link.now))
    return link.run()
