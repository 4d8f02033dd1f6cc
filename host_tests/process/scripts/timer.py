# machine.Timer callbacks fire at their virtual times while the script sleeps or idles;
# esp32.NVS keeps committed values in the board's directory.
import time

import esp32
import machine

n = []
t = machine.Timer(0)
t.init(period=250, mode=machine.Timer.PERIODIC, callback=lambda tm: n.append(time.ticks_ms()))
time.sleep_ms(1000)
print("fired", n)
t.deinit()
t0 = time.ticks_ms()
one = []
machine.Timer(1).init(period=100, mode=machine.Timer.ONE_SHOT, callback=lambda tm: one.append(time.ticks_ms()))
while not one:
    machine.idle()
print("oneshot", [x - t0 for x in one], time.ticks_diff(time.ticks_ms(), t0))
nv = esp32.NVS("blesmp")
nv.set_i32("n", 7)
nv.commit()
try:
    esp32.NVS("blesmp").get_i32("missing")
    missing = False
except OSError as e:
    missing = e.args[0] == -4354
print("nvs", esp32.NVS("blesmp").get_i32("n"), missing)
