"""blesmp: the Bluetooth LE Security Manager for MicroPython on ESP32."""

__version__ = "0.1.0"

# Helpers the package's modules share. This module imports none of them (a leaf every module
# may import), so no import circle goes through it. Not part of the API.


def _drop(name):
    # Code the package imports for a while (blesmp.config, the store's cold modules for one call,
    # blesmp.link while links exist): give its RAM back on the board. CPython keeps it (there is
    # no heap to save there, and tests re-import cheaply). Frozen or ROMFS code is dropped too:
    # its bytecode stays in flash, but the module, its dict and function objects are RAM (8.5 KB
    # at rest for a ROMFS image, make bench), and re-importing it compiles nothing.
    import sys

    if sys.implementation.name == "micropython":
        sys.modules.pop("blesmp." + name, None)
        globals().pop(name, None)


def _log(msg, exc=None):
    # Everything goes through print(), the traceback too: one channel a test can capture.
    print("blesmp:", msg)
    if exc is not None:
        import sys

        pe = getattr(sys, "print_exception", None)
        if pe is not None:
            import io

            buf = io.StringIO()
            pe(exc, buf)
            print(buf.getvalue().rstrip("\n"))
        else:  # CPython (the simulator)
            print("  %s: %s" % (type(exc).__name__, exc))
