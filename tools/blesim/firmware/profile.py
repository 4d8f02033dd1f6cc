"""Firmware profiles: the version-dependent behaviour of MicroPython + NimBLE on a board.

`get_profile("esp32")` (the default) is the current ESP32 release: MicroPython >= v1.26 with
ESP-IDF 5.4/5.5 (esp-nimble 1.5/1.6 with the Aug 2024 ordering fix). Other profiles:

  "esp32-v1.25"   MicroPython v1.24/v1.25 (ESP-IDF 5.2.2): ENCRYPTION_UPDATE before the two
                  SET_SECRET calls. The struct layout of that build is unconfirmed (the
                  reference could not settle it); this profile keeps the 88-byte one.
  "esp32-v1.23"   MicroPython v1.23 (ESP-IDF 5.0.4): ENCRYPTION_UPDATE first, 80-byte layout.
  "phone"         NOT a MicroPython board: a phone-like peer whose user answers passkey and
                  numeric-comparison requests as central too (PASSKEY_ACTION in both roles),
                  io=4 KeyboardDisplay. For tests that need a capable central.
  "esp32-v1.22"   MicroPython before v1.23 (issues #12958, #19405): bonds go to ESP-IDF's RAM
                  store (Python sees only the IRK's GET/SET(10)), no keys are distributed,
                  bonds are gone after a reset.
  "nimble"        upstream apache NimBLE as on STM32/unix/rp2: 80-byte layout, ENC first,
                  authorization flags allowed, bonding off by default, MicroPython's internal
                  errno numbers (unix values).

Fields: layout ("88", "80i" = 80 bytes with bond_count, "80"), set_before_enc, authorize_rejects,
defaults (bond, mitm, le_secure, io), errno (NimBLE-name -> number), first_conn_handle,
preferred_mtu, gap_name, max_name_len, rpa_timeout, central_passkey, numcmp_reject_delay (after a local
"no" to a numeric comparison, esp-nimble reports the failed ENCRYPTION_UPDATE only at the SMP
timeout, 30 s, or when the link goes first; 0: at once; None: never, as MicroPython's mynewt-nimble
on the real host), repair_on_key_missing (esp-nimble's ble_sm_process_result: when
re-encryption with a stored LTK fails with HCI 0x06 "PIN or key missing", the central frees the
procedure without an ENC event and starts a fresh pairing; upstream NimBLE reports the failure),
ram_store (types 1/2 never reach Python), key_dist (sm_our/their_key_dist set at active()),
shutdown_irqs (ESP32's mp_bluetooth_nimble_port_shutdown stops NimBLE while the binding is still
ACTIVE: the disconnect IRQs of active(False) reach Python inside the call; the default port sets
STOPPING first and raises none), smp_ignores_strays (esp-nimble's ble_sm_process_result drops a
PDU the procedure does not expect (res->out_of_order), a Keypress Notification, a Pairing Response
sent to a peripheral, and uses the first bytes of an over-long PDU; MicroPython's mynewt-nimble has
no out_of_order: the engine's spec behaviour stays for that profile),
bond_count_lookup (ble_sm_chk_store_overflow at every pairing start: GET_SECRET(2, 0.., None) then
GET_SECRET(1, <7 zero bytes>); compiled in only with BLE_SM_BONDING=1: ESP-IDF's esp-nimble config
has it, MicroPython's unix syscfg.h sets BLE_SM_BONDING=0, so upstream NimBLE as MicroPython builds
it makes no such look-up: reference real-nimble.md, "What the real host showed"), max_key_size (the
Maximum Encryption Key Size the board offers: 16, but 7 for the "phone-k7" test peer), ltk_ediv_check
(esp-nimble's ble_sm_retrieve_ltk refuses a stored record whose EDIV/Rand differ from the LTK
request's; with mynewt-nimble the binding ignores them).
"""

__all__ = ["Profile", "PROFILES", "get_profile", "ESP32_ERRNO", "UNIX_ERRNO"]

ESP32_ERRNO = {
    "EPERM": 1, "ENOENT": 2, "EIO": 5, "EAGAIN": 11, "ENOMEM": 12, "EBUSY": 16, "ENODEV": 19, "EINVAL": 22,
    "EOPNOTSUPP": 95, "ETIMEDOUT": 116, "EALREADY": 120, "ENOTCONN": 128,
}
UNIX_ERRNO = dict(ESP32_ERRNO, ETIMEDOUT=110, EALREADY=114, ENOTCONN=107)


