"""How a simulated board's code stops: the exceptions that unwind it, and whether an IRQ handler
is running. A leaf module: the world (world.py) and the firmware model (firmware/ble.py) both
use these, and neither imports the other for them."""


class BoardReset(BaseException):
    """Raised by machine.reset() to unwind the script that called it."""


class BoardDown(BaseException):
    """Unwinds the simulated firmware when its board stops mid-event (power cut, crash,
    machine.reset() in a handler); World.step() swallows it."""


irq_depth = [0]  # > 0 while an IRQ handler runs (set by the firmware model; sleeps inside take no time)
