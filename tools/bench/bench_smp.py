"""make bench: a complete simulated pairing, our SMP engine with itself vs Bumble with itself.

    .venv/bin/python tools/bench/bench_smp.py [--json] [-n N]

Each figure is the median wall time of N complete pairings (Pairing Request to both sides done,
key distribution included, fresh P-256 keys each time on both stacks), in milliseconds.
Ours: two SmpEngine objects joined by a direct loop. Bumble: two bumble.smp.Manager on the
controller-less harness of host_tests/smp/bumble_peer.py (asyncio, as Bumble requires).
ratio = ours / Bumble (below 1 means ours is faster). With --json the last line is one JSON object.
"""

import asyncio
import gc
import json
import os
import statistics
import sys
import time
from collections import deque

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [ROOT, os.path.join(ROOT, "host_tests", "smp")]

import tools.blesim  # noqa: E402,F401  (puts lib/ and the stand-ins on sys.path)
from tools.smp import (  # noqa: E402
    NumericComparison,
    Paired,
    PasskeyRequest,
    Send,
    SmpConfig,
    SmpEngine,
    StartEncryption,
)

A = (1, bytes.fromhex("C01122334455"))
B = (1, bytes.fromhex("D066778899AA"))
PASSKEY = 314159
SCENARIOS = {
    # name: (sc, central io, peripheral io, mitm)
    "lesc_just_works": (True, 3, 3, False),
    "lesc_passkey": (True, 2, 0, True),
}


def ours_once(sc, io_c, io_p, mitm):
    c = SmpEngine("central", SmpConfig(io_cap=io_c, sc=sc, mitm=mitm), A, B)
    p = SmpEngine("peripheral", SmpConfig(io_cap=io_p, sc=sc, mitm=mitm, passkey=PASSKEY), B, A)
    q = deque((c, o) for o in c.pair(0))
    done = 0
    while q:
        src, o = q.popleft()
        t = type(o)
        if t is Send:
            dst = p if src is c else c
            q.extend((dst, x) for x in dst.receive(o.pdu, 0))
        elif t is StartEncryption:
            reply = p.ltk_request(o.ediv, o.rand, 0)[0]
            ok = reply.ltk == o.ltk
            q.extend((p, x) for x in p.encryption_changed(ok, o.key_size, 0))
            q.extend((c, x) for x in c.encryption_changed(ok, o.key_size, 0))
        elif t is PasskeyRequest:
            q.extend((src, x) for x in src.passkey(PASSKEY, 0))
        elif t is NumericComparison:
            q.extend((src, x) for x in src.confirm(True, 0))
        elif t is Paired:
            done += 1
    if done != 2:
        raise RuntimeError("our pairing did not complete")


def bumble_once(sc, io_c, io_p, mitm):
    from bumble_peer import Air, BumbleEnd

    c = BumbleEnd("BC", "central", io_cap=io_c, sc=sc, mitm=mitm, passkey=PASSKEY)
    p = BumbleEnd("BP", "peripheral", io_cap=io_p, sc=sc, mitm=mitm, passkey=PASSKEY)

    async def main():
        air = Air(c, p)
        air.log = lambda text: None  # no trace formatting in the timed path
        return await air.run(settle=0)

    asyncio.run(main())
    if c.paired is None or p.paired is None:
        raise RuntimeError("Bumble pairing did not complete")


def bumble_loop(sc, io_c, io_p, mitm, n):
    """n Bumble pairings inside one event loop (so loop start-up is not counted), each timed."""
    from bumble_peer import Air, BumbleEnd

    times = []

    async def main():
        for _ in range(n):
            c = BumbleEnd("BC", "central", io_cap=io_c, sc=sc, mitm=mitm, passkey=PASSKEY)
            p = BumbleEnd("BP", "peripheral", io_cap=io_p, sc=sc, mitm=mitm, passkey=PASSKEY)
            gc.collect()
            t0 = time.perf_counter()
            air = Air(c, p)
            air.log = lambda text: None
            await air.run(settle=0)
            times.append(time.perf_counter() - t0)
            if c.paired is None or p.paired is None:
                raise RuntimeError("Bumble pairing did not complete")

    asyncio.run(main())
    return times


def ours_loop(args, n):
    times = []
    for _ in range(n):
        gc.collect()
        t0 = time.perf_counter()
        ours_once(*args)
        times.append(time.perf_counter() - t0)
    return times


def main(argv):
    n = 30
    if "-n" in argv:
        n = int(argv[argv.index("-n") + 1])
    import logging

    logging.getLogger("bumble").setLevel(logging.CRITICAL)
    results = {}
    print("SMP pairing, complete, median of %d (ms); ratio = ours / Bumble" % n)
    for name, args in SCENARIOS.items():
        ours_loop(args, 3)  # warm-up (imports, caches)
        bumble_loop(*args, 3)
        ours = statistics.median(ours_loop(args, n)) * 1000
        theirs = statistics.median(bumble_loop(*args, n)) * 1000
        results[name] = {"ours_ms": round(ours, 3), "bumble_ms": round(theirs, 3), "ratio": round(ours / theirs, 3)}
        print("  %-16s ours %7.3f ms   bumble %7.3f ms   ratio %.2f (%s)" % (
            name, ours, theirs, ours / theirs, "ours faster" if ours < theirs else "BUMBLE FASTER"))
    if "--json" in argv:
        print(json.dumps({"smp_pairing": results, "n": n}))


if __name__ == "__main__":
    main(sys.argv[1:])
