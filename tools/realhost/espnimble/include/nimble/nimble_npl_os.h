// blesmp: the NimBLE porting-layer types for esp-nimble on MicroPython's unix port.
// MicroPython's extmod/nimble/nimble/nimble_npl_os.h gives the same types for mynewt-nimble;
// esp-nimble's ble_hs.c drops every HCI event unless the event queue has a non-NULL
// `eventq` (a FreeRTOS queue handle on ESP-IDF), so the queue type here carries one.
// Same include guard as MicroPython's header, so whichever comes first is the only one used.
#ifndef MICROPY_INCLUDED_STM32_NIMBLE_NIMBLE_NIMBLE_NPL_OS_H
#define MICROPY_INCLUDED_STM32_NIMBLE_NIMBLE_NIMBLE_NPL_OS_H

#include <stdbool.h>
#include <stdint.h>
#include <limits.h>

#if __WORDSIZE == 64
#define BLE_NPL_OS_ALIGNMENT 8
#else
#define BLE_NPL_OS_ALIGNMENT 4
#endif
#define BLE_NPL_TIME_FOREVER (0xffffffff)

#define OS_CFG_ALIGN_4 (4)
#define OS_CFG_ALIGN_8 (8)
#if (ULONG_MAX == 0xffffffffffffffff)
#define OS_CFG_ALIGNMENT (OS_CFG_ALIGN_8)
#else
#define OS_CFG_ALIGNMENT (OS_CFG_ALIGN_4)
#endif

typedef uint32_t ble_npl_time_t;
typedef int32_t ble_npl_stime_t;

struct ble_npl_event {
    ble_npl_event_fn *fn;
    void *arg;
    bool pending;
    struct ble_npl_event *prev;
    struct ble_npl_event *next;
};

struct ble_npl_eventq {
    struct ble_npl_event *head;
    struct ble_npl_eventq *nextq;
    void *eventq; // set by blesmp_port.c once the queue is initialised
};

struct ble_npl_callout {
    bool active;
    uint32_t ticks;
    struct ble_npl_eventq *evq;
    struct ble_npl_event ev;
    struct ble_npl_callout *nextc;
};

struct ble_npl_mutex {
    volatile uint8_t locked;
};

struct ble_npl_sem {
    volatile uint16_t count;
};

// esp-nimble tears parts of the host down; MicroPython's layer never does (blesmp_npl.c).
void ble_npl_callout_deinit(struct ble_npl_callout *c);
void ble_npl_event_deinit(struct ble_npl_event *ev);

// Provided by MicroPython's nimble_npl_os.c and its port.
void mp_bluetooth_nimble_os_eventq_run_all(void);
void mp_bluetooth_nimble_os_callout_process(void);
void mp_bluetooth_nimble_hci_uart_wfi(void);

#endif
