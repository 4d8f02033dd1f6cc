# The handler returns a view of the IRQ's own data: the firmware gets the bytes (it reads the
# returned buffer before the views go stale), and garbage on the line does not kill the broker.
import bluetooth

ble = bluetooth.BLE()
ble.irq(lambda event, data: data[2][:4])
print(ble.secret())
