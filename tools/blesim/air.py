"""The air and the link layers of all boards (the controller half of each ESP32).

The firmware model (`firmware.BLE`, the NimBLE host) talks to the air through a narrow,
HCI-like surface, so another transport (a broker on loopback) can stand in for it:

  host -> controller: set_advertising(board, AdvParams|None), set_scanning(board, ScanParams|None),
                      connect(board, own_addr, target, timeout, params, matcher), cancel_connect,
                      send(link, board, cid, payload, name), disconnect(link, board, reason),
                      start_encryption(link, ltk, ediv, rand, key_size)  [central],
                      ltk_reply(link, ltk|None)                          [peripheral]
  controller -> host (methods of board.ble): _ll_adv_report(addr_type, addr, adv_type, rssi, data),
                      _ll_connected(link, role), _ll_connect_failed(), _ll_disconnected(link, reason),
                      _ll_rx(link, cid, payload), _ll_ltk_request(link, ediv, rand),
                      _ll_encryption_changed(link, status, encrypted, key_size)

Timing: a PDU reaches the peer one connection interval after it is sent (30 ms by default,
NimBLE's initial interval for gap_connect); PDUs on a link stay in order. Advertising events
happen every advertising interval; a scanner hears an event when it falls in its scan window.
A board out of range (distance > `range_m`, `World.set_in_range(a, b, False)`, or powered off)
hears nothing; a link whose peer is unheard for the supervision timeout (2.56 s) drops with
HCI reason 0x08 on the side(s) still running. PDUs sent while out of range are delivered if the
link recovers before that (the link layer retransmits).

Addresses are (type, 6 bytes MSB-first). Encryption is modelled as state on the link: the
peripheral's host must answer the LTK request with the same key the central started with,
otherwise the link drops with 0x3D (MIC failure); a negative reply gives the central an
Encryption Change with status 0x06 (PIN or key missing).
"""

import math

__all__ = ["Air", "Link", "AdvParams", "ScanParams", "ConnParams"]

HCI_CONN_TIMEOUT = 0x08
HCI_REMOTE_USER_TERM = 0x13
HCI_LOCAL_HOST_TERM = 0x16
HCI_MIC_FAILURE = 0x3D
HCI_PIN_KEY_MISSING = 0x06
HCI_REMOTE_POWER_OFF = 0x15

ADV_IND = 0
ADV_DIRECT_IND = 1
ADV_SCAN_IND = 2
ADV_NONCONN_IND = 3
SCAN_RSP = 4


class AdvParams:
    __slots__ = ("interval", "adv_data", "resp_data", "connectable", "addr", "scannable")

    def __init__(self, interval, adv_data, resp_data, connectable, addr, scannable=True):
        self.interval = interval  # seconds
        self.adv_data = bytes(adv_data)
        self.resp_data = bytes(resp_data)
        self.connectable = connectable
        self.addr = addr  # (type, 6 bytes) the advertising address
        self.scannable = scannable  # the host's discoverable mode is not "non-discoverable"

    @property
    def adv_type(self):
        # NimBLE ble_gap_adv_type(): connectable -> ADV_IND; non-connectable -> ADV_SCAN_IND
        # unless the discoverable mode is NON (then ADV_NONCONN_IND), whatever the response data
        if self.connectable:
            return ADV_IND
        if self.scannable:
            return ADV_SCAN_IND
        return ADV_NONCONN_IND


class ScanParams:
    __slots__ = ("interval", "window", "active", "start", "addr")

    def __init__(self, interval, window, active, start, addr):
        self.interval = interval
        self.window = window
        self.active = active
        self.start = start
        self.addr = addr


class ConnParams:
    __slots__ = ("interval", "latency", "timeout")

    def __init__(self, interval=0.030, latency=0, timeout=2.56):
        self.interval = interval
        self.latency = latency
        self.timeout = timeout


