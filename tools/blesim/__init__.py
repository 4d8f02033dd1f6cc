"""blesim: simulated ESP32 boards running MicroPython's BLE firmware, on a PC."""
