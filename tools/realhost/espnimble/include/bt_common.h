// blesmp: ESP-IDF's Bluetooth common header; esp-nimble only needs its switches off
// (no HCI log) and ESP-IDF's BIT() macro.
#ifndef BLESMP_ESPNIMBLE_BT_COMMON_H
#define BLESMP_ESPNIMBLE_BT_COMMON_H
#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif
#define BT_HCI_LOG_INCLUDED FALSE
#ifndef BIT
#define BIT(n) (1UL << (n))
#endif
#endif
