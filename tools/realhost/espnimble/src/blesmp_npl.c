// blesmp: MicroPython's NimBLE porting layer (extmod/nimble/nimble/nimble_npl_os.c), built
// against esp-nimble. esp-nimble's nimble_npl.h declares ble_npl_callout_init returning int
// where MicroPython's file defines it void: the file is compiled here under another name for
// that one function, and the int-returning function wraps it. esp-nimble also calls a few
// deinit functions that MicroPython's layer (which never tears the host down) lacks.
#include "py/mphal.h"
#include "py/runtime.h"
#include "nimble/ble.h"
#include "nimble/nimble_npl.h"
#include "extmod/nimble/hal/hal_uart.h"
#include "extmod/modbluetooth.h"
#include "extmod/nimble/modbluetooth_nimble.h"

#if MICROPY_PY_BLUETOOTH && MICROPY_BLUETOOTH_NIMBLE

#define ble_npl_callout_init blesmp_mp_ble_npl_callout_init
#include "extmod/nimble/nimble/nimble_npl_os.c"
#undef ble_npl_callout_init

int ble_npl_callout_init(struct ble_npl_callout *c, struct ble_npl_eventq *evq,
    ble_npl_event_fn *ev_cb, void *ev_arg) {
    blesmp_mp_ble_npl_callout_init(c, evq, ev_cb, ev_arg);
    return 0;
}

void ble_npl_callout_deinit(struct ble_npl_callout *c) {
    ble_npl_callout_stop(c);
}

void ble_npl_event_deinit(struct ble_npl_event *ev) {
    (void)ev;
}

void ble_npl_eventq_deinit(struct ble_npl_eventq *evq) {
    (void)evq;
}

ble_npl_error_t ble_npl_mutex_deinit(struct ble_npl_mutex *mu) {
    (void)mu;
    return BLE_NPL_OK;
}

ble_npl_error_t ble_npl_sem_deinit(struct ble_npl_sem *sem) {
    (void)sem;
    return BLE_NPL_OK;
}

#endif
