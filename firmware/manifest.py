# ruff: noqa: F821  (include/package/module are defined by MicroPython's manifest tool)
# Freezes blesmp and the lock app into a MicroPython firmware image (bytecode in flash:
# faster import, less RAM than .mpy files on the filesystem).
#
#   make firmware BOARD=esp32 MPY_DIR=~/micropython
#
# runs, with ESP-IDF's environment loaded (. $IDF_PATH/export.sh):
#   make -C $MPY_DIR/ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=$PWD/firmware/manifest.py
# and the image is $MPY_DIR/ports/esp32/build-ESP32_GENERIC/firmware.bin (merged: flash it
# with `make flash FIRMWARE=...`). The board's own manifest keeps asyncio, aioble etc.
include("$(PORT_DIR)/boards/manifest.py")

# lib/blesmp -> import blesmp (paths are relative to this file)
package("blesmp", base_path="../lib")

# the apps; main.py/boot.py stay on the filesystem (the firmware runs main.py from there)
module("boardio.py")
module("lockapp.py")
module("centralapp.py")
