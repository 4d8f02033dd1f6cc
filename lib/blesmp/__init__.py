"""blesmp: the Bluetooth LE Security Manager for MicroPython on ESP32."""

__version__ = "0.1.0"


def _drop(name):
    # Code the package imports for a while (blesmp._setup, the store's cold modules for one call,
    # blesmp._link while links exist): give its RAM back on the board. CPython keeps it (there is
    # no heap to save there, and tests re-import cheaply). Not part of the API.
    import sys

    if sys.implementation.name == "micropython":
        sys.modules.pop("blesmp." + name, None)
        globals().pop(name, None)
