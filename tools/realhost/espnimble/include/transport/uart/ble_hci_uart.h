// blesmp: MicroPython's binding starts the HCI UART with ble_hci_uart_init() (the old
// mynewt transport); blesmp_port.c maps it onto esp-nimble's transport.
#ifndef BLESMP_ESPNIMBLE_BLE_HCI_UART_H
#define BLESMP_ESPNIMBLE_BLE_HCI_UART_H
int ble_hci_uart_init(void);
#endif
