"""blesmp: the Bluetooth LE Security Manager for MicroPython on ESP32."""

__version__ = "0.1.0"
