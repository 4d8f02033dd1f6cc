// blesmp: the ESP-IDF error type esp-nimble's headers name.
#ifndef BLESMP_ESPNIMBLE_ESP_ERR_H
#define BLESMP_ESPNIMBLE_ESP_ERR_H
typedef int esp_err_t;
#define ESP_OK (0)
#define ESP_FAIL (-1)
#define ESP_ERR_NO_MEM (0x101)
#endif
