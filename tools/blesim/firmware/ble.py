"""`bluetooth.BLE` of one simulated ESP32: MicroPython's NimBLE binding plus the NimBLE host.

Public surface = MicroPython's BLE methods (active, config, irq, gap_*, gatts_*, gattc_*), each
taking and returning plain values, so a proxy can forward them over a socket unchanged. The
IRQ handler is called synchronously from the simulated stack (inside `World.run`) and its
return value is used. Everything below follows reference/micropython-ble-security.md.
"""

import struct
import sys
import traceback

from ..unwind import BoardDown
from ..unwind import irq_depth as _irq_depth
from . import gatt as G
from . import secstruct
from .irq import (
    IRQ_CENTRAL_CONNECT,
    IRQ_CENTRAL_DISCONNECT,
    IRQ_ENCRYPTION_UPDATE,
    IRQ_GATTC_INDICATE,
    IRQ_GATTC_NOTIFY,
    IRQ_GATTS_INDICATE_DONE,
    IRQ_GATTS_READ_REQUEST,
    IRQ_GET_SECRET,
    IRQ_NAMES,
    IRQ_PASSKEY_ACTION,
    IRQ_PERIPHERAL_CONNECT,
    IRQ_PERIPHERAL_DISCONNECT,
    IRQ_SCAN_DONE,
    IRQ_SCAN_RESULT,
    IRQ_SET_SECRET,
)
from .uuid import UUID

# IRQ numbers (extmod/modbluetooth.h)

PASSKEY_INPUT = 2
PASSKEY_DISPLAY = 3
PASSKEY_NUMCMP = 4

CONN_HANDLE_NONE = 65535
HCI_LOCAL_HOST_TERM = 0x16
ATT_CID = 4
SMP_CID = 6
BLE_HS_EDISABLED = 30
BLE_HS_EAPP = 9
BLE_HS_ENOTCONN = 7
GATT_STATUS_ATT_BASE = 0x100
TX_BUFFERS = 24  # ESP-IDF's default msys pool (CONFIG_BT_NIMBLE_MSYS_1_BLOCK_COUNT): outgoing PDUs in flight

# NimBLE's fixed default IRK (ble_hs_pvcy.c), used until load_irk applies one
DEFAULT_IRK = bytes([0xEF, 0x8D, 0xE2, 0x16, 0x4F, 0xEC, 0x43, 0x0D, 0xBF, 0x5B, 0xDD, 0x34, 0xC0, 0x53, 0x1E,
                     0xB8])[::-1]

_ZERO_KEY = bytes(7)


def _buf(v, what="buffer"):
    if isinstance(v, str):
        return v.encode()
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, UUID):
        return bytes(v)
    try:
        return bytes(memoryview(v))
    except TypeError:
        raise TypeError("object with buffer protocol required") from None


class _Conn:
    def __init__(self, link, handle, role, peer_addr, peer_id):
        self.link = link
        self.handle = handle
        self.role = role  # our role: "central" | "peripheral"
        self.peer_addr = peer_addr  # connection address of the peer (type, 6 bytes)
        self.peer_id = peer_id  # identity (resolved) address shown in IRQs and used as store key
        self.encrypted = 0
        self.authenticated = 0
        self.bonded = 0
        self.key_size = 0
        self.mtu = 23
        self.mtu_done = False
        self.smp = None
        self.smp_timer = None
        self.io_action = None  # the passkey action NimBLE waits for
        self.io_injected = False
        self.restore = None  # (authenticated, key_size) while re-encrypting with stored keys
        self.gattc = []  # queued client procedures; [0] is the one in flight
        self.server_pending = None
        self.cccd = {}
        self.indicating = None
        self.outq = []
        self.outq_busy = False
        self.numcmp_rejected = False
        self.late_enc = None  # esp-nimble's pending ENC event after a local numeric-comparison "no"
        self.request_rejected = False  # ble_sm_pair_req_rx refused a Pairing Request: no ENC event
        self.ltk_req = (0, 0)  # EDIV and Rand of the controller's last LTK request