class Link:
    """One connection. `central`/`peripheral` are Boards; `handles` maps board name -> handle;
    `addrs` maps board name -> the address that board uses on this link."""

    _next_id = 0

    def __init__(self, central, peripheral, c_handle, p_handle, c_addr, p_addr, params):
        Link._next_id += 1
        self.id = Link._next_id
        self.central = central
        self.peripheral = peripheral
        self.handles = {central.name: c_handle, peripheral.name: p_handle}
        self.addrs = {central.name: c_addr, peripheral.name: p_addr}
        self.boots = {central.name: central.boots, peripheral.name: peripheral.boots}
        self.params = params
        self.alive = True
        self.encrypted = False
        self.key_size = 0
        self.ltk = None
        self.pending_enc = None  # (ltk, ediv, rand, key_size) while the LTK request is out
        self.held = []  # PDUs waiting for the peer to come back in range
        self.tx = {}  # board name -> PDUs it sent on this link that have not reached the peer yet
        self.lost_since = None
        self.sup_timer = None

    def peer(self, board):
        return self.peripheral if board is self.central else self.central

    def handle(self, board):
        return self.handles[board.name]

    def role(self, board):
        return "central" if board is self.central else "peripheral"

    def up(self, board):
        """The board end of this link is still running the firmware that made it."""
        return self.alive and board.powered and board.boots == self.boots[board.name]

    def __repr__(self):
        return "<Link %d %s->%s>" % (self.id, self.central.name, self.peripheral.name)


