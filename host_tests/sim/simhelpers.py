"""Shared helpers for the simulator scenario tests: an IRQ recorder with a dict secret store."""

_IRQ_CENTRAL_CONNECT = 1
_IRQ_CENTRAL_DISCONNECT = 2
_IRQ_GATTS_WRITE = 3
_IRQ_GATTS_READ_REQUEST = 4
_IRQ_SCAN_RESULT = 5
_IRQ_SCAN_DONE = 6
_IRQ_PERIPHERAL_CONNECT = 7
_IRQ_PERIPHERAL_DISCONNECT = 8
_IRQ_GATTC_SERVICE_RESULT = 9
_IRQ_GATTC_SERVICE_DONE = 10
_IRQ_GATTC_CHARACTERISTIC_RESULT = 11
_IRQ_GATTC_CHARACTERISTIC_DONE = 12
_IRQ_GATTC_READ_RESULT = 15
_IRQ_GATTC_READ_DONE = 16
_IRQ_GATTC_WRITE_DONE = 17
_IRQ_GATTC_NOTIFY = 18
_IRQ_MTU_EXCHANGED = 21
_IRQ_ENCRYPTION_UPDATE = 28
_IRQ_GET_SECRET = 29
_IRQ_SET_SECRET = 30
_IRQ_PASSKEY_ACTION = 31


def _plain(x):
    if isinstance(x, memoryview):
        return bytes(x)
    return x


class Store:
    """The secret store of MicroPython's bonding example, as a dict (survives a board reset
    because the test keeps it)."""

    def __init__(self):
        self.secrets = {}

    def get(self, sec_type, index, key):
        if key is None:
            i = 0
            for (t, _k), v in self.secrets.items():
                if t == sec_type:
                    if i == index:
                        return v
                    i += 1
            return None
        return self.secrets.get((sec_type, bytes(key)))

    def set(self, sec_type, key, value):
        key = (sec_type, bytes(key))
        if value is None:
            if key in self.secrets:
                del self.secrets[key]
                return True
            return False
        self.secrets[key] = bytes(value)
        return True


class Recorder:
    """An IRQ handler that records (event, data) with memoryviews copied, answers secrets
    from a Store, and optionally answers passkey actions."""

    def __init__(self, ble, store=None, passkey=None, read_rc=0):
        self.ble = ble
        self.store = store if store is not None else Store()
        self.events = []
        self.passkey = passkey  # callable(conn, action, number) -> value for gap_passkey, or None
        self.read_rc = read_rc
        self.raw = []

    def __call__(self, event, data):
        self.raw.append(data)
        self.events.append((event, tuple(_plain(x) for x in data)))
        if event == _IRQ_GET_SECRET:
            return self.store.get(*data)
        if event == _IRQ_SET_SECRET:
            return self.store.set(*data)
        if event == _IRQ_GATTS_READ_REQUEST:
            return self.read_rc
        if event == _IRQ_PASSKEY_ACTION and self.passkey is not None:
            conn, action, number = data
            v = self.passkey(conn, action, number)
            if v is not None:
                self.ble.gap_passkey(conn, action, v)
        return None

    def of(self, *events):
        return [(e, d) for e, d in self.events if e in events]

    def last(self, event):
        for e, d in reversed(self.events):
            if e == event:
                return d
        return None

    def clear(self):
        self.events = []


ADV = b"\x02\x01\x06\x05\x09test"


def scan_for(world, central, adv_data=ADV, timeout=2.0):
    """Scans until an advertiser with adv_data is heard; returns its (addr_type, addr)."""
    rc = central.ble._handler
    rc.clear()
    central.ble.gap_scan(int(timeout * 1000), 30000, 30000)
    assert world.run_until(lambda: any(e == _IRQ_SCAN_RESULT and d[4] == adv_data for e, d in rc.events), timeout)
    central.ble.gap_scan(None)
    for e, d in rc.events:
        if e == _IRQ_SCAN_RESULT and d[4] == adv_data:
            return d[0], d[1]
    raise AssertionError("not found")


def connect(world, periph, central, timeout=5.0, target=None):
    """periph advertises, central connects (to config('mac'), or to the address found by
    scanning when the peripheral uses an RPA); returns (periph_handle, central_handle)."""
    rp, rc = periph.ble._handler, central.ble._handler
    rp.events = [ev for ev in rp.events if ev[0] != _IRQ_CENTRAL_CONNECT]
    rc.events = [ev for ev in rc.events if ev[0] != _IRQ_PERIPHERAL_CONNECT]
    periph.ble.gap_advertise(100000, ADV)
    if target is None:
        try:
            target = periph.ble.config("mac")
        except OSError:
            target = scan_for(world, central)
    central.ble.gap_connect(*target)
    assert world.run_until(lambda: rp.last(_IRQ_CENTRAL_CONNECT) and rc.last(_IRQ_PERIPHERAL_CONNECT), timeout)
    return rp.last(_IRQ_CENTRAL_CONNECT)[0], rc.last(_IRQ_PERIPHERAL_CONNECT)[0]