class BLE:
    """The firmware model of one board (see module docstring). Create through `World.board()`."""

    def __init__(self, board):
        self._board = board
        self._world = board.world
        self._profile = board.profile
        self._trace = board.world.trace
        self._air = board.world.air
        self._dead = False
        self._handler = None
        self._active = False
        d = self._profile.defaults
        # ble_hs_cfg: survives active(False/True), reset by a reboot
        self._bond = d["bond"]
        self._mitm = d["mitm"]
        self._le_secure = d["le_secure"]
        self._io = d["io"]
        self._gap_name = self._profile.gap_name
        self._mtu = self._profile.preferred_mtu
        self._addr_mode = 0
        self._own_addr = None
        self._rpa_time = None
        self._irk = DEFAULT_IRK
        self._resolving = []  # [(irk, (type, addr))] peer IRKs known to the controller
        self._conns = {}
        self._updates = set()  # value handles whose gatts_write(send_update=True) the host task has not sent yet
        self._db = G.Database(lambda: self._gap_name)
        self._adv_data = b""
        self._resp_data = b""
        self._advertising = False
        self._scan_timer = None
        self._connecting = None
        self._ecc_key = None
        self._sched_pending = False
        self._char_disc = None
        self._hung = False
        self._stopping = False  # inside active(False) while ble_hs_stop ends the links (esp32)
        self._ram = {}  # ESP-IDF's RAM bond store (profile esp32-v1.22): lost with the RAM
        from tools.smp import RepeatedAttempts

        self._attempts = RepeatedAttempts(base=0.0, factor=1.0, maximum=0.0)  # NimBLE has none

    # ================================================================ infrastructure
    @property
    def board(self):
        return self._board

    def _err(self, name_or_num):
        if isinstance(name_or_num, int):
            return OSError(name_or_num, str(name_or_num))
        n = self._profile.errno[name_or_num]
        return OSError(n, name_or_num)

    def _now(self):
        return self._world.now

    def _api_call(self, name, args, kwargs, fn):
        if self._dead:
            raise OSError(19, "ENODEV")
        self._trace.add("call", self._board.name, name, args={"args": list(args), "kwargs": kwargs},
                        text="%s%r" % (name, tuple(args)))
        try:
            with self._board:
                res = fn(*args, **kwargs)
        except Exception as e:
            self._trace.add("return", self._board.name, name, args={"error": type(e).__name__,
                                                                     "errno": getattr(e, "errno", None),
                                                                     "message": str(e)},
                            text="%s: %s" % (type(e).__name__, e))
            raise
        self._trace.add("return", self._board.name, name, args={"result": res}, text=repr(res))
        return res

    def _irq(self, event, uints=(), addr=None, sints=(), uuid=None, bufs=(), conn=None):
        """Delivers one IRQ as the binding does; returns the handler's return value."""
        items = [int(u) for u in uints]
        views = []
        if addr is not None:
            mv = memoryview(bytes(addr))
            views.append(mv)
            items.append(mv)
        items.extend(int(s) for s in sints)
        if uuid is not None:
            items.append(uuid)
        for b in bufs:
            if b is None:
                items.append(None)
            else:
                mv = memoryview(bytes(b))
                views.append(mv)
                items.append(mv)
        data = tuple(items)
        name = IRQ_NAMES.get(event, str(event))
        plain = [bytes(x) if isinstance(x, memoryview) else (repr(x) if isinstance(x, UUID) else x) for x in data]
        h = self._handler
        if h is None:
            self._trace.add("irq", self._board.name, name, conn=conn,
                            args={"event": event, "data": plain, "dropped": True}, text="(no handler)")
            for v in views:
                v.release()
            return None
        result = None
        raised = False
        _irq_depth[0] += 1
        try:
            with self._board:
                result = h(event, data)
            if isinstance(result, memoryview):
                # the binding copies the returned buffer while the IRQ's own data is still valid
                result = bytes(result)
        except BoardDown:
            raise
        except Exception as e:  # the binding's protected call
            self._handler = None
            raised = True
            self._print_exception(e)
            self._trace.add("irq_error", self._board.name, name, conn=conn,
                            args={"error": "%s: %s" % (type(e).__name__, e)}, text="handler removed")
            result = None
        except BaseException as e:
            if _is_power_loss(e):
                self._power_cut()
            if type(e).__name__ == "BoardReset":
                raise BoardDown() from None
            raise
        finally:
            _irq_depth[0] -= 1
            for v in views:
                try:
                    v.release()
                except (BufferError, ValueError):
                    pass
        shown = result if isinstance(result, (int, type(None), bool)) else repr(result)
        if isinstance(result, (bytes, bytearray, memoryview)):
            shown = bytes(result)
        self._trace.add("irq", self._board.name, name, conn=conn,
                        args={"event": event, "data": plain, "result": shown, "raised": raised},
                        text="%s %r" % (name, tuple(plain)))
        self._schedule_run()
        return result

    def _print_exception(self, e):
        out = ["Unhandled exception in IRQ callback handler", "Traceback (most recent call last):"]
        tb = traceback.extract_tb(e.__traceback__)
        for fr in tb:
            if "/tools/blesim/" in fr.filename.replace("\\", "/"):
                continue
            out.append('  File "%s", line %d, in %s' % (fr.filename, fr.lineno, fr.name))
        msg = str(e)
        out.append("%s: %s" % (type(e).__name__, msg) if msg else type(e).__name__)
        sys.stdout.write("\n".join(out) + "\n")
        sys.stdout.flush()

    def _power_cut(self):
        b = self._board
        if b.powered:
            b.power_off()
        raise BoardDown()

    def _schedule_run(self):
        if not self._sched_pending:
            self._sched_pending = True
            self._world.schedule(0, self._run_scheduled)

    def _run_scheduled(self):
        self._sched_pending = False
        if self._dead:
            return
        try:
            import micropython
        except ImportError:  # pragma: no cover
            return
        run = getattr(micropython, "run_scheduled", None)
        if run is None:
            return
        try:
            run(self._board)
        except TypeError:
            run()

    def _shutdown(self):
        """The board lost power / reset: RAM state gone, no more events."""
        for c in self._conns.values():
            if c.smp_timer:
                c.smp_timer.cancel()
        if self._scan_timer:
            self._scan_timer.cancel()
        self._conns = {}
        self._dead = True
        self._active = False

    # ================================================================ addresses
    def _urandom(self, n):
        return self._board.urandom(n)

    def _id_addr(self):
        """Our identity address (type, addr)."""
        if self._addr_mode == 1 and self._own_addr is not None:
            return self._own_addr
        return (self._board.addr_type, self._board.public_addr)

    def _make_rpa(self):
        from blesmp import crypto

        prand = bytearray(self._urandom(3))
        prand[0] = (prand[0] & 0x3F) | 0x40
        return bytes(prand) + crypto.ah(self._irk, bytes(prand))

    def _current_addr(self):
        """The address we advertise/connect with, per addr_mode."""
        m = self._addr_mode
        if m == 0:
            return (self._board.addr_type, self._board.public_addr)
        if m == 1:
            return self._own_addr
        if m == 2:
            now = self._now()
            if self._own_addr is None or self._rpa_time is None or now - self._rpa_time >= self._profile.rpa_timeout:
                self._own_addr = (1, self._make_rpa())
                self._rpa_time = now
            return self._own_addr
        return self._own_addr  # NRPA

    def _resolve(self, addr):
        """(type, addr) on the air -> identity (type, addr) if an IRK in the resolving list
        resolves it, else the address itself."""
        t, a = addr
        if t == 1 and (a[0] & 0xC0) == 0x40:
            from blesmp import crypto

            for irk, ident in self._resolving:
                if crypto.ah(irk, a[:3]) == a[3:]:
                    return ident
        return addr

    def _add_resolving(self, irk, ident):
        self._resolving = [(k, i) for (k, i) in self._resolving if i != ident]
        self._resolving.append((bytes(irk), ident))

    # ================================================================ secret store bridge
    def _ram_get(self, sec_type, index, key):
        if key is None:
            vals = [v for (t, _k), v in self._ram.items() if t == sec_type]
            return vals[index] if index < len(vals) else None
        return self._ram.get((sec_type, bytes(key)))

    def _ram_set(self, sec_type, key, value):
        k = (sec_type, bytes(key))
        if value is None:
            return self._ram.pop(k, None) is not None
        self._ram[k] = bytes(value)
        return True

    def _get_secret(self, sec_type, index, key):
        if self._profile.ram_store and sec_type in (1, 2):
            return self._ram_get(sec_type, index, key)
        ret = self._irq(IRQ_GET_SECRET, (sec_type, index), bufs=(key,))
        if ret is None:
            return None
        try:
            if isinstance(ret, str):
                val = ret.encode()
            else:
                val = bytes(memoryview(ret))
        except TypeError:
            # mp_get_buffer_raise outside the protected call: the firmware aborts
            sys.stdout.write("FATAL: uncaught exception in NimBLE task (GET_SECRET returned a non-buffer)\n")
            self._trace.add("host", self._board.name, "fatal", args={"why": "GET_SECRET returned non-buffer"})
            self._world.schedule(0, self._board.reset)
            raise BoardDown() from None
        want = 16 if sec_type == 10 else self._profile.sec_size
        if len(val) != want:
            self._trace.add("host", self._board.name, "secret_size_mismatch",
                            args={"sec_type": sec_type, "len": len(val), "want": want})
            return None
        return val

    def _set_secret(self, sec_type, key, value):
        if self._profile.ram_store and sec_type in (1, 2):
            return self._ram_set(sec_type, key, value)
        ret = bool(self._irq(IRQ_SET_SECRET, (sec_type,), bufs=(key, value)))
        if not ret and value is not None and sec_type in (1, 2):
            # BLE_HS_ESTORE_CAP -> overflow event -> ble_gap_unpair_oldest_peer iterates our
            # keys (the type-1 quirk: finds none) -> the write fails
            self._trace.add("host", self._board.name, "store_overflow", args={"sec_type": sec_type})
            self._get_secret(1, 0, _ZERO_KEY)
        return ret

    def _iter_peer_sec(self):
        """GET(2,i,None) for i = 0.. until None; yields the decoded values."""
        i = 0
        while True:
            v = self._get_secret(2, i, None)
            if v is None:
                return
            yield secstruct.unpack(self._profile.layout, v)
            i += 1
            if i > 1000:  # a handler that never returns None
                return

    def _restore_peer_irks(self):
        for d in self._iter_peer_sec():
            if d["irk"] is not None:
                self._add_resolving(d["irk"], (d["addr_type"], d["addr"]))

    def _read_sec(self, sec_type, ident):
        v = self._get_secret(sec_type, 0, secstruct.store_key(*ident))
        if v is None:
            return None
        return secstruct.unpack(self._profile.layout, v)

    def _count_bonds(self):
        """ble_store_util_count for PEER_SEC then OUR_SEC. ble_store_iterate asks index 0, 1, ...
        until ENOENT; for OUR_SEC the binding passes the all-zero "any" address as the key (the
        type-1 quirk), so a store that answers by key finds nothing at index 0, and one that
        answers by index is asked again and again."""
        n = sum(1 for _ in self._iter_peer_sec())
        i = 0
        while self._get_secret(1, i, _ZERO_KEY) is not None and i < 1000:
            i += 1
        return n

    _LOOP_CAP = 64  # stands in for "forever" in NimBLE's store loops

    def _delete_peer(self, ident):
        """ble_store_util_delete_peer: SET(t, key, None) until it returns False, t = 1 then 2.
        A handler that never returns False hangs the NimBLE task on the board."""
        key = secstruct.store_key(*ident)
        for t in (1, 2):
            for _ in range(self._LOOP_CAP):
                if not self._set_secret(t, key, None):
                    break
            else:
                self._hang("SET_SECRET(%d, key, None) never returned False" % t)

    def _hang(self, why):
        """The NimBLE host task spins forever: no more BLE events on this board (the peers
        see supervision timeouts only if the controller stops too; here the links stay up but
        nothing answers). Python keeps running."""
        self._trace.add("host", self._board.name, "hang", args={"why": why})
        sys.stdout.write("blesim: NimBLE host task hung (%s)\n" % why)
        self._hung = True
        self._dead = True
        raise BoardDown()

    # ================================================================ public API: stack
    def active(self, *args):
        return self._api_call("active", args, {}, self._active_impl)

    def _active_impl(self, change=None):
        if change is None:
            return self._active
        if change and not self._active:
            # ble_hs_sync: restore peer IRKs, then load_irk, then restore again
            self._resolving = []
            self._restore_peer_irks()
            irk = self._get_secret(10, 0, b"irk")
            applied = False
            if irk is not None:
                self._irk = bytes(irk)
                applied = True
            else:
                new = self._urandom(16)
                if self._set_secret(10, b"irk", new):
                    self._irk = new
                    applied = True
            if applied:
                self._restore_peer_irks()
            self._active = True
            self._addr_mode = 0
            self._own_addr = None
            self._trace.add("host", self._board.name, "sync", args={"irk_applied": applied,
                                                                   "resolving": len(self._resolving)})
        elif not change and self._active:
            self._stop_stack()
        return self._active

    def _stop_stack(self):
        """mp_bluetooth_deinit: stop advertising, stop scanning (raises _IRQ_SCAN_DONE while
        still active), then the port's shutdown ends every link (peers see 0x13).
        ESP32 (ports/esp32/mpnimbleport.c, mp_bluetooth_nimble_port_shutdown): nimble_port_stop()
        -> ble_hs_stop() runs while the binding's state is still ACTIVE, so each link's
        disconnect event (after an ENCRYPTION_UPDATE if a pairing was running) reaches Python
        inside active(False); NimBLE calls made from those handlers fail with BLE_HS_EDISABLED
        (OSError -30). The default port (extmod/nimble/modbluetooth_nimble.c) sets the state
        to STOPPING first: the callbacks check mp_bluetooth_is_active() and raise nothing."""
        if self._advertising:
            self._air.set_advertising(self._board, None)
            self._advertising = False
        self._scan_stop()
        if self._connecting:
            self._air.cancel_connect(self._board)
            self._connecting = None
        if self._profile.shutdown_irqs:
            self._stopping = True
            try:
                for c in list(self._conns.values()):
                    if self._conns.get(c.handle) is c:
                        self._air.disconnect(c.link, self._board, 0x13)
                        self._conn_gone(c, HCI_LOCAL_HOST_TERM)
            finally:
                self._stopping = False
        self._active = False
        for c in list(self._conns.values()):
            self._air.disconnect(c.link, self._board, 0x13)
            if c.smp_timer:
                c.smp_timer.cancel()
        self._conns = {}
        self._char_disc = None
        self._db.reset()
        self._resolving = []
        self._irk = DEFAULT_IRK

    def config(self, *args, **kwargs):
        return self._api_call("config", args, kwargs, self._config_impl)

    def _config_impl(self, *args, **kwargs):
        if args and kwargs:
            raise TypeError("can't specify pos and kw args")
        if args:
            if len(args) != 1:
                raise TypeError("must query one param")
            name = args[0]
            if name == "gap_name":
                return bytes(self._gap_name)
            if name == "mac":
                if not self._active:
                    raise self._err("ENODEV")
                if self._addr_mode == 2:
                    raise self._err("EINVAL")
                t, a = self._current_addr()
                return (t, bytes(a))
            if name == "mtu":
                if not self._active:
                    raise self._err("ENODEV")
                return self._mtu
            raise ValueError("unknown config param")
        if not kwargs:
            raise TypeError("must query one param")
        for k, v in kwargs.items():
            if k == "gap_name":
                b = _buf(v)
                if len(b) > self._profile.max_name_len:
                    raise self._err("EINVAL")
                self._gap_name = b
            elif k == "mtu":
                if not self._active:
                    raise self._err("ENODEV")
                v = _int(v)
                if v < 23 or v > 527:
                    raise self._err("EINVAL")
                self._mtu = v
            elif k == "addr_mode":
                if not self._active:
                    raise self._err("ENODEV")
                self._set_addr_mode(_int(v))
            elif k == "bond":
                self._bond = 1 if v else 0
            elif k == "mitm":
                self._mitm = 1 if v else 0
            elif k == "le_secure":
                self._le_secure = 1 if v else 0
            elif k == "io":
                self._io = _int(v) & 0xFF
            else:
                raise ValueError("unknown config param")
        return None

    def _set_addr_mode(self, m):
        if m == 0:
            if self._board.addr_type != 0:
                raise self._err("EINVAL")
            self._addr_mode = 0
            self._own_addr = None
        elif m == 1:
            a = bytearray(self._urandom(6))
            a[0] |= 0xC0
            self._addr_mode = 1
            self._own_addr = (1, bytes(a))
        elif m == 2:
            self._addr_mode = 2
            self._own_addr = None
            self._current_addr()
        elif m == 3:
            a = bytearray(self._urandom(6))
            a[0] &= 0x3F
            self._addr_mode = 3
            self._own_addr = (1, bytes(a))
        # unknown values are silently ignored

    def irq(self, handler):
        return self._api_call("irq", (handler,), {}, self._irq_impl)

    def _irq_impl(self, handler):
        if handler is not None and not callable(handler):
            raise ValueError("invalid handler")
        self._handler = handler
        return None

    # ================================================================ GAP: advertising, scanning
    def gap_advertise(self, interval_us, adv_data=None, *, resp_data=None, connectable=True):
        return self._api_call("gap_advertise", (interval_us, adv_data),
                              {"resp_data": resp_data, "connectable": connectable}, self._advertise_impl)

    def _advertise_impl(self, interval_us, adv_data=None, resp_data=None, connectable=True):
        if not self._active:
            raise self._err("ENODEV")
        if self._stopping:
            raise self._err(-BLE_HS_EDISABLED)
        # mp_bluetooth_gap_advertise_start: stop, then set the data (each checked), then start
        if self._advertising:
            self._air.set_advertising(self._board, None)
            self._advertising = False
        if interval_us is None:
            return None
        if adv_data is not None:
            b = _buf(adv_data)
            if len(b) > 31:
                raise self._err("EINVAL")
            self._adv_data = b
        if resp_data is not None:
            b = _buf(resp_data)
            if len(b) > 31:
                raise self._err("EINVAL")
            self._resp_data = b
        interval_us = _int(interval_us)
        if interval_us < 20000 or interval_us > 10240000:
            raise self._err("EINVAL")
        from ..air import AdvParams

        # modbluetooth_nimble.c advertises with disc_mode = BLE_GAP_DISC_MODE_GEN in both modes,
        # so non-connectable advertising is scannable (ADV_SCAN_IND), never ADV_NONCONN_IND
        p = AdvParams(interval_us / 1e6, self._adv_data, self._resp_data, bool(connectable), self._current_addr(),
                      scannable=True)
        self._air.set_advertising(self._board, p)
        self._advertising = True
        return None

    def gap_scan(self, duration_ms=None, interval_us=1280000, window_us=11250, active=False):
        return self._api_call("gap_scan", (duration_ms, interval_us, window_us, active), {}, self._scan_impl)

    def _scan_impl(self, duration_ms=None, interval_us=1280000, window_us=11250, active=False):
        if not self._active:
            raise self._err("ENODEV")
        if self._stopping:
            raise self._err(-BLE_HS_EDISABLED)
        if duration_ms is None:
            self._scan_stop()
            return None
        if self._board.name in self._air.scan:
            raise self._err("EALREADY")
        interval_us = _int(interval_us)
        window_us = _int(window_us)
        if window_us > interval_us:
            # the controller refuses the scan parameters (HCI 0x12): BLE_HS_ERR_HCI_BASE + 0x12,
            # not in ble_hs_err_to_errno's table -> negative
            raise self._err(-(0x200 + 0x12))
        from ..air import ScanParams

        self._air.set_scanning(self._board, ScanParams(interval_us / 1e6, window_us / 1e6, bool(active),
                                                       self._now(), self._current_addr()))
        duration_ms = _int(duration_ms)
        if duration_ms > 0:
            self._scan_timer = self._world.schedule(duration_ms / 1000.0, self._scan_complete)
        return None

    def _scan_stop(self, silent=False):
        if self._scan_timer:
            self._scan_timer.cancel()
            self._scan_timer = None
        if self._board.name in self._air.scan:
            self._air.set_scanning(self._board, None)
            if not silent:
                self._irq(IRQ_SCAN_DONE)

    def _scan_complete(self):
        self._scan_timer = None
        if self._dead:
            return
        self._scan_stop()

    def _ll_adv_report(self, addr_type, addr, adv_type, rssi, data):
        if self._dead or not self._active:
            return
        self._irq(IRQ_SCAN_RESULT, (addr_type,), addr, (adv_type, rssi), bufs=(data,))

    # ================================================================ GAP: connections
    def gap_connect(self, *args, **kwargs):
        return self._api_call("gap_connect", args, kwargs, self._connect_impl)

    def _connect_impl(self, *args, **kwargs):
        """bluetooth_ble_gap_connect (extmod/modbluetooth.c): positional only,
        (addr_type, addr, scan_duration_ms, min_conn_interval_us, max_conn_interval_us), None
        meaning "default" for the last three; gap_connect(None) cancels."""
        if kwargs:
            raise TypeError("function doesn't take keyword arguments")
        if not 1 <= len(args) <= 5:
            raise TypeError("function expected at most 6 arguments, got %d" % (len(args) + 1))
        if len(args) == 1:
            if args[0] is not None:
                raise TypeError("invalid addr")
            if not self._active:
                raise self._err("ENODEV")
            if self._connecting:
                self._air.cancel_connect(self._board)
                self._connecting = None
            return None
        args = args + (None,) * (5 - len(args))
        addr_type, addr, scan_duration_ms, min_conn_interval_us, max_conn_interval_us = args
        addr_type = _int(addr_type) & 0xFF
        a = _buf(addr)
        if len(a) != 6:
            raise ValueError("invalid addr")
        # MP_BLUETOOTH_CONNECT_DEFAULT_SCAN_DURATION_MS; 0 -> BLE_GAP_CONN_DUR_DFLT (ble_gap_connect)
        scan_duration_ms = 2000 if scan_duration_ms is None else _int(scan_duration_ms)
        if scan_duration_ms == 0:
            scan_duration_ms = 30000
        min_conn_interval_us = 0 if min_conn_interval_us is None else _int(min_conn_interval_us)
        max_conn_interval_us = 0 if max_conn_interval_us is None else _int(max_conn_interval_us)
        if not self._active:
            raise self._err("ENODEV")
        if self._stopping:
            raise self._err(-BLE_HS_EDISABLED)
        if self._connecting:
            raise self._err("EALREADY")
        if self._board.name in self._air.scan:
            self._scan_stop()
        from ..air import ConnParams

        interval = 0.030
        if max_conn_interval_us:
            interval = max_conn_interval_us / 1e6
        elif min_conn_interval_us:
            interval = min_conn_interval_us / 1e6
        timeout = 2.56  # BLE_GAP_INITIAL_SUPERVISION_TIMEOUT
        target = (addr_type, a)

        def matcher(adv_addr):
            return adv_addr == target or self._resolve(adv_addr) == target

        self._connecting = target
        self._air.connect(self._board, self._current_addr(), target, scan_duration_ms / 1000.0,
                          ConnParams(interval, 0, timeout), matcher)
        return None

    def _ll_connect_failed(self):
        if self._dead:
            return
        self._connecting = None
        self._irq(IRQ_PERIPHERAL_DISCONNECT, (CONN_HANDLE_NONE, 0xFF), bytes(6))

    def _ll_connected(self, link, role):
        if self._dead:
            return
        me = self._board
        peer_addr = link.addrs[link.peer(me).name]
        peer_id = self._resolve(peer_addr)
        h = link.handle(me)
        c = _Conn(link, h, role, peer_addr, peer_id)
        self._conns[h] = c
        if role == "central":
            self._connecting = None
            self._advertising = self._advertising and self._board.name in self._air.adv
            self._irq(IRQ_PERIPHERAL_CONNECT, (h, peer_id[0]), peer_id[1], conn=h)
        else:
            self._advertising = False
            self._irq(IRQ_CENTRAL_CONNECT, (h, peer_id[0]), peer_id[1], conn=h)

    def gap_disconnect(self, conn_handle):
        return self._api_call("gap_disconnect", (conn_handle,), {}, self._disconnect_impl)

    def _disconnect_impl(self, conn_handle):
        if not self._active:
            raise self._err("ENODEV")
        c = self._conns.get(_int(conn_handle))
        if c is None:
            return False
        return bool(self._air.disconnect(c.link, self._board, 0x13))

    def _ll_disconnected(self, link, reason):
        if self._dead:
            return
        c = self._conns.get(link.handle(self._board))
        if c is None or c.link is not link:
            return
        self._conn_gone(c, reason)

    def _conn_gone(self, c, reason):
        # ble_gap_conn_broken: the SM's failed ENC event (ble_sm_connection_broken), the GATT
        # client's aborted procedures, then DISCONNECT, in one host call: back to back at one
        # instant, as blesmp's link-loss inference expects of a board. A peer's own disconnection
        # after Pairing Failed is a later HCI event (Air.disconnect: a connection interval on).
        self._conns.pop(c.handle, None)
        if c.smp is not None:
            outs = c.smp.link_lost(self._now())
            self._smp_outputs(c, outs)
        if c.restore is not None:
            # ble_sm_connection_broken: a running restore procedure ends with an ENC event
            c.restore = None
            self._enc_update(c)
        if c.late_enc is not None:  # ... and so does esp-nimble's rejected numeric comparison
            c.late_enc.cancel()
            c.late_enc = None
            self._enc_update(c)
        if c.smp_timer:
            c.smp_timer.cancel()
        # pending GATT client procedures end with BLE_HS_ENOTCONN
        procs, c.gattc = c.gattc, []
        for p in procs:
            p.abort(self, c, BLE_HS_ENOTCONN)
        ev = IRQ_PERIPHERAL_DISCONNECT if c.role == "central" else IRQ_CENTRAL_DISCONNECT
        self._irq(ev, (c.handle, c.peer_id[0]), c.peer_id[1], conn=c.handle)

    def _conn(self, conn_handle):
        c = self._conns.get(_int(conn_handle))
        if c is None:
            raise self._err("ENOTCONN")
        return c

    # ================================================================ security: API
    def gap_pair(self, conn_handle):
        return self._api_call("gap_pair", (conn_handle,), {}, self._pair_impl)

    def _pair_impl(self, conn_handle):
        if not self._active:
            raise self._err(-BLE_HS_EDISABLED)
        c = self._conn(conn_handle)
        busy = (c.smp is not None and c.smp.busy) or c.restore is not None
        if c.role == "central":
            # ble_gap_security_initiate: the LTK lookup comes before the "already" check
            d = self._read_sec(2, c.peer_id)
            if busy:
                raise self._err("EALREADY")
            if d is not None and d["ltk"] is not None:
                self._start_restore(c, d)
                return None
            self._start_pairing(c)
        else:
            if busy:
                raise self._err("EALREADY")
            self._trace.add("host", self._board.name, "security_request", conn=c.handle)
            self._smp_outputs(c, self._engine(c).pair(self._now()))
        return None

    def gap_passkey(self, *args):
        return self._api_call("gap_passkey", args, {}, self._passkey_impl)

    def _passkey_impl(self, *args):
        if len(args) != 3:
            raise TypeError("function takes 4 positional arguments but %d were given" % (len(args) + 1))
        conn_handle, action, passkey = (_int(a) for a in args)
        if action not in (PASSKEY_INPUT, PASSKEY_DISPLAY, PASSKEY_NUMCMP):
            raise self._err("EINVAL")
        c = self._conns.get(conn_handle)
        if c is not None and c.numcmp_rejected and c.smp is not None and not c.smp.busy:
            # esp-nimble ble_sm_inject_io: a "no" to a comparison sends Pairing Failed but leaves
            # the procedure (no app_status) until the SM timer: the next answer is taken (0)
            # and a "yes" sets IO_INJECTED; the peer has already given up
            if c.io_injected:
                raise self._err("EALREADY")
            if action != PASSKEY_NUMCMP:
                raise self._err("EINVAL")
            c.io_injected = passkey != 0
            if passkey == 0:
                self._air.send(c.link, self._board, SMP_CID, bytes([0x05, 0x0C]), name="PAIRING_FAILED",
                               text="PAIRING_FAILED reason=0x0c")
            return None
        if c is None or c.smp is None or not c.smp.busy:
            raise self._err("ENOENT")
        if c.io_injected:
            raise self._err("EALREADY")
        if c.io_action is None or c.io_action != action:
            raise self._err("EINVAL")
        if action in (PASSKEY_INPUT, PASSKEY_DISPLAY):
            if passkey < 0 or passkey > 999999:
                raise self._err("EINVAL")
            c.io_injected = True
            c.io_action = None
            outs = c.smp.passkey(passkey, self._now())
        else:
            c.io_injected = True
            c.io_action = None
            c.numcmp_rejected = passkey == 0
            outs = c.smp.confirm(passkey != 0, self._now())
        self._smp_outputs(c, outs)
        return None

    # ================================================================ security: NimBLE host
    def _engine(self, c):
        if c.smp is None:
            from tools.smp import Identity, SmpConfig, SmpEngine

            # keys_without_bonding: ble_sm_pair_req_fill/rsp_fill use sm_our/their_key_dist
            # whatever sm_bonding says (esp-nimble and mynewt-nimble alike)
            cfg = SmpConfig(io_cap=_io_cap(self._io), bonding=bool(self._bond), mitm=bool(self._mitm),
                            sc=bool(self._le_secure), init_key_dist=self._profile.key_dist,
                            resp_key_dist=self._profile.key_dist, max_key_size=self._profile.max_key_size,
                            hold_pairing_request=True, keys_without_bonding=True)
            me = self._board
            ident = self._id_addr()
            if self._ecc_key is None:
                self._ecc_key = SmpEngine.generate_key()
            c.smp = SmpEngine(c.role, cfg, c.link.addrs[me.name], c.peer_addr,
                              identity=Identity(self._irk, ident[0], ident[1]), rng=self._urandom,
                              attempts=self._attempts, ecc_key=self._ecc_key)
        return c.smp

    def _start_pairing(self, c):
        """ble_sm_pair_initiate (central): bond-count check (BLE_SM_BONDING builds), then Pairing Request."""
        if self._profile.bond_count_lookup:
            self._count_bonds()
        c.io_action = None
        c.io_injected = False
        eng = self._engine(c)
        self._refresh_config(eng)
        self._trace.add("host", self._board.name, "pairing_start", conn=c.handle, args={"role": c.role})
        self._smp_outputs(c, eng.pair(self._now()))

    def _refresh_config(self, eng):
        """ble_sm_pair_base_fill reads ble_hs_cfg for each Pairing Request/Response: a second
        pairing on the same link uses the configuration of that moment."""
        eng.config.io_cap = _io_cap(self._io)
        eng.config.bonding = bool(self._bond)
        eng.config.mitm = bool(self._mitm)
        eng.config.sc = bool(self._le_secure)

    def _start_restore(self, c, d):
        """Central: encrypt with the stored LTK (no pairing)."""
        c.restore = (d["authenticated"], d["key_size"])
        self._trace.add("host", self._board.name, "encrypt_with_bond", conn=c.handle,
                        args={"authenticated": d["authenticated"], "key_size": d["key_size"]})
        outs = self._engine(c).encrypt(d["ltk"], d["ediv"], d["rand"], d["key_size"], self._now())
        if not outs:
            c.restore = None
        self._smp_outputs(c, outs)

    def _smp_outputs(self, c, outs):
        """Acts on engine outputs in order. Calls made from IRQ handlers while a batch is being
        processed (gap_passkey inside _IRQ_PASSKEY_ACTION) queue behind the rest of the batch,
        as NimBLE sends a state's PDUs before it raises the state's events."""
        c.outq.extend(outs)
        if c.outq_busy:
            return
        c.outq_busy = True
        try:
            while c.outq:
                self._smp_output(c, c.outq.pop(0))
        finally:
            c.outq_busy = False
            c.outq = []
        self._arm_smp_timer(c)

    def _smp_output(self, c, o):
        from tools.smp import (
            DisplayPasskey,
            Failed,
            LtkReply,
            NumericComparison,
            Paired,
            PairingRequestReceived,
            PasskeyRequest,
            SecurityRequestReceived,
            Send,
            StartEncryption,
        )
        from tools.smp import pdu as P

        if True:
            if isinstance(o, Send):
                pdu = o.pdu
                if pdu[:1] in (b"\x01", b"\x02") and self._io > 4:
                    # ble_sm_pair_base_fill copies ble_hs_cfg.sm_io_cap unchecked: a reserved
                    # value goes out raw (a peer following the specification answers 0x0A)
                    pdu = pdu[:1] + bytes([self._io]) + pdu[2:]
                self._air.send(c.link, self._board, SMP_CID, pdu, name=P.name(pdu), text=P.describe(pdu))
            elif isinstance(o, StartEncryption):
                self._air.start_encryption(c.link, o.ltk, o.ediv, o.rand, o.key_size)
            elif isinstance(o, LtkReply):
                if o.ltk is None:
                    self._ltk_from_store(c, *c.ltk_req)
                else:
                    self._air.ltk_reply(c.link, o.ltk)
            elif isinstance(o, PasskeyRequest):
                self._io_request(c, PASSKEY_DISPLAY if o.display else PASSKEY_INPUT, 0)
            elif isinstance(o, NumericComparison):
                self._io_request(c, PASSKEY_NUMCMP, o.number)
            elif isinstance(o, DisplayPasskey):
                self._trace.add("host", self._board.name, "display_passkey", conn=c.handle,
                                args={"passkey": o.passkey})
            elif isinstance(o, PairingRequestReceived):
                self._on_pairing_request(c)
            elif isinstance(o, SecurityRequestReceived):
                self._on_security_request(c, o)
            elif isinstance(o, Paired):
                self._on_paired(c, o.result)
            elif isinstance(o, Failed):
                self._on_failed(c, o)

    def _arm_smp_timer(self, c):
        if c.smp_timer:
            c.smp_timer.cancel()
            c.smp_timer = None
        if c.smp is not None and c.smp.deadline is not None and c.handle in self._conns:
            c.smp_timer = self._world.at(c.smp.deadline, self._smp_tick, c)

    def _smp_tick(self, c):
        c.smp_timer = None
        if self._dead or self._conns.get(c.handle) is not c or c.smp is None:
            return
        self._smp_outputs(c, c.smp.tick(self._now()))

    def _io_request(self, c, action, number):
        c.io_action = action
        c.io_injected = False
        if c.role == "peripheral" or self._profile.central_passkey:
            self._irq(IRQ_PASSKEY_ACTION, (c.handle, action, number), conn=c.handle)
        else:
            # peripheral_gap_event_cb (connections made by gap_connect) ignores PASSKEY_ACTION
            self._trace.add("host", self._board.name, "passkey_action_not_delivered", conn=c.handle,
                            args={"action": action, "passkey": number})

    def _on_pairing_request(self, c):
        """Peripheral: NimBLE's checks before it answers a Pairing Request."""
        self._trace.add("host", self._board.name, "pairing_start", conn=c.handle, args={"role": c.role})
        c.io_action = None
        c.io_injected = False
        if self._profile.bond_count_lookup:
            self._count_bonds()
        key = secstruct.store_key(*c.peer_id)
        for _ in range(self._LOOP_CAP):  # ble_sm_chk_repeat_pairing: do { ... } while (RETRY)
            v = self._get_secret(2, 0, key)
            if v is None:
                break
            self._trace.add("host", self._board.name, "repeat_pairing", conn=c.handle)
            self._delete_peer(c.peer_id)
        else:
            self._hang("the peer's bond is still found after deleting it")
        self._refresh_config(c.smp)
        # queued behind the rest of this batch (the engine holds the request until now)
        self._smp_outputs(c, c.smp.accept_pairing(True, self._now()))

    def _on_security_request(self, c, o):
        """Central: ble_sm_sec_req_rx."""
        if c.restore is not None:
            return
        if o.bonding:
            d = self._read_sec(2, c.peer_id)
            if d is not None and d["ltk"] is not None and (not o.mitm or d["authenticated"]):
                self._start_restore(c, d)
                return
        self._start_pairing(c)

    def _ltk_from_store(self, c, ediv=0, rand=0):
        """Peripheral, LTK request outside pairing: GET(1,0,peer). Whatever record is found is
        replied with (ble_sm_ltk_restore_exec): one stored without an LTK gives the all-zero
        key, and the link then drops with a MIC failure (0x3D) instead of a negative reply.
        esp-nimble's ble_sm_retrieve_ltk also compares the record's EDIV/Rand with the
        request's (a record without an LTK has 0/0, as LE SC requests); mynewt-nimble asks the
        store with them, and MicroPython's binding ignores them."""
        d = self._read_sec(1, c.peer_id)
        if d is not None and self._profile.ltk_ediv_check and (d["ediv"], d["rand"]) != (ediv, rand):
            d = None
        if d is not None:
            if d["ltk"] is None:
                self._trace.add("host", self._board.name, "ltk_reply_without_ltk", conn=c.handle)
            c.restore = (d["authenticated"], d["key_size"])
            if c.smp is not None and c.smp.busy:
                # our Security Request is answered by encryption: the SEC_REQ procedure
                # becomes an LTK restore (NimBLE reuses the proc); drop the pairing engine
                if c.smp_timer:
                    c.smp_timer.cancel()
                    c.smp_timer = None
                c.smp = None
            self._air.ltk_reply(c.link, d["ltk"] if d["ltk"] is not None else bytes(16))
        else:
            self._air.ltk_reply(c.link, None)

    def _ll_ltk_request(self, link, ediv, rand):
        if self._dead:
            return
        c = self._conns.get(link.handle(self._board))
        if c is None:
            return
        c.ltk_req = (ediv, rand)
        if c.smp is not None:
            self._smp_outputs(c, c.smp.ltk_request(ediv, rand, self._now()))
        else:
            self._ltk_from_store(c, ediv, rand)

    def _ll_encryption_changed(self, link, status, encrypted, key_size):
        if self._dead:
            return
        c = self._conns.get(link.handle(self._board))
        if c is None:
            return
        ok = status == 0 and encrypted
        if c.smp is not None and c.smp.busy and c.restore is None:
            c.encrypted = 1 if ok else c.encrypted
            c.key_size = key_size if ok else c.key_size
            if ok and c.smp.authenticated:
                # ble_sm_enc_event_rx (state ENC_START): the link is marked authenticated at the
                # encryption change, before key distribution (a later failure keeps it)
                c.authenticated = 1
            self._smp_outputs(c, c.smp.encryption_changed(ok, key_size, self._now()))
            return
        if c.smp is not None:
            c.smp.encryption_changed(ok, key_size, self._now())
        restore, c.restore = c.restore, None
        if (restore is not None and status == 0x06 and c.role == "central"
                and self._profile.repair_on_key_missing):
            # esp-nimble: app_status 518 (BLE_HS_HCI_ERR(0x06)) -> free the proc, no ENC
            # event, ble_sm_pair_initiate()
            self._trace.add("host", self._board.name, "key_missing_repair", conn=c.handle)
            self._start_pairing(c)
            return
        if ok and restore is not None:
            c.encrypted, c.authenticated, c.bonded, c.key_size = 1, restore[0], 1, restore[1]
        elif ok:
            c.encrypted, c.key_size = 1, key_size
        self._enc_update(c)

    def _enc_update(self, c):
        self._irq(IRQ_ENCRYPTION_UPDATE, (c.handle, c.encrypted, c.authenticated, c.bonded, c.key_size),
                  conn=c.handle)

    def _on_paired(self, c, r):
        # ble_sm_key_exch_success -> ble_sm_update_sec_state: authenticated and bonded are
        # never revoked from a link
        c.encrypted = 1
        c.authenticated = 1 if r.authenticated else c.authenticated
        c.bonded = 1 if r.bonded else c.bonded
        c.key_size = r.key_size
        c.io_action = None
        self._trace.add("host", self._board.name, "paired", conn=c.handle,
                        args={"method": r.method, "sc": int(r.sc), "authenticated": c.authenticated,
                              "bonded": c.bonded, "key_size": r.key_size})
        if not self._profile.set_before_enc:
            self._enc_update(c)
        if r.bonded:
            self._persist(c, r)
        if self._profile.set_before_enc:
            self._enc_update(c)

    def _persist(self, c, r):
        """ble_sm_persist_keys (only for a bond: keys exchanged without bonding are dropped, the
        connection keeps its address): the peer's identity address becomes the connection's,
        then SET(1, key, ours) and SET(2, key, peer's). ble_sm_fill_store_value writes
        key_size, ediv, rand, authenticated and sc only with an LTK;
        ble_store_write_peer_sec adds the peer IRK to the resolving list only if the write
        succeeded."""
        if r.peer.identity is not None:
            c.peer_id = (r.peer.identity[0] & 1, bytes(r.peer.identity[1]))
        lay = self._profile.layout
        t, a = c.peer_id
        key = secstruct.store_key(t, a)
        saved = False
        for sec_type, k in ((1, r.local), (2, r.peer)):
            has_ltk = k.ltk is not None
            val = secstruct.pack(lay, t, a, key_size=r.key_size if has_ltk else 0, ediv=k.ediv if has_ltk else 0,
                                 rand=k.rand if has_ltk else 0, ltk=k.ltk, irk=k.irk, csrk=k.csrk,
                                 authenticated=has_ltk and r.authenticated, sc=has_ltk and r.sc)
            saved = self._set_secret(sec_type, key, val)
        if saved and r.peer.irk is not None and r.peer.identity is not None:
            self._add_resolving(r.peer.irk, c.peer_id)

    def _on_failed(self, c, o):
        c.io_action = None
        self._trace.add("host", self._board.name, "pairing_failed", conn=c.handle,
                        args={"reason": o.reason, "cause": o.cause, "local": int(bool(o.local))})
        if c.request_rejected:
            c.request_rejected = False
            return
        if o.cause == "timeout":
            # NimBLE frees the procedure; it does not mark the link (the "tainted" XXX in
            # ble_sm_timer is not implemented): a later gap_pair pairs again
            self._trace.add("host", self._board.name, "smp_timeout", conn=c.handle)
            c.smp = None
        # ENC_CHANGE with an error status: Python sees the current state only
        if c.numcmp_rejected and o.cause == "sent":
            if self._profile.numcmp_reject_delay is None:
                c.numcmp_rejected = False
                return  # mynewt-nimble: the proc is freed without an ENC event (real host: none)
            if self._profile.numcmp_reject_delay:
                # esp-nimble: the proc stays; its ENC event comes with the SM timer, or when the
                # link goes (ble_sm_connection_broken), whichever is first (real host);
                # c.numcmp_rejected stays set while that procedure lives (see _passkey_impl)
                c.io_injected = False
                c.late_enc = self._world.schedule(self._profile.numcmp_reject_delay, self._late_enc_update, c, c.smp)
                return
        c.numcmp_rejected = False
        self._enc_update(c)

    def _late_enc_update(self, c, eng):
        c.late_enc = None
        c.numcmp_rejected = False
        if self._dead or self._conns.get(c.handle) is not c or c.smp is not eng or eng.busy:
            return
        self._enc_update(c)

    # ================================================================ GATT server API
    def gatts_register_services(self, services_definition):
        return self._api_call("gatts_register_services", (services_definition,), {}, self._register_impl)

    def _register_impl(self, services):
        if not self._active:
            raise self._err("ENODEV")
        # ble_gatts_reset -> ble_gatts_mutable(): not while advertising, scanning, connecting
        # or connected (BLE_HS_EBUSY)
        if (self._advertising or self._board.name in self._air.scan or self._connecting
                or self._conns):
            raise self._err("EBUSY")
        return self._db.register(services)

    def _attr(self, value_handle):
        a = self._db.user_value(_int(value_handle))
        if a is None:
            raise self._err("EINVAL")
        return a

    def gatts_read(self, value_handle):
        return self._api_call("gatts_read", (value_handle,), {}, self._gatts_read_impl)

    def _gatts_read_impl(self, value_handle):
        if not self._active:
            raise self._err("ENODEV")
        return bytes(self._attr(value_handle).value)

    def gatts_write(self, value_handle, data, send_update=False):
        return self._api_call("gatts_write", (value_handle, data, send_update), {}, self._gatts_write_impl)

    def _gatts_write_impl(self, value_handle, data, send_update=False):
        if not self._active:
            raise self._err("ENODEV")
        a = self._attr(value_handle)
        b = _buf(data)
        a.value = bytearray(b)
        if len(b) > a.max_len:
            a.max_len = len(b)
        if send_update and a.handle not in self._updates:
            # esp-nimble ble_gatts_chr_updated only marks the subscribed connections' CCCD entries
            # and calls ble_hs_notifications_sched: the host task sends later
            # (ble_gatts_tx_notifications_one_chr), after gatts_write has returned, one update per
            # connection however many writes came before it, each with the value read back
            # through the access callback at that moment (ble_gattc_notify_custom /
            # ble_gattc_indicate_custom with no data -> ble_att_svr_read_handle(
            # BLE_HS_CONN_HANDLE_NONE, ...): READ_REQUEST (65535, handle), no permission check).
            self._updates.add(a.handle)
            self._world.schedule(0, self._tx_updates, a.handle)
        return None

    def _tx_updates(self, vh):
        self._updates.discard(vh)
        if not self._active or self._dead:
            return
        for c in list(self._conns.values()):
            v = c.cccd.get(vh + 1, 0)
            if not v & 3 or c.handle not in self._conns:
                continue
            if self._read_request_rc(CONN_HANDLE_NONE, vh):
                continue  # BLE_HS_EAPP: this connection gets nothing
            a = self._db.get(vh)
            if a is not None:
                self._send_notify(c, vh, bytes(a.value), G.NOTIFY if v & 1 else G.INDICATE)

    def gatts_set_buffer(self, value_handle, buf_len, append=False):
        return self._api_call("gatts_set_buffer", (value_handle, buf_len, append), {}, self._set_buffer_impl)

    def _set_buffer_impl(self, value_handle, buf_len, append=False):
        if not self._active:
            raise self._err("ENODEV")
        a = self._attr(value_handle)
        a.max_len = _int(buf_len)
        a.append = bool(append)
        a.value = bytearray()
        return None

    def gatts_notify(self, conn_handle, value_handle, data=None):
        return self._api_call("gatts_notify", (conn_handle, value_handle, data), {},
                              lambda c, v, d=None: self._notify_impl(c, v, d, G.NOTIFY))

    def gatts_indicate(self, conn_handle, value_handle, data=None):
        return self._api_call("gatts_indicate", (conn_handle, value_handle, data), {},
                              lambda c, v, d=None: self._notify_impl(c, v, d, G.INDICATE))

    def _notify_impl(self, conn_handle, value_handle, data, op):
        if not self._active:
            raise self._err("ENODEV")
        c = self._conn(conn_handle)
        vh = _int(value_handle)
        if data is None:
            a = self._db.get(vh)
            if a is None:
                raise self._err("ENOENT")
            if a.kind in ("value", "dsc"):
                rc = self._read_request_rc(CONN_HANDLE_NONE, vh)
                if rc:
                    raise self._err(-BLE_HS_EAPP)
            value = self._db.read_value(a)
        else:
            value = _buf(data)
        self._tx_buffer()
        self._send_notify(c, vh, value, op)
        return None

    def _tx_buffer(self):
        # NimBLE takes an mbuf from its msys pool for each outgoing PDU and frees it once the
        # controller has sent it; with the pool empty, ble_hs_mbuf_from_flat fails: BLE_HS_ENOMEM
        # -> OSError(ENOMEM). So a loop of writes without response or notifications outruns the
        # link only as far as the pool goes, then gets ENOMEM until PDUs have left.
        if self._air.tx_pending(self._board) >= TX_BUFFERS:
            raise self._err("ENOMEM")

    def _send_notify(self, c, vh, value, op):
        value = value[: c.mtu - 3]
        if op == G.INDICATE:
            c.indicating = vh
        self._att_send(c, bytes([op]) + struct.pack("<H", vh) + value)

    def _read_request_rc(self, conn_handle, attr_handle):
        ret = self._irq(IRQ_GATTS_READ_REQUEST, (conn_handle, attr_handle),
                        conn=None if conn_handle == CONN_HANDLE_NONE else conn_handle)
        if ret is None:
            return 0
        if isinstance(ret, bool):
            return int(ret)
        if isinstance(ret, int):
            return ret & 0xFF
        return 0

    # ================================================================ ATT transport
    def _att_send(self, c, pdu):
        name, text = G.describe(pdu)
        self._air.send(c.link, self._board, ATT_CID, pdu, name=name, text=text)

    def _ll_rx(self, link, cid, payload):
        if self._dead:
            return
        c = self._conns.get(link.handle(self._board))
        if c is None or c.link is not link:
            return
        if cid == SMP_CID:
            if (payload[:1] == b"\x0b" and len(payload) == 2 and c.role == "central"
                    and ((c.smp is not None and c.smp.busy) or c.restore is not None)):
                # ble_sm_sec_req_rx: the LTK lookup happens before the "procedure running" check,
                # then the request is ignored
                if payload[1] & 0x01:
                    self._read_sec(2, c.peer_id)
                self._trace.add("host", self._board.name, "security_request_ignored", conn=c.handle)
                return
            if self._profile.smp_ignores_strays:
                payload = self._nimble_sm_rx(c, payload)
                if payload is None:
                    return
            eng = self._engine(c)
            fresh_request = payload[:1] == b"\x01" and (not eng.busy or eng.expects(0x01))
            outs = eng.receive(payload, self._now())
            if fresh_request and not any(type(o).__name__ == "PairingRequestReceived" for o in outs) \
                    and any(type(o).__name__ == "Failed" or getattr(o, "pdu", b"")[:1] == b"\x05" for o in outs):
                # ble_sm_pair_req_rx: ble_sm_chk_store_overflow (the bond-count look-ups) runs
                # before the checks; a request they reject (we are central, key size, auth
                # requirements) gets Pairing Failed without res->enc_cb: no ENCRYPTION_UPDATE
                self._count_bonds()
                c.request_rejected = True
            self._smp_outputs(c, outs)
        elif cid == ATT_CID:
            self._att_rx(c, payload)

    def _nimble_sm_rx(self, c, pdu):
        """esp-nimble's ble_sm_rx before our engine sees a PDU (ble_sm.c): each handler only
        pulls up the PDU's minimum length (ble_hs_mbuf_pullup_base), so a longer PDU is
        accepted as its first bytes; a PDU the running procedure does not expect sets
        res->out_of_order and ble_sm_process_result returns at once (no Pairing Failed, no
        event), and so does a Keypress Notification (ble_sm_rx_noop) and a Pairing Response
        received by a peripheral (ble_sm_pair_rsp_rx finds no initiator procedure). Returns
        the PDU to process, or None to drop it."""
        from tools.smp import const as SC
        from tools.smp import pdu as P

        op = pdu[0] if pdu else None
        length = P.LENGTHS[op] if op is not None else 0
        why = None
        if not length or op == SC.PAIRING_FAILED:
            return pdu
        if len(pdu) > length:
            self._trace.add("host", self._board.name, "smp_long_pdu_accepted", conn=c.handle,
                            args={"op": op, "len": len(pdu), "used": length})
            pdu = pdu[:length]
        if len(pdu) < length:
            return pdu
        eng = c.smp
        if op == SC.KEYPRESS_NOTIFICATION:
            why = "keypress (ble_sm_rx_noop)"
        elif op == SC.PAIRING_RESPONSE and c.role == "peripheral":
            why = "pairing response to a peripheral"
        elif eng is not None and eng.busy and not eng.expects(op):
            why = "out of order"
        if why is None:
            return pdu
        self._trace.add("host", self._board.name, "smp_ignored", conn=c.handle, args={"op": op, "why": why})
        return None

    def _att_rx(self, c, p):
        if not p:
            return
        op = p[0]
        if op in (G.ERROR_RSP, G.MTU_RSP, G.FIND_INFO_RSP, G.FIND_BY_TYPE_RSP, G.READ_BY_TYPE_RSP, G.READ_RSP,
                  G.READ_BLOB_RSP, G.READ_BY_GROUP_RSP, G.WRITE_RSP):
            if c.gattc:
                proc = c.gattc[0]
                if proc.on_rsp(self, c, p):
                    c.gattc.pop(0)
                    self._gattc_next(c)
            return
        if op in (G.NOTIFY, G.INDICATE):
            vh = struct.unpack_from("<H", p, 1)[0]
            if op == G.INDICATE:
                self._att_send(c, bytes([G.CONFIRM]))
            self._irq(IRQ_GATTC_NOTIFY if op == G.NOTIFY else IRQ_GATTC_INDICATE, (c.handle, vh), bufs=(p[3:],),
                      conn=c.handle)
            return
        if op == G.CONFIRM:
            vh, c.indicating = c.indicating, None
            if vh is not None:
                self._irq(IRQ_GATTS_INDICATE_DONE, (c.handle, vh, 0), conn=c.handle)
            return
        from .server import handle_request

        rsp = handle_request(self, c, p)
        if rsp is not None:
            self._att_send(c, rsp)

    def _perm_check(self, c, a, write):
        """ble_att_svr_check_perms: returns 0 or the ATT error."""
        f = a.flags
        if a.kind in ("service", "chrdecl", "cccd", "static"):
            if write and a.kind != "cccd":
                return G.E_WRITE_NOT_PERMITTED
            return 0
        if a.kind == "dsc":
            if write and not f & G.F_WRITE:
                return G.E_WRITE_NOT_PERMITTED
            if not write and not f & G.F_READ:
                return G.E_READ_NOT_PERMITTED
            return 0
        if write:
            if not f & (G.F_WRITE | G.F_WRITE_NO_RESPONSE):
                return G.E_WRITE_NOT_PERMITTED
            enc, authen, author = f & G.F_WRITE_ENC, f & G.F_WRITE_AUTHEN, f & G.F_WRITE_AUTHOR
        else:
            if not f & G.F_READ:
                return G.E_READ_NOT_PERMITTED
            enc, authen, author = f & G.F_READ_ENC, f & G.F_READ_AUTHEN, f & G.F_READ_AUTHOR
        if not (enc or authen or author):
            return 0
        if (enc or authen) and not c.encrypted:
            d = self._read_sec(2, c.peer_id)
            if d is not None and d["ltk"] is not None:
                return G.E_INSUFFICIENT_ENC
            return G.E_INSUFFICIENT_AUTHEN
        if authen and not c.authenticated:
            return G.E_INSUFFICIENT_AUTHEN
        if author and self._profile.authorize_rejects:
            # esp-nimble raises BLE_GAP_EVENT_AUTHORIZE; MicroPython ignores it -> reject
            self._trace.add("host", self._board.name, "authorize_rejected", conn=c.handle, args={"handle": a.handle})
            return G.E_INSUFFICIENT_AUTHOR
        return 0

    # ================================================================ GATT client API
    def _client_start(self, conn_handle, proc):
        if not self._active:
            raise self._err("ENODEV")
        c = self._conn(conn_handle)
        c.gattc.append(proc)
        if len(c.gattc) == 1:
            self._world.schedule(0, self._gattc_kick, c, proc)
        return None

    def _gattc_kick(self, c, proc):
        if self._dead or self._conns.get(c.handle) is not c or not c.gattc or c.gattc[0] is not proc:
            return
        proc.start(self, c)

    def _gattc_next(self, c):
        if c.gattc:
            self._world.schedule(0, self._gattc_kick, c, c.gattc[0])

    def gattc_discover_services(self, conn_handle, uuid=None):
        from .client import DiscoverServices

        return self._api_call("gattc_discover_services", (conn_handle, uuid), {},
                              lambda h, u=None: self._client_start(h, DiscoverServices(u)))

    def gattc_discover_characteristics(self, conn_handle, start_handle, end_handle, uuid=None):
        from .client import DiscoverCharacteristics

        def impl(h, s, e, u=None):
            if self._active and self._char_disc is not None:
                # the binding keeps one pending characteristic: one discovery at a time
                raise self._err("EBUSY")
            proc = DiscoverCharacteristics(_int(s), _int(e), u)
            self._client_start(h, proc)
            self._char_disc = proc
            return None

        return self._api_call("gattc_discover_characteristics", (conn_handle, start_handle, end_handle, uuid), {},
                              impl)

    def gattc_discover_descriptors(self, conn_handle, start_handle, end_handle):
        from .client import DiscoverDescriptors

        return self._api_call("gattc_discover_descriptors", (conn_handle, start_handle, end_handle), {},
                              lambda h, s, e: self._client_start(h, DiscoverDescriptors(_int(s), _int(e))))

    def gattc_read(self, conn_handle, value_handle):
        from .client import Read

        return self._api_call("gattc_read", (conn_handle, value_handle), {},
                              lambda h, v: self._client_start(h, Read(_int(v))))

    def gattc_write(self, conn_handle, value_handle, data, mode=0):
        from .client import Write

        def impl(h, v, d, mode=0):
            b = _buf(d)
            if _int(mode) not in (0, 1):
                raise self._err("EINVAL")
            if _int(mode) == 0:
                if not self._active:
                    raise self._err("ENODEV")
                c = self._conn(h)
                self._tx_buffer()
                self._att_send(c, bytes([G.WRITE_CMD]) + struct.pack("<H", _int(v)) + b[: c.mtu - 3])
                return None
            return self._client_start(h, Write(_int(v), b))

        return self._api_call("gattc_write", (conn_handle, value_handle, data, mode), {}, impl)

    def gattc_exchange_mtu(self, conn_handle):
        from .client import ExchangeMtu

        return self._api_call("gattc_exchange_mtu", (conn_handle,), {},
                              lambda h: self._client_start(h, ExchangeMtu()))

    # ================================================================ helpers for tests/tools
    def connections(self):
        """{handle: dict(role, peer_addr, peer_id, encrypted, authenticated, bonded, key_size, mtu)}
        (simulator introspection; not a MicroPython API)."""
        return {h: {"role": c.role, "peer_addr": c.peer_addr, "peer_id": c.peer_id, "encrypted": c.encrypted,
                    "authenticated": c.authenticated, "bonded": c.bonded, "key_size": c.key_size, "mtu": c.mtu}
                for h, c in self._conns.items()}


def _io_cap(io):
    # reserved values (>= 5) go out raw (see _smp_output); the engine takes only 0..4
    return io if io <= 4 else 3


def _int(v):
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if hasattr(v, "__index__"):
        return v.__index__()
    raise TypeError("can't convert %s to int" % type(v).__name__)


def _is_power_loss(e):
    return type(e).__name__ == "PowerLoss"
