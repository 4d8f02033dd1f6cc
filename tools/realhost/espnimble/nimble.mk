# blesmp: MicroPython's extmod/nimble/nimble.mk for esp-nimble (Espressif's NimBLE fork that
# ESP32 firmware is built with). tools/realhost/build.py puts this file in place of
# extmod/nimble/nimble.mk in a private copy of the MicroPython tree, esp-nimble at
# lib/esp-nimble and the glue (this folder) at lib/blesmp-espnimble. Same binding, same
# switches as MicroPython's unix build; the host sources, transport and config are ESP32's.

ifeq ($(MICROPY_BLUETOOTH_NIMBLE),1)

EXTMOD_DIR = extmod
NIMBLE_EXTMOD_DIR = $(EXTMOD_DIR)/nimble

SRC_EXTMOD_C += $(NIMBLE_EXTMOD_DIR)/modbluetooth_nimble.c

CFLAGS_EXTMOD += -DMICROPY_BLUETOOTH_NIMBLE=1
CFLAGS_EXTMOD += -DMICROPY_BLUETOOTH_NIMBLE_BINDINGS_ONLY=0
CFLAGS_EXTMOD += -DMICROPY_PY_BLUETOOTH_USE_SYNC_EVENTS=1
CFLAGS_EXTMOD += -DMICROPY_PY_BLUETOOTH_ENABLE_PAIRING_BONDING=1
# esp-nimble's nimble_port_init returns esp_err_t.
CFLAGS_EXTMOD += -DMICROPY_BLUETOOTH_NIMBLE_PORT_INIT_RETURNS_ERROR=1
# esp-nimble's ble_l2cap_coc_endpoint has sdus[] where the binding uses .sdu; ESP32 firmware
# has L2CAP channels off anyway.
CFLAGS_EXTMOD += -DMICROPY_PY_BLUETOOTH_ENABLE_L2CAP_CHANNELS=0

NIMBLE_LIB_DIR = lib/esp-nimble
NIMBLE_GLUE_DIR = lib/blesmp-espnimble

SRC_THIRDPARTY_C += $(addprefix $(NIMBLE_LIB_DIR)/, \
	$(addprefix ext/tinycrypt/src/, \
		aes_encrypt.c \
		cmac_mode.c \
		ecc.c \
		ecc_dh.c \
		utils.c \
		) \
	nimble/host/services/gap/src/ble_svc_gap.c \
	nimble/host/services/gatt/src/ble_svc_gatt.c \
	$(addprefix nimble/host/src/, \
		ble_att.c \
		ble_att_clt.c \
		ble_att_cmd.c \
		ble_att_svr.c \
		ble_eddystone.c \
		ble_gap.c \
		ble_gattc.c \
		ble_gatts.c \
		ble_hs_adv.c \
		ble_hs_atomic.c \
		ble_hs.c \
		ble_hs_cfg.c \
		ble_hs_conn.c \
		ble_hs_flow.c \
		ble_hs_hci.c \
		ble_hs_hci_cmd.c \
		ble_hs_hci_evt.c \
		ble_hs_hci_util.c \
		ble_hs_id.c \
		ble_hs_log.c \
		ble_hs_mbuf.c \
		ble_hs_misc.c \
		ble_hs_mqueue.c \
		ble_hs_pvcy.c \
		ble_hs_resolv.c \
		ble_hs_startup.c \
		ble_hs_stop.c \
		ble_ibeacon.c \
		ble_l2cap.c \
		ble_l2cap_coc.c \
		ble_l2cap_sig.c \
		ble_l2cap_sig_cmd.c \
		ble_sm_alg.c \
		ble_sm.c \
		ble_sm_cmd.c \
		ble_sm_lgcy.c \
		ble_sm_sc.c \
		ble_store.c \
		ble_store_util.c \
		ble_uuid.c \
		) \
	nimble/host/util/src/addr.c \
	nimble/transport/src/transport.c \
	nimble/transport/common/hci_h4/src/hci_h4.c \
	nimble/transport/uart_ll/src/hci_uart.c \
	$(addprefix porting/nimble/src/, \
		endian.c \
		mem.c \
		os_mbuf.c \
		os_mempool.c \
		os_msys_init.c \
		) \
	)

SRC_THIRDPARTY_C += $(addprefix $(NIMBLE_EXTMOD_DIR)/, \
	hal/hal_uart.c \
	)

SRC_THIRDPARTY_C += $(addprefix $(NIMBLE_GLUE_DIR)/src/, \
	blesmp_npl.c \
	blesmp_port.c \
	)

INC += -I$(TOP)/$(NIMBLE_GLUE_DIR)/include
INC += -I$(TOP)/$(NIMBLE_EXTMOD_DIR)
INC += -I$(TOP)/$(NIMBLE_LIB_DIR)
INC += -I$(TOP)/$(NIMBLE_LIB_DIR)/ext/tinycrypt/include
INC += -I$(TOP)/$(NIMBLE_LIB_DIR)/nimble/host/include
INC += -I$(TOP)/$(NIMBLE_LIB_DIR)/nimble/host/services/gap/include
INC += -I$(TOP)/$(NIMBLE_LIB_DIR)/nimble/host/services/gatt/include
INC += -I$(TOP)/$(NIMBLE_LIB_DIR)/nimble/host/store/config/include
INC += -I$(TOP)/$(NIMBLE_LIB_DIR)/nimble/host/util/include
INC += -I$(TOP)/$(NIMBLE_LIB_DIR)/nimble/include
INC += -I$(TOP)/$(NIMBLE_LIB_DIR)/nimble/transport/include
INC += -I$(TOP)/$(NIMBLE_LIB_DIR)/nimble/transport/common/hci_h4/include
INC += -I$(TOP)/$(NIMBLE_LIB_DIR)/porting/nimble/include

$(BUILD)/$(NIMBLE_LIB_DIR)/%.o: CFLAGS += -Wno-maybe-uninitialized -Wno-pointer-arith -Wno-unused-but-set-variable -Wno-format -Wno-sign-compare -Wno-old-style-declaration -Wno-unused-variable -Wno-unused-function -Wno-implicit-fallthrough -Wno-pointer-to-int-cast

endif
