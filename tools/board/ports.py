"""Checks the serial port a tool was given before mpremote opens it: for a port that does not
exist mpremote only says "failed to access ... (it may be in use by another program)", which
sends the user looking for another program instead of for the cable."""

import glob
import os

PATTERNS = ("/dev/ttyUSB*", "/dev/ttyACM*", "/dev/cu.usbserial*", "/dev/cu.usbmodem*", "/dev/cu.SLAB*")


def candidates():
    """Serial ports that look like a USB board here."""
    return sorted(p for pat in PATTERNS for p in glob.glob(pat))


def problem(port, make_target):
    """None if `port` may be used, else a message saying what to do. Only device paths are
    checked: mpremote's shortcuts (u0, a0, auto) and URLs (rfc2217://) are its business."""
    if not port:
        return "no port given: make %s PORT=/dev/ttyUSB0%s" % (make_target, _seen())
    if port.startswith("/dev/") and not os.path.exists(port):
        return "no such port: %s (is the board plugged in, and is this its name?)%s" % (port, _seen())
    return None


def _seen():
    found = candidates()
    if found:
        return "; serial ports here: " + ", ".join(found)
    return "; no USB serial port found here (`mpremote devs` lists what mpremote sees)"
