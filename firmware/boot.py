# blesmp boot: nothing to set up before main.py. The SecurityManager installs the BLE
# IRQ handler itself before BLE is activated (so NimBLE's start-up reads of the bond
# store reach it: the cause of "bonds break after reboot", reference §4.4).
# Keep boot.py short: it also runs on every soft reset (mpremote), where main.py does not.
