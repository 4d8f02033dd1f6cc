// blesmp: esp-nimble's H4 UART transport (nimble/transport/uart_ll) needs the parity and
// flow-control enums besides MicroPython's UART HAL, whose functions it calls.
#ifndef BLESMP_ESPNIMBLE_HAL_UART_H
#define BLESMP_ESPNIMBLE_HAL_UART_H

// MicroPython's header defines SYSINIT_PANIC_ASSERT_MSG as nothing; esp-nimble's sysinit.h
// defines it as an assert: keep esp-nimble's.
#ifdef SYSINIT_PANIC_ASSERT_MSG
#undef SYSINIT_PANIC_ASSERT_MSG
#include "extmod/nimble/hal/hal_uart.h"
#undef SYSINIT_PANIC_ASSERT_MSG
#define SYSINIT_PANIC_ASSERT_MSG(rc, msg) assert(rc)
#else
#include "extmod/nimble/hal/hal_uart.h"
#endif

#undef HAL_UART_PARITY_NONE
enum hal_uart_parity {
    HAL_UART_PARITY_NONE = 0,
    HAL_UART_PARITY_ODD = 1,
    HAL_UART_PARITY_EVEN = 2,
};
enum hal_uart_flow_ctl {
    HAL_UART_FLOW_CTL_NONE = 0,
    HAL_UART_FLOW_CTL_RTS_CTS = 1,
};

void hal_uart_deinit_cbs(void);

#endif
