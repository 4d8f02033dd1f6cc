"""blesmp: the Bluetooth LE Security Manager for MicroPython on ESP32."""

__version__ = "0.1.0"


def _drop(name):
    # Code the package imports for a while (blesmp._setup, the store's cold modules for one call,
    # blesmp._link while links exist): give its RAM back on the board. CPython keeps it (there is
    # no heap to save there, and tests re-import cheaply), and so does a package that is frozen
    # into the firmware or on a ROMFS image: its bytecode runs in place from flash, dropping it
    # saves almost nothing and reloading it costs flash reads inside an IRQ. Not part of the API.
    import sys

    if sys.implementation.name == "micropython" and _in_ram():
        sys.modules.pop("blesmp." + name, None)
        globals().pop(name, None)


def _in_ram():
    # Loaded from a file system (.py or .mpy), the code is on the heap. Frozen modules name a
    # file that is not there; a ROMFS image is mounted at /rom.
    f = globals().get("__file__", "")
    if f.startswith("/rom"):
        return False
    try:
        import os

        os.stat(f)
        return True
    except OSError:
        return False
