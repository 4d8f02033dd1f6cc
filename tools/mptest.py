# A tiny test runner for the real MicroPython interpreter: imports each test
# file, calls its test_* functions, prints failures and "N passed, N failed".
#   micropython tools/mptest.py [--pure] host_tests/unit/test_x.py ...
# --pure hides the viper kernels so the fallback backend is what gets tested.
# What a test prints (e.g. blesmp's log of a deliberately raising callback) is captured, as
# pytest does, and shown only if that test fails: a green run is quiet.
import builtins
import sys

_print = builtins.print


def _capture(lines):
    def cap(*args, sep=" ", end="\n", file=None):
        if file is not None and file is not sys.stdout:
            return _print(*args, sep=sep, end=end, file=file)
        lines.append(sep.join(str(a) for a in args) + end)

    return cap


def main(argv):
    files = [a for a in argv if not a.startswith("--")]
    if "--pure" in argv:
        sys.modules["blesmp._viper"] = None  # the import then fails like on a port without viper
    passed = failed = 0
    for path in files:
        folder, name = path.rsplit("/", 1)
        sys.path.insert(0, folder)
        mod = __import__(name[:-3])
        sys.path.pop(0)
        for attr in sorted(dir(mod)):
            if not attr.startswith("test_"):
                continue
            out = []
            builtins.print = _capture(out)
            try:
                getattr(mod, attr)()
                passed += 1
            except Exception as e:  # noqa: BLE001 (report every failure, keep going)
                builtins.print = _print
                failed += 1
                print("FAIL %s::%s" % (path, attr))
                if out:
                    print("---- captured output ----")
                    print("".join(out), end="")
                    print("-------------------------")
                sys.print_exception(e)
            finally:
                builtins.print = _print
    from blesmp import crypto

    print("mptest: %d passed, %d failed (%s kernels)" % (passed, failed, crypto.BACKEND))
    return 1 if failed or not passed else 0


sys.exit(main(sys.argv[1:]))
