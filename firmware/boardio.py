# Board I/O for the blesmp apps: board.json (written by `make deploy` from
# boards/<board>/board.json), the user LED and the BOOT button.
#
#   cfg = boardio.load()            # {} when there is no board.json (console only)
#   led = boardio.Led(cfg.get("led"))      # None-safe: no LED -> every call is a no-op
#   btn = boardio.Button(cfg.get("button"))
#   led.show_passkey(123456)        # blinks 1, 2, 3, 4, 5, 6 (0 = ten blinks); call led.step() often
#   if btn.clicked(): ...           # one True per press (debounced), from the main loop
#
# Nothing here blocks: the app's main loop calls step()/clicked() every few ms.
import json
import time

try:
    import machine
except ImportError:  # pragma: no cover (every board and the simulator have it)
    machine = None  # type: ignore[assignment]

IO_CAPS = {"display_only": 0, "display_yesno": 1, "keyboard_only": 2, "no_input_output": 3, "keyboard_display": 4}

_ON_MS = 250
_OFF_MS = 250
_DIGIT_GAP_MS = 1000
_REPEAT_GAP_MS = 2500


def load(path="board.json"):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def io_capability(cfg, default=3):
    return IO_CAPS.get(cfg.get("io_capability"), default)


def passkey_pattern(passkey):
    """[(on, ms), ...] that shows a 6-digit passkey as blinks: digit d = d blinks, 0 = 10."""
    out = []
    digits = "%06d" % passkey
    for i, ch in enumerate(digits):
        n = int(ch) or 10
        for _ in range(n):
            out.append((1, _ON_MS))
            out.append((0, _OFF_MS))
        out[-1] = (0, _DIGIT_GAP_MS if i < 5 else _REPEAT_GAP_MS)
    return out


class Led:
    def __init__(self, cfg=None):
        self.cfg = cfg or {}
        self._pin = None
        self._np = None
        self._pattern = None
        self._i = 0
        self._until = 0
        self.color = (0, 0, 32)
        if not cfg or machine is None:
            return
        try:
            if cfg.get("kind") == "neopixel":
                import neopixel

                self._np = neopixel.NeoPixel(machine.Pin(cfg["pin"], machine.Pin.OUT), 1)
            else:
                self._pin = machine.Pin(cfg["pin"], machine.Pin.OUT)
        except Exception as e:  # noqa: BLE001 (no LED is not a reason to stop the app)
            print("led: unavailable (%r)" % (e,))
            self._pin = self._np = None
        self.set(0)

    @property
    def present(self):
        return self._pin is not None or self._np is not None

    def set(self, on, color=None):
        if self._pin is not None:
            self._pin.value(1 if bool(on) == bool(self.cfg.get("active", 1)) else 0)
        elif self._np is not None:
            self._np[0] = (color or self.color) if on else (0, 0, 0)
            self._np.write()

    def show_passkey(self, passkey):
        self._pattern = passkey_pattern(passkey)
        self._i = 0
        self._until = time.ticks_ms()
        self.color = (0, 0, 32)

    def solid(self, on, color=None):
        self._pattern = None
        if color is not None:
            self.color = color
        self.set(on)

    def step(self):
        p = self._pattern
        if p is None or time.ticks_diff(time.ticks_ms(), self._until) < 0:
            return
        on, ms = p[self._i]
        self.set(on)
        self._until = time.ticks_add(time.ticks_ms(), ms)
        self._i = (self._i + 1) % len(p)


class Button:
    def __init__(self, cfg=None, debounce_ms=50):
        self.cfg = cfg or {}
        self._pin = None
        self._was = False
        self._since = 0
        self.debounce_ms = debounce_ms
        if not cfg or machine is None:
            return
        try:
            pull = machine.Pin.PULL_UP if cfg.get("pull", "up") == "up" else machine.Pin.PULL_DOWN
            self._pin = machine.Pin(cfg["pin"], machine.Pin.IN, pull)
        except Exception as e:  # noqa: BLE001
            print("button: unavailable (%r)" % (e,))
            self._pin = None

    @property
    def present(self):
        return self._pin is not None

    def pressed(self):
        return self._pin is not None and self._pin.value() == self.cfg.get("active", 0)

    def clicked(self):
        """True once per press (on release of a press held >= debounce_ms)."""
        now = time.ticks_ms()
        down = self.pressed()
        if down and not self._was:
            self._since = now
        fired = self._was and not down and time.ticks_diff(now, self._since) >= self.debounce_ms
        self._was = down
        return fired
