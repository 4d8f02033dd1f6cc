// blesmp: the port glue between MicroPython's unix NimBLE binding and esp-nimble.
// esp-nimble's own porting/nimble/src/nimble_port.c is FreeRTOS/ESP-IDF only; this does what
// the binding needs of it on the unix port, where NimBLE events run in MicroPython's scheduler
// and HCI is H4 over MicroPython's UART HAL (the host side of nimble/transport/uart_ll).
#include <string.h>
#include "py/mphal.h"
#include "py/runtime.h"

#if MICROPY_PY_BLUETOOTH && MICROPY_BLUETOOTH_NIMBLE

#include "nimble/nimble_npl.h"
#include "nimble/nimble_port.h"
#include "nimble/transport.h"
#include "nimble/transport_impl.h"
#include "os/os_mempool.h"
#include "esp_nimble_mem.h"
#include "transport/uart/ble_hci_uart.h"

void os_msys_init(void);
void os_mempool_module_init(void);
void ble_transport_ll_init(void);

static struct ble_npl_eventq blesmp_dflt_eventq;

void *blesmp_nimble_calloc(size_t n, size_t size) {
    void *p = nimble_malloc(n * size);
    if (p != NULL) {
        memset(p, 0, n * size);
    }
    return p;
}

// esp-nimble's init sequence (esp_nimble_init) without the controller and the FreeRTOS task.
esp_err_t nimble_port_init(void) {
    if (ble_buf_alloc() != ESP_OK) {
        return -1;
    }
    ble_transport_init();
    ble_npl_eventq_init(&blesmp_dflt_eventq);
    // ble_hs.c only enqueues HCI events to a queue whose eventq is set.
    blesmp_dflt_eventq.eventq = &blesmp_dflt_eventq;
    os_mempool_module_init();
    os_msys_init();
    ble_transport_hs_init();
    return ESP_OK;
}

struct ble_npl_eventq *nimble_port_get_dflt_eventq(void) {
    return &blesmp_dflt_eventq;
}

// The binding starts the UART before nimble_port_init, as with mynewt's transport.
int ble_hci_uart_init(void) {
    ble_transport_ll_init();
    return 0;
}

void hal_uart_deinit_cbs(void) {
}

#endif
