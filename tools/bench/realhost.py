# Bench part for `make bench`: Python time per pairing on the real NimBLE host (MicroPython's unix
# port with esp-nimble and with mynewt-nimble, tools/realhost). On an ESP32 blesmp's IRQ handler
# runs inside the NimBLE host task, so a slow handler stalls the stack: these are the sum and the
# largest of the handler's run times over one Just Works pairing (connection to disconnection)
# of a lock that already holds 8 or 32 bonds. A PC is far faster than an ESP32: read them as
# relative figures (8 vs 32 bonds, esp vs mynewt), not as board timings.
#   .venv/bin/python tools/bench/realhost.py [--json] [--runs N]
import ast
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tools.realhost import boards, build, difftrace  # noqa: E402

BENCH_BOARD = os.path.join(ROOT, "tools", "realhost", "scenarios", "benchboard.py")
LAYOUT = {"esp": "88", "mynewt": "80"}


def one(host, n):
    import shutil
    import tempfile

    from tools.realhost.runner import run_boards

    tmp = tempfile.mkdtemp(prefix="bench-realhost-")
    try:
        fs = {r: os.path.join(tmp, r) for r in difftrace.ADDR}
        for d in fs.values():
            os.makedirs(d)
        p = (BENCH_BOARD, {"name": "p", "addr": difftrace.ADDR["p"], "fs": fs["p"],
                           "path": [os.path.dirname(os.path.abspath(__file__))],  # fakebond.py
                           "args": [str(n), LAYOUT[host], difftrace.ADDR["p"], difftrace.ADDR["c"]]})
        c = (difftrace.BOARD, {"name": "c", "addr": difftrace.ADDR["c"], "fs": fs["c"],
                               "args": ["c", "just_works", "1", difftrace.ADDR["c"], difftrace.ADDR["p"]]})
        res = {r.name: r for r in run_boards([p, c], host=host, quiet=True, timeout=60)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for ln in res["p"].lines:
        if ln.startswith("BENCH "):
            return ast.literal_eval(ln[6:])
    raise RuntimeError("the %s board printed no figure: %s" % (host, " | ".join(res["p"].lines[-5:])))


def main(argv):
    runs = int(argv[argv.index("--runs") + 1]) if "--runs" in argv else 3
    figures = {}
    for host in build.HOSTS:
        try:
            boards.interpreter(host)
        except boards.Unavailable as e:
            print("realhost bench skipped: %s" % e)
            return 0
        for n in (8, 32):
            got = [one(host, n) for _ in range(runs)]
            got.sort(key=lambda f: f["sum_us"])
            med = got[len(got) // 2]  # the median run by total
            key = "realhost_%s_%d" % (host, n)
            figures[key + "_irq_sum_us"] = med["sum_us"]
            figures[key + "_irq_max_us"] = med["max_us"]
            figures[key + "_irqs"] = med["irqs"]
    print("Python time per Just Works pairing on the real host (blesmp's IRQ handler, median of %d):" % runs)
    print("  %-7s %5s %6s %12s %12s" % ("host", "bonds", "IRQs", "sum (us)", "max (us)"))
    for host in build.HOSTS:
        for n in (8, 32):
            key = "realhost_%s_%d" % (host, n)
            print("  %-7s %5d %6d %12d %12d" % (host, n, figures[key + "_irqs"], figures[key + "_irq_sum_us"],
                                               figures[key + "_irq_max_us"]))
    if "--json" in argv:
        print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