class Profile:
    def __init__(self, name, layout="88", set_before_enc=True, authorize_rejects=True, bond=1, mitm=0,
                 le_secure=1, io=3, errno=None, first_conn_handle=0, preferred_mtu=256, gap_name=b"MPY ESP32",
                 max_name_len=31, rpa_timeout=900.0, central_passkey=False, numcmp_reject_delay=30.0,
                 repair_on_key_missing=True, ram_store=False, key_dist=7, shutdown_irqs=True,
                 smp_ignores_strays=True, bond_count_lookup=True, max_key_size=16, ltk_ediv_check=True,
                 description=""):
        if layout not in ("88", "80", "80i"):
            raise ValueError("layout must be '88', '80' or '80i'")
        self.name = name
        self.layout = layout
        self.set_before_enc = set_before_enc
        self.authorize_rejects = authorize_rejects
        self.defaults = {"bond": bond, "mitm": mitm, "le_secure": le_secure, "io": io}
        self.errno = dict(errno or ESP32_ERRNO)
        self.first_conn_handle = first_conn_handle
        self.preferred_mtu = preferred_mtu
        self.gap_name = gap_name
        self.max_name_len = max_name_len
        self.rpa_timeout = rpa_timeout
        self.central_passkey = central_passkey
        self.numcmp_reject_delay = numcmp_reject_delay
        self.repair_on_key_missing = repair_on_key_missing
        self.ram_store = ram_store
        self.key_dist = key_dist
        self.shutdown_irqs = shutdown_irqs
        self.smp_ignores_strays = smp_ignores_strays
        self.bond_count_lookup = bond_count_lookup
        self.max_key_size = max_key_size
        self.ltk_ediv_check = ltk_ediv_check
        self.description = description

    @property
    def sec_size(self):
        return 88 if self.layout == "88" else 80

    def replace(self, **kw):
        d = dict(self.__dict__)
        defaults = d.pop("defaults")
        d.update(defaults)
        d.pop("errno")
        d["errno"] = self.errno
        d.update(kw)
        return Profile(**d)

    def __repr__(self):
        return "<Profile %s layout=%s set_before_enc=%s>" % (self.name, self.layout, self.set_before_enc)


PROFILES = {
    "esp32": Profile("esp32", description="MicroPython >= v1.26, ESP-IDF 5.4/5.5"),
    "esp32-v1.25": Profile("esp32-v1.25", set_before_enc=False, description="MicroPython v1.24/v1.25, ESP-IDF 5.2.2"),
    "esp32-v1.23": Profile("esp32-v1.23", layout="80", set_before_enc=False,
                           description="MicroPython v1.23, ESP-IDF 5.0.4"),
    "esp32-v1.22": Profile("esp32-v1.22", layout="80", set_before_enc=False, ram_store=True, key_dist=0,
                           description="MicroPython <= v1.22: ESP-IDF's RAM bond store, no key distribution"),
    "nimble": Profile("nimble", layout="80", set_before_enc=False, authorize_rejects=False, bond=0,
                      numcmp_reject_delay=None, repair_on_key_missing=False, shutdown_irqs=False,
                      smp_ignores_strays=False, bond_count_lookup=False, ltk_ediv_check=False,
                      errno=UNIX_ERRNO, gap_name=b"MPY NIMBLE", description="upstream NimBLE (STM32/unix)"),
    # Not an ESP32: a peer device like a phone app (nRF Connect), whose user can answer passkey
    # and numeric-comparison requests in the central role too. Same API, same store protocol.
    "phone": Profile("phone", central_passkey=True, io=4, gap_name=b"Phone",
                     description="a phone-like peer: passkey actions in both roles (not MicroPython)"),
    # ... one that offers at most a 7-byte key (Maximum Encryption Key Size 7): a weak peer
    "phone-k7": Profile("phone-k7", central_passkey=True, io=4, gap_name=b"Phone", max_key_size=7,
                        description="a phone-like peer offering a 7-byte key at most (not MicroPython)"),
}


def get_profile(p):
    if p is None:
        return PROFILES["esp32"]
    if isinstance(p, Profile):
        return p
    try:
        return PROFILES[p]
    except KeyError:
        raise ValueError("unknown profile %r (known: %s)" % (p, ", ".join(PROFILES))) from None
