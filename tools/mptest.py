# A tiny test runner for the real MicroPython interpreter: imports each test
# file, calls its test_* functions, prints failures and "N passed, N failed".
#   micropython tools/mptest.py [--pure] host_tests/unit/test_x.py ...
# --pure hides the viper kernels so the fallback backend is what gets tested.
import sys


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
            try:
                getattr(mod, attr)()
                passed += 1
            except Exception as e:  # noqa: BLE001 (report every failure, keep going)
                failed += 1
                print("FAIL %s::%s" % (path, attr))
                sys.print_exception(e)
    from blesmp import crypto

    print("backend:", crypto.BACKEND)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


sys.exit(main(sys.argv[1:]))
