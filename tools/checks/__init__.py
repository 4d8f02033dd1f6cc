"""The gates of `make test`: the MicroPython unit runner, the type check, the mpy-cross compile."""
