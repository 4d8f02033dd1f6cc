# blesmp lock: the firmware runs this at boot (make deploy copies it with lib/blesmp).
# Ctrl-C stops the app loop and leaves BLE running; at the REPL: status(), help_app().
from lockapp import *  # noqa: F403 (the REPL helpers: status, bonds, forget, yes, no, ...)

run()  # noqa: F405
