# Constants of the Security Manager: the firmware's IRQ numbers and flags,
# IO capabilities, passkey actions, security levels, failure reasons and the
# ESP-IDF-style event codes that SecurityManager reports.
#
# The public names have no underscore so that applications can import them;
# const() still folds them inside this module. Values are those of
# MicroPython's extmod/modbluetooth.h and of the Bluetooth Core spec.
from micropython import const

# -- IRQ event codes (bluetooth.BLE.irq) ------------------------------------
IRQ_CENTRAL_CONNECT = const(1)
IRQ_CENTRAL_DISCONNECT = const(2)
IRQ_GATTS_WRITE = const(3)
IRQ_GATTS_READ_REQUEST = const(4)
IRQ_PERIPHERAL_CONNECT = const(7)
IRQ_PERIPHERAL_DISCONNECT = const(8)
IRQ_ENCRYPTION_UPDATE = const(28)
IRQ_GET_SECRET = const(29)
IRQ_SET_SECRET = const(30)
IRQ_PASSKEY_ACTION = const(31)

# -- IO capabilities (ble.config(io=...), ESP-IDF ESP_IO_CAP_*) ---------------
IO_DISPLAY_ONLY = const(0)  # ESP_IO_CAP_OUT
IO_DISPLAY_YESNO = const(1)  # ESP_IO_CAP_IO
IO_KEYBOARD_ONLY = const(2)  # ESP_IO_CAP_IN
IO_NO_INPUT_OUTPUT = const(3)  # ESP_IO_CAP_NONE
IO_KEYBOARD_DISPLAY = const(4)  # ESP_IO_CAP_KBDISP

# -- passkey actions (_IRQ_PASSKEY_ACTION, gap_passkey) ------------------------
PASSKEY_ACTION_NONE = const(0)
PASSKEY_ACTION_INPUT = const(2)
PASSKEY_ACTION_DISPLAY = const(3)
PASSKEY_ACTION_NUMERIC_COMPARISON = const(4)

# -- association models for SecurityManager(methods=...) (a set, or these bits OR-ed) --
METHOD_JUST_WORKS = const(1)
METHOD_PASSKEY = const(2)  # Passkey Entry, either side displaying
METHOD_NUMERIC_COMPARISON = const(4)  # LE Secure Connections only

# -- security levels (Zephyr BT_SECURITY_L1..L4; ESP-IDF esp_ble_sec_act_t) -----
LEVEL_NONE = const(1)  # no encryption
LEVEL_ENCRYPT = const(2)  # encrypted, not authenticated (Just Works): ESP_BLE_SEC_ENCRYPT(_NO_MITM)
LEVEL_MITM = const(3)  # encrypted and authenticated: ESP_BLE_SEC_ENCRYPT_MITM
LEVEL_SC = const(4)  # authenticated LE Secure Connections with a 16-byte key

# esp_ble_set_encryption() actions, accepted by SecurityManager.set_encryption()
SEC_ENCRYPT = const(1)
SEC_ENCRYPT_NO_MITM = const(2)
SEC_ENCRYPT_MITM = const(3)

# -- roles -------------------------------------------------------------------
ROLE_CENTRAL = const(0)  # we are the central (gap_connect)
ROLE_PERIPHERAL = const(1)  # we are the peripheral (advertising)

# -- events (ESP-IDF ESP_GAP_BLE_*_EVT) -----------------------------------------
SEC_REQ_EVT = const(1)  # a peer starts pairing (or sends a Security Request): security_rsp()
PASSKEY_NOTIF_EVT = const(2)  # show this passkey; the peer types it
PASSKEY_REQ_EVT = const(3)  # type the passkey the peer shows: passkey_reply()
NC_REQ_EVT = const(4)  # does the peer show this number? confirm_reply()
AUTH_CMPL_EVT = const(5)  # a pairing or re-encryption finished (AuthResult)
BOND_ADDED_EVT = const(6)  # a bond was stored
BOND_REMOVED_EVT = const(7)  # a bond was removed (remove_bond_device, clear, eviction)
PROMPT_CANCEL_EVT = const(8)  # an open prompt is void (answered elsewhere, timed out, link lost)


# -- failure reasons -------------------------------------------------------------
# 0x01..0x0E are the SMP Pairing Failed reasons (Core Vol 3 Part H 3.5.5); the
# stock firmware never reports them, so they appear only when the manager itself
# caused the failure with a known code. 0x20.. are what the manager infers.
OK = const(0)
PASSKEY_ENTRY_FAILED = const(0x01)
AUTH_REQUIREMENTS = const(0x03)
CONFIRM_VALUE_FAILED = const(0x04)
PAIRING_NOT_SUPPORTED = const(0x05)
ENCRYPTION_KEY_SIZE = const(0x06)
UNSPECIFIED = const(0x08)
REPEATED_ATTEMPTS = const(0x09)
NUMERIC_COMPARISON_FAILED = const(0x0C)

REJECTED = const(0x20)  # refused here: by the application, the agent or the policy
PROMPT_TIMEOUT = const(0x21)  # nobody answered the prompt in time
LINK_LOST = const(0x22)  # the link went down during the procedure
SMP_TIMEOUT = const(0x23)  # no SMP progress for 30 s
KEY_TOO_SHORT = const(0x24)  # encryption key shorter than min_key_size
LEGACY_UNDER_SC_ONLY = const(0x25)  # legacy pairing while sc_only is set
WEAKER_THAN_BOND = const(0x26)  # the new pairing is weaker than the bond it would replace
PEER_FAILED = const(0x27)  # failed on the peer's side (it sent Pairing Failed or gave up)
AUTH_FAILED = const(0x28)  # passkey / comparison did not match, or the peer cancelled its prompt
LEVEL_TOO_LOW = const(0x29)  # encrypted, but below the level the application requires
CENTRAL_NO_PROMPTS = const(0x2A)  # stock firmware gives a central no passkey/NC prompts
NOT_IN_WINDOW = const(0x2B)  # a new bond outside the pairing window
NOT_ALLOWED = const(0x2C)  # peer not on the allow-list
KEY_MISSING = const(0x2D)  # the peer asked to encrypt with a bond we do not have
BUSY = const(0x2E)  # another procedure is running on this link
STORE_FULL = const(0x30)  # the bond store refused the keys (full, when_full="refuse")
METHOD_NOT_ALLOWED = const(0x31)  # the pairing used an association model not in methods=


def reason_name(reason):
    """The name of a failure reason (an int from AuthResult.reason)."""
    from .text import reason_name  # the name tables are cold: loaded only when text is needed

    return reason_name(reason)


def event_name(event):
    """The ESP-IDF-style name of an event code."""
    from .text import event_name

    return event_name(event)


# -- GATT (ATT error codes returned from _IRQ_GATTS_READ_REQUEST) ------------------
ATT_OK = const(0)
ATT_READ_NOT_PERMITTED = const(0x02)
ATT_INSUFFICIENT_AUTHENTICATION = const(0x05)
ATT_INSUFFICIENT_AUTHORIZATION = const(0x08)
ATT_INSUFFICIENT_KEY_SIZE = const(0x0C)
ATT_INSUFFICIENT_ENCRYPTION = const(0x0F)

# -- secret store types (_IRQ_GET_SECRET / _IRQ_SET_SECRET) -------------------------
SEC_TYPE_OUR = const(1)
SEC_TYPE_PEER = const(2)
SEC_TYPE_OUR_IRK = const(10)

SMP_TIMEOUT_MS = const(30000)
CONN_HANDLE_NONE = const(65535)