class Air:
    def __init__(self, world, range_m=50.0):
        self.world = world
        self.range_m = range_m
        self.boards = []
        self.adv = {}  # board name -> AdvParams
        self._adv_timers = {}
        self.scan = {}  # board name -> ScanParams
        self.initiators = {}  # board name -> (own_addr, target, matcher, params, timer)
        self.links = []
        self._override = {}  # frozenset(names) -> bool
        self._rng = None

    # ------------------------------------------------------------ environment
    def attach(self, board):
        if board not in self.boards:
            self.boards.append(board)

    def _trace(self, board, name, peer=None, conn=None, args=None, text=""):
        self.world.trace.add("link", board.name, name, peer=peer.name if peer else None, conn=conn, args=args,
                             text=text)

    def reachable(self, a, b):
        if not (a.powered and b.powered):
            return False
        o = self._override.get(frozenset((a.name, b.name)))
        if o is not None:
            return o
        return self.distance(a, b) <= self.range_m

    def distance(self, a, b):
        return math.hypot(a.pos[0] - b.pos[0], a.pos[1] - b.pos[1])

    def rssi(self, a, b):
        d = max(self.distance(a, b), 0.1)
        if self._rng is None:
            import random

            self._rng = random.Random("rssi/%s" % self.world.seed)
        # -40 dBm at 1 m, free space, +-2 dB of noise; int8 as the controller reports it
        return max(-127, min(20, int(round(-40 - 20 * math.log10(d) + self._rng.uniform(-2, 2)))))

    def set_in_range(self, a, b, in_range):
        self._override[frozenset((a.name, b.name))] = bool(in_range)
        self._trace(a, "in_range" if in_range else "out_of_range", peer=b)
        self.positions_changed()

    def positions_changed(self):
        for link in list(self.links):
            self._check_link(link)

    def _check_link(self, link):
        if not link.alive:
            return
        ok = self.reachable(link.central, link.peripheral)
        if ok:
            if link.lost_since is not None:
                link.lost_since = None
                if link.sup_timer:
                    link.sup_timer.cancel()
                    link.sup_timer = None
                held, link.held = link.held, []
                for sender, cid, payload in held:
                    self._deliver_later(link, sender, cid, payload)  # still counted in link.tx
        elif link.lost_since is None:
            link.lost_since = self.world.now
            link.sup_timer = self.world.schedule(link.params.timeout, self._supervision, link)

    def _supervision(self, link):
        link.sup_timer = None
        if not link.alive or link.lost_since is None:
            return
        self._drop(link, HCI_CONN_TIMEOUT, HCI_CONN_TIMEOUT)

    # ------------------------------------------------------------ board up/down
    def board_down(self, board):
        """The board stops (reset/power off): its radio goes silent; its RAM is gone, so it
        gets no events. Peers lose their links by supervision timeout."""
        self.set_advertising(board, None)
        self.scan.pop(board.name, None)
        ini = self.initiators.pop(board.name, None)
        if ini:
            ini[4].cancel()
        for link in list(self.links):
            if board in (link.central, link.peripheral) and link.alive:
                link.boots[board.name] = -1  # this end no longer exists
                if link.lost_since is None:
                    link.lost_since = self.world.now
                    link.sup_timer = self.world.schedule(link.params.timeout, self._supervision, link)

    def board_up(self, board):
        pass

    # ------------------------------------------------------------ advertising / scanning
    def set_advertising(self, board, params):
        t = self._adv_timers.pop(board.name, None)
        if t:
            t.cancel()
        if params is None:
            if self.adv.pop(board.name, None) is not None:
                self._trace(board, "adv_stop")
            return
        self.adv[board.name] = params
        self._trace(board, "adv_start", args={"interval": params.interval, "connectable": params.connectable,
                                               "addr_type": params.addr[0], "addr": params.addr[1],
                                               "adv_data": params.adv_data, "resp_data": params.resp_data})
        self._adv_timers[board.name] = self.world.schedule(0.002, self._adv_event, board, params)

    def _adv_event(self, board, params):
        if self.adv.get(board.name) is not params or not board.powered:
            return
        self._adv_timers[board.name] = self.world.schedule(params.interval, self._adv_event, board, params)
        now = self.world.now
        # initiators first: a CONNECT_IND ends the advertising event
        if params.connectable:
            for name, ini in list(self.initiators.items()):
                central = self.world.boards[name]
                if central is board or not self.reachable(board, central):
                    continue
                own_addr, target, matcher, cparams, timer = ini
                if matcher(params.addr):
                    timer.cancel()
                    del self.initiators[name]
                    self._establish(central, board, own_addr, params.addr, cparams)
                    return
        for name, sp in list(self.scan.items()):
            scanner = self.world.boards[name]
            if scanner is board or not self.reachable(board, scanner):
                continue
            phase = (now - sp.start) % sp.interval if sp.interval > 0 else 0.0
            if phase > sp.window + 1e-9:
                continue
            rssi = self.rssi(board, scanner)
            scanner.ble._ll_adv_report(params.addr[0], params.addr[1], params.adv_type, rssi, params.adv_data)
            # ADV_IND and ADV_SCAN_IND answer a SCAN_REQ (with empty data if none was set)
            if sp.active and params.adv_type in (ADV_IND, ADV_SCAN_IND) and self.scan.get(name) is sp:
                scanner.ble._ll_adv_report(params.addr[0], params.addr[1], SCAN_RSP, rssi, params.resp_data)

    def set_scanning(self, board, params):
        if params is None:
            if self.scan.pop(board.name, None) is not None:
                self._trace(board, "scan_stop")
            return
        self.scan[board.name] = params
        self._trace(board, "scan_start", args={"interval": params.interval, "window": params.window,
                                                "active": params.active})

    # ------------------------------------------------------------ connections
    def connect(self, board, own_addr, target, timeout, params, matcher):
        """Starts initiating. matcher(adv_addr) -> True for the advertiser to connect to
        (the host decides: exact address, or an RPA that resolves to the target identity)."""
        timer = self.world.schedule(timeout, self._connect_timeout, board) if timeout else \
            self.world.schedule(1e9, self._connect_timeout, board)
        self.initiators[board.name] = (own_addr, target, matcher, params, timer)
        self._trace(board, "connect_start", args={"addr_type": target[0], "addr": target[1], "timeout": timeout})

    def cancel_connect(self, board):
        ini = self.initiators.pop(board.name, None)
        if ini is None:
            return False
        ini[4].cancel()
        self._trace(board, "connect_cancel")
        return True

    def _connect_timeout(self, board):
        if self.initiators.pop(board.name, None) is None:
            return
        self._trace(board, "connect_failed", args={"reason": "timeout"})
        board.ble._ll_connect_failed()

    def _alloc_handle(self, board, first):
        used = set()
        for link in self.links:
            if link.alive and board.name in link.handles and link.up(board):
                used.add(link.handles[board.name])
        h = first
        while h in used:
            h += 1
        return h

    def _establish(self, central, peripheral, c_addr, p_addr, params):
        c_handle = self._alloc_handle(central, central.ble._profile.first_conn_handle)
        p_handle = self._alloc_handle(peripheral, peripheral.ble._profile.first_conn_handle)
        link = Link(central, peripheral, c_handle, p_handle, c_addr, p_addr, params)
        self.links.append(link)
        # the advertiser stops advertising when it gets connected (NimBLE does the same)
        self.set_advertising(peripheral, None)
        self._trace(central, "connect", peer=peripheral, conn=c_handle,
                    args={"role": "central", "peer_addr_type": p_addr[0], "peer_addr": p_addr[1],
                          "interval": params.interval, "timeout": params.timeout})
        self._trace(peripheral, "connect", peer=central, conn=p_handle,
                    args={"role": "peripheral", "peer_addr_type": c_addr[0], "peer_addr": c_addr[1],
                          "interval": params.interval})
        # CONNECT_IND: both hosts learn of the connection
        self.world.schedule(0.00125, self._notify_connected, link)
        return link

    def _notify_connected(self, link):
        if link.up(link.peripheral):
            link.peripheral.ble._ll_connected(link, "peripheral")
        if link.up(link.central):
            link.central.ble._ll_connected(link, "central")

    def send(self, link, board, cid, payload, name="", text=""):
        """Queues one L2CAP PDU (cid 4 ATT, 6 SMP) from `board` to its peer on `link`."""
        peer = link.peer(board)
        layer = {4: "att", 6: "smp"}.get(cid, "l2cap")
        self.world.trace.add("pdu", board.name, name or ("%s_%02X" % (layer.upper(), payload[0] if payload else 0)),
                             peer=peer.name, conn=link.handle(board),
                             args={"cid": cid, "layer": layer, "hex": bytes(payload), "enc": int(link.encrypted)},
                             text=text)
        if not link.alive:
            return False
        link.tx[board.name] = link.tx.get(board.name, 0) + 1
        if not self.reachable(board, peer):
            link.held.append((board, cid, bytes(payload)))
            self._check_link(link)
            return True
        self._deliver_later(link, board, cid, bytes(payload))
        return True

    def _deliver_later(self, link, sender, cid, payload):
        self.world.schedule(link.params.interval, self._deliver, link, sender, cid, payload)

    def tx_pending(self, board):
        """PDUs `board` has sent that have not reached their peer (each holds a host buffer)."""
        return sum(link.tx.get(board.name, 0) for link in self.links if link.alive)

    def _deliver(self, link, sender, cid, payload):
        peer = link.peer(sender)
        if not link.alive:
            return
        if not self.reachable(sender, peer):
            link.held.append((sender, cid, payload))  # still counted in link.tx
            self._check_link(link)
            return
        link.tx[sender.name] -= 1
        if link.up(peer):
            peer.ble._ll_rx(link, cid, payload)

    def disconnect(self, link, board, reason=HCI_REMOTE_USER_TERM):
        """The host of `board` terminates the link (LL_TERMINATE_IND with `reason`)."""
        if not link.alive:
            return False
        peer = link.peer(board)
        self._trace(board, "terminate", peer=peer, conn=link.handle(board), args={"reason": reason})
        link.alive = False
        if link.sup_timer:
            link.sup_timer.cancel()
        self.world.schedule(link.params.interval, self._disconnected, link, board, peer, reason)
        return True

    def _disconnected(self, link, board, peer, reason):
        self._remove(link)
        if self._end_up(link, peer):
            if self.reachable(board, peer):
                self._trace(peer, "disconnect", peer=board, conn=link.handle(peer), args={"reason": reason})
                peer.ble._ll_disconnected(link, reason)
            else:
                self.world.schedule(link.params.timeout, self._late_drop, link, peer)
        if self._end_up(link, board):
            self._trace(board, "disconnect", peer=peer, conn=link.handle(board), args={"reason": HCI_LOCAL_HOST_TERM})
            board.ble._ll_disconnected(link, HCI_LOCAL_HOST_TERM)

    def _late_drop(self, link, board):
        if self._end_up(link, board):
            self._trace(board, "disconnect", peer=link.peer(board), conn=link.handle(board),
                        args={"reason": HCI_CONN_TIMEOUT})
            board.ble._ll_disconnected(link, HCI_CONN_TIMEOUT)

    @staticmethod
    def _end_up(link, board):
        return board.powered and board.boots == link.boots[board.name]

    def _remove(self, link):
        if link in self.links:
            self.links.remove(link)

    def _drop(self, link, reason_c, reason_p):
        link.alive = False
        self._remove(link)
        for b, reason in ((link.central, reason_c), (link.peripheral, reason_p)):
            if self._end_up(link, b):
                self._trace(b, "disconnect", peer=link.peer(b), conn=link.handle(b), args={"reason": reason})
                b.ble._ll_disconnected(link, reason)

    # ------------------------------------------------------------ encryption
    def start_encryption(self, link, ltk, ediv, rand, key_size):
        """Central's LE Start Encryption: LL_ENC_REQ to the peripheral."""
        if not link.alive:
            return False
        link.pending_enc = (bytes(ltk), ediv, rand, key_size)
        self._trace(link.central, "enc_start", peer=link.peripheral, conn=link.handle(link.central),
                    args={"ediv": ediv, "rand": rand, "key_size": key_size, "ltk": bytes(ltk)})
        self.world.schedule(link.params.interval, self._ltk_request, link, ediv, rand)
        return True

    def _ltk_request(self, link, ediv, rand):
        if not link.alive or not link.up(link.peripheral):
            return
        self._trace(link.peripheral, "ltk_request", peer=link.central, conn=link.handle(link.peripheral),
                    args={"ediv": ediv, "rand": rand})
        link.peripheral.ble._ll_ltk_request(link, ediv, rand)

    def ltk_reply(self, link, ltk):
        """Peripheral host's LTK reply (ltk None = negative reply)."""
        if not link.alive or link.pending_enc is None:
            return
        self._trace(link.peripheral, "ltk_reply", peer=link.central, conn=link.handle(link.peripheral),
                    args={"found": ltk is not None})
        want, _ediv, _rand, key_size = link.pending_enc
        link.pending_enc = None
        if ltk is None:
            self.world.schedule(link.params.interval, self._enc_change, link, link.central, HCI_PIN_KEY_MISSING,
                                link.encrypted, link.key_size)
            return
        if bytes(ltk) != want:
            # both sides encrypt with different keys: the first packet fails its MIC check
            link.alive = False
            self.world.schedule(2 * link.params.interval, self._mic_failure, link)
            return
        link.encrypted = True
        link.key_size = key_size
        link.ltk = want
        # LL_START_ENC_REQ/RSP: the peripheral's host learns first; the central's
        # Encryption Change travels on the same in-order channel as the peripheral's next
        # PDUs, so it is always delivered before them
        self.world.schedule(link.params.interval, self._enc_change, link, link.peripheral, 0, True, key_size)

    def _mic_failure(self, link):
        link.alive = True
        self._drop(link, HCI_MIC_FAILURE, HCI_MIC_FAILURE)

    def _enc_change(self, link, board, status, encrypted, key_size):
        if board is link.peripheral and status == 0 and link.alive:
            self.world.schedule(link.params.interval, self._enc_change, link, link.central, 0, True, key_size)
        if not link.alive or not link.up(board):
            return
        self._trace(board, "enc_change", peer=link.peer(board), conn=link.handle(board),
                    args={"status": status, "encrypted": int(bool(encrypted)), "key_size": key_size})
        board.ble._ll_encryption_changed(link, status, bool(encrypted), key_size)
