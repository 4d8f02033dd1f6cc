import bluetooth

ble = bluetooth.BLE()
ble.active(True)
print(bytes(ble.config("mac")[1]).hex())
