"""The radios of the real-host tier: one Bumble virtual controller per board, on one virtual link.

    python -m tools.realhost.radios N [--btsnoop DIR]     N controllers; prints their ptys, runs until Ctrl-C

Each board (a MicroPython unix process built with NimBLE, `MICROPYBTUART=<pty>`) talks HCI (H4)
over its own pty to a `Radio`, a subclass of Bumble's `Controller` (Bumble itself unmodified).
The radios run in one asyncio loop on a thread of the tool that owns them (`Radios`), so
nothing outlives the tool. What the subclasses change, each to behave like a board's controller
(reference/real-nimble.md):

- ACL data leaves from the address the sender's connection uses (Bumble's link sends LE data
  from the sender's random address; NimBLE connects with the public one), and every radio
  has its own deterministic public address (bonds survive a restart).
- The extended and periodic advertising feature bits are clear: MicroPython's NimBLE scans
  with the legacy commands, and Bumble would answer them with extended reports.
- HCI Reset drops the radio's connections (the peer sees reason 0x08, as for a lost link)
  and stops advertising and scanning; so does the board's process going away.
- Link PDUs (ACL and LL control) reach the peer a few ms late, in order, as one connection
  event later would: with zero latency the peer's key distribution can overtake NimBLE's
  Encryption Change and NimBLE fails the pairing (0x08).
- Legacy advertising reports carry the PDU type: a non-connectable `gap_advertise` is
  ADV_SCAN_IND (2) to a passive scanner, as on a board; only an active scan gets SCAN_RSP
  (4) with the scan response data.
- A pty whose board process exits is noticed (the read side hangs up), its stale bytes are
  dropped and the H4 parser restarts, so the next process on the same pty starts clean.

`Radios.phone(...)` adds a Bumble `Device` on the same link (a phone: its IO capability,
bonding and SC on or off) for flows where an ESP32 cannot be the central that gets prompts.
"""

import argparse
import asyncio
import dataclasses
import errno
import fcntl
import logging
import os
import pty
import signal
import struct
import sys
import termios
import threading
import time
import tty

from bumble import hci, ll
from bumble.controller import Controller, LegacyAdvertiser
from bumble.link import LocalLink
from bumble.snoop import BtSnooper, Snooper
from bumble.transport.common import PacketParser

LINK_DELAY_S = 0.004  # one connection event, roughly: enough to keep Encryption Change first
_BARRIER_EVENTS = (b"\x04\x08", b"\x04\x30")  # HCI Encryption Change, Encryption Key Refresh Complete
_BARRIER_S = 0.005  # > the host's 1 ms UART poll, and time for the pty to hand the bytes over
POLL_S = 0.02  # how often a pty without a board is checked for a new one
REASON_LOST = 0x08  # HCI "Connection Timeout": what a peer sees when a board stops answering
_ADV = hci.HCI_LE_Set_Advertising_Parameters_Command.AdvertisingType
_REPORT = hci.HCI_LE_Advertising_Report_Event.EventType

log = logging.getLogger("blesmp.radios")


def _colon(addr):
    h = addr.replace(":", "")
    return ":".join(h[i:i + 2] for i in range(0, 12, 2)).upper()


def board_address(i):
    """The public address of board i: distinct and the same at every run."""
    return "A4:CF:12:52:00:%02X" % (i + 1)


@dataclasses.dataclass
class LegacyAdv(ll.AdvertisingPdu):
    """A legacy advertising PDU of any type (Bumble's link only models ADV_IND)."""

    advertiser_address: hci.Address
    data: bytes
    adv_type: int
    scan_response: bytes


class _Advertiser(LegacyAdvertiser):
    def send_advertising_data(self):
        if not self.enabled:
            return
        t = self.advertising_type
        if t in (_ADV.ADV_DIRECT_IND, _ADV.ADV_DIRECT_IND_LOW_DUTY):
            return  # directed advertising is not modelled: nobody sees it
        self.controller.send_advertising_pdu(
            LegacyAdv(advertiser_address=self.address, data=bytes(self.advertising_data), adv_type=int(t),
                      scan_response=bytes(self.scan_response_data)))


class Radio(Controller):
    """One board's controller (see the module docstring for what differs from Bumble's)."""

    def __init__(self, name, link, public_address, tap=None):
        super().__init__(name, link=link, public_address=public_address)
        self.le_features = self.le_features & ~(hci.LeFeatureMask.LE_EXTENDED_ADVERTISING
                                                | hci.LeFeatureMask.LE_PERIODIC_ADVERTISING)
        self.le_legacy_advertiser = _Advertiser(self)
        self.tap = tap  # tap(radio, direction, packet_bytes) sees every HCI packet

    # -- HCI to and from the host
    def on_packet(self, packet):
        if self.tap:
            self.tap(self, Snooper.Direction.HOST_TO_CONTROLLER, packet)
        super().on_packet(packet)

    def send_hci_packet(self, packet):
        if self.tap:
            self.tap(self, Snooper.Direction.CONTROLLER_TO_HOST, bytes(packet))
        super().send_hci_packet(packet)

    def on_hci_reset_command(self, command):
        self.power_off()
        return super().on_hci_reset_command(command)

    def power_off(self):
        """The controller forgets its links (each peer sees 0x08) and stops advertising and scanning."""
        for conn in list(self.le_connections.values()):
            conn.send_ll_control_pdu(ll.TerminateInd(REASON_LOST))
            del self.le_connections[conn.peer_address]
        self.le_legacy_advertiser.stop()
        for s in self.advertising_sets.values():
            s.stop()
        self.le_scan_enable = False
        self.pending_le_connection = None

    def on_link_acl_data(self, sender_address, transport, data):
        # A controller hands the host at most its ACL buffer size per packet (Bumble sends the
        # whole L2CAP PDU in one, which NimBLE's host buffers cannot take beyond 27 + headers).
        conn = self.le_connections.get(sender_address)
        if conn is None:
            return
        size = self.le_acl_data_packet_length
        for i in range(0, max(len(data), 1), size):
            chunk = data[i:i + size]
            self.send_hci_packet(hci.HCI_AclDataPacket(conn.handle, 2 if i == 0 else 1, 0, len(chunk), chunk))

    # -- advertising as a board's controller reports it
    def on_ll_advertising_pdu(self, packet):
        if isinstance(packet, LegacyAdv):
            self._on_legacy_adv(packet)
        else:
            super().on_ll_advertising_pdu(packet)

    def on_le_connect_ind(self, packet):
        adv = self.le_legacy_advertiser
        if adv.enabled and adv.address == packet.advertiser_address and adv.advertising_type != _ADV.ADV_IND:
            return  # not connectable
        super().on_le_connect_ind(packet)
        _opened(self.le_connections.get(packet.initiator_address), packet.interval)

    def create_le_connection(self, peer_address):
        pending = self.pending_le_connection
        super().create_le_connection(peer_address)
        interval = getattr(pending, "connection_interval_min", None) or pending.connection_interval_mins[0]
        _opened(self.le_connections.get(pending.peer_address), interval)

    def _on_legacy_adv(self, pdu):
        if self.le_scan_enable:
            kind = {_ADV.ADV_IND: _REPORT.ADV_IND, _ADV.ADV_SCAN_IND: _REPORT.ADV_SCAN_IND}.get(
                pdu.adv_type, _REPORT.ADV_NONCONN_IND)
            self._report(kind, pdu.advertiser_address, pdu.data)
            if self.le_scan_type == 1 and pdu.adv_type in (_ADV.ADV_IND, _ADV.ADV_SCAN_IND):
                self._report(_REPORT.SCAN_RSP, pdu.advertiser_address, pdu.scan_response)
        pending = self.pending_le_connection
        if pdu.adv_type == _ADV.ADV_IND and pending and pending.peer_address == pdu.advertiser_address:
            self.create_le_connection(pdu.advertiser_address)

    def _report(self, kind, address, data):
        self.send_hci_packet(hci.HCI_LE_Advertising_Report_Event([hci.HCI_LE_Advertising_Report_Event.Report(
            event_type=kind, address_type=address.address_type, address=address, data=data, rssi=-50)]))


def _opened(conn, interval):
    """Notes when a connection opened and its interval: its first PDU goes in a connection event."""
    if conn is not None:
        conn.opened = time.monotonic()
        conn.interval_s = max(interval, 6) * 0.00125


class Link(LocalLink):
    """Bumble's LocalLink with the sender's connection address on ACL data and a small, ordered
    delivery delay for everything sent on a connection. `tap(kind, sender, receiver, payload)`
    sees each PDU as it is sent ("acl" with the L2CAP PDU, "ll" with the LL control PDU)."""

    def __init__(self, delay=LINK_DELAY_S, tap=None):
        super().__init__()
        self.delay = delay
        self.tap = tap
        self._queue = None

    def _deliver(self, fn, conn=None):
        if self._queue is None:
            self._queue = asyncio.Queue()
            asyncio.get_running_loop().create_task(self._run())
        due = time.monotonic() + self.delay
        if conn is not None and hasattr(conn, "opened"):
            # nothing crosses a new link before its first connection event, one interval in: a
            # peer's first request must not beat the host's own connection IRQ (ble_l2cap)
            due = max(due, conn.opened + conn.interval_s)
        self._queue.put_nowait((due, fn))

    async def _run(self):
        while True:
            due, fn = await self._queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                fn()
            except Exception as e:  # a PDU for a link that went meanwhile: as on air, lost
                log.debug("link delivery dropped: %r", e)

    def send_acl_data(self, sender_controller, destination_address, transport, data):
        conn = sender_controller.le_connections.get(destination_address)
        if conn is None:
            return
        source = conn.self_address
        if self.tap:
            self.tap("acl", sender_controller, destination_address, data)

        def deliver():
            dest = self.find_le_controller(destination_address)
            if dest is not None:
                dest.on_link_acl_data(source, transport, data)

        self._deliver(deliver, conn)

    def send_ll_control_pdu(self, sender_address, receiver_address, packet):
        if self.tap:
            self.tap("ll", sender_address, receiver_address, packet)

        def deliver():
            dest = self.find_le_controller(receiver_address)
            if dest is not None:
                dest.on_ll_control_pdu(sender_address, packet)

        self._deliver(deliver)


class _Port:
    """A pty for one radio. The harness keeps only the primary side open: when the board's
    process closes the replica, reading fails with EIO (the board is gone) and the port waits
    for the next process, polling; stale bytes and a half-read H4 packet are dropped."""

    def __init__(self, radio, on_gone):
        self.radio = radio
        self.on_gone = on_gone
        self.primary, replica = pty.openpty()
        self.path = os.ttyname(replica)
        tty.setraw(replica)
        os.close(replica)
        os.set_blocking(self.primary, False)
        self.parser = PacketParser(radio)
        self.radio.host = self
        self.up = False
        self.pending = bytearray()
        self.held = None  # packets waiting behind an Encryption Change (see on_packet)
        self.loop = asyncio.get_running_loop()
        self.closed = False
        self._poll()

    def _poll(self):
        if self.closed:
            return
        try:
            data = os.read(self.primary, 4096)
        except BlockingIOError:
            data = b""  # a process has the replica open: it is up
        except OSError as e:
            if e.errno != errno.EIO:
                raise
            self.loop.call_later(POLL_S, self._poll)
            return
        self.up = True
        self.loop.add_reader(self.primary, self._readable)
        if data:
            self.parser.feed_data(data)

    def _readable(self):
        try:
            data = os.read(self.primary, 4096)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno != errno.EIO:
                raise
            data = b""
        if not data:
            self._hangup()
            return
        self.parser.feed_data(data)

    def _hangup(self):
        self.loop.remove_reader(self.primary)
        self._drop_writer()
        self.up = False
        self.pending.clear()
        self.held = None
        self.parser.reset()
        try:  # what the controller wrote that the dead process never read
            termios.tcflush(self.primary, termios.TCIOFLUSH)
        except termios.error:
            pass
        self.on_gone(self)
        self.loop.call_later(POLL_S, self._poll)

    # the controller's packet sink
    def on_packet(self, packet):
        if not self.up or self.closed:
            return  # no board: nothing listens (and nothing must be left for the next one)
        if self.held is not None:
            self.held.append(packet)
            return
        self.pending += packet
        self._flush()
        if packet[:2] in _BARRIER_EVENTS:
            # What follows an Encryption Change waits until the host has read the event and a
            # poll has passed: on air the peer's next PDU comes a connection event later, and
            # NimBLE fails a pairing (0x08) whose key distribution it reads in the same poll.
            self.held = []
            self.loop.call_later(_BARRIER_S, self._release)

    def _unread(self):
        """Bytes written to the board that its process has not read yet."""
        if self.pending:
            return len(self.pending)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError:
            return 0
        try:
            return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
        except OSError:
            return 0
        finally:
            os.close(fd)

    def _release(self):
        if self.held is None or self.closed:
            return
        if self.up and self._unread():
            self.loop.call_later(_BARRIER_S, self._release)
            return
        held, self.held = self.held, None
        for i, packet in enumerate(held):
            self.on_packet(packet)
            if self.held is not None:  # another barrier: the rest waits behind it
                self.held.extend(held[i + 1:])
                return

    def _flush(self):
        try:
            n = os.write(self.primary, self.pending)
        except BlockingIOError:
            n = 0
        except OSError:
            self.pending.clear()
            return
        del self.pending[:n]
        if self.pending:
            self.loop.add_writer(self.primary, self._flush)
        else:
            self._drop_writer()

    def _drop_writer(self):
        try:
            self.loop.remove_writer(self.primary)
        except (ValueError, OSError):
            pass

    def close(self):
        self.closed = True
        self.loop.remove_reader(self.primary)
        self._drop_writer()
        os.close(self.primary)


class Radios:
    """N radios on one link, each on its own pty, run by an asyncio loop on a thread.

        with Radios(["lock", "fob"], btsnoop=dir) as r:
            env["MICROPYBTUART"] = r.pty("lock")

    `names`: a list of board names, or a count (boards "0", "1", ...); board i gets the public
    address `board_address(i)` unless `addresses` names others. `btsnoop`: a folder where each
    board's HCI traffic goes as <name>.btsnoop. `on_event(name, text)` hears a board's process
    going away. `tap`: see `Link`."""

    def __init__(self, names=(), btsnoop=None, addresses=None, delay=LINK_DELAY_S, tap=None, on_event=None,
                 hci_tap=None):
        self.names = [str(i) for i in range(names)] if isinstance(names, int) else list(names)
        self.addresses = list(addresses) if addresses else [board_address(i) for i in range(len(self.names))]
        self.btsnoop = btsnoop
        self.delay = delay
        self.link_tap = tap
        self.hci_tap = hci_tap  # hci_tap(name, direction, packet) sees every board's HCI traffic
        self.on_event = on_event
        self.loop = None
        self.thread = None
        self.radios = {}
        self.ports = {}
        self.phones = []
        self._snoop_files = []
        self._error = None

    # -- life cycle
    def start(self):
        ready = threading.Event()
        self.thread = threading.Thread(target=self._main, args=(ready,), name="radios", daemon=True)
        self.thread.start()
        ready.wait()
        if self._error:
            raise self._error
        return self

    def _main(self, ready):
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._setup())
        except Exception as e:
            self._error = e
            ready.set()
            return
        ready.set()
        self.loop.run_forever()
        tasks = asyncio.all_tasks(self.loop)
        for t in tasks:
            t.cancel()
        self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        for p in self.ports.values():
            p.close()
        for f in self._snoop_files:
            f.close()
        self.loop.close()

    async def _setup(self):
        self.loop.set_exception_handler(self._internal_error)
        if not os.environ.get("BLESMP_RADIOS_DEBUG"):
            # Bumble's controller logs what a radio sees as normal (a PDU for a link just closed)
            # (a phone's failed pairing is a warning there too: the tools report outcomes themselves)
            logging.getLogger("bumble").setLevel(logging.CRITICAL)
        self.link = Link(self.delay, self.link_tap)
        if self.btsnoop:
            os.makedirs(self.btsnoop, exist_ok=True)
        for name, addr in zip(self.names, self.addresses):
            self._add(name, addr, True)

    def _radio(self, name, addr):
        taps = []
        if self.btsnoop:
            f = open(os.path.join(self.btsnoop, "%s.btsnoop" % name), "wb")
            self._snoop_files.append(f)
            taps.append((lambda s: lambda radio, d, pkt: s.snoop(pkt, d))(BtSnooper(f)))
        if self.hci_tap:
            taps.append(lambda radio, d, pkt: self.hci_tap(radio.name, d, pkt))

        def tap(radio, d, pkt):
            for t in taps:
                t(radio, d, pkt)
        radio = Radio(name, self.link, hci.Address(addr, hci.Address.PUBLIC_DEVICE_ADDRESS), tap=tap if taps else None)
        self.radios[name] = radio
        return radio

    def _add(self, name, addr, listed=False):
        if not listed:
            self.names.append(name)
            self.addresses.append(addr)
        self.ports[name] = _Port(self._radio(name, addr), self._gone)

    def add(self, name, address=None):
        """Adds a board's radio (its own pty); returns the pty. `address`: MSB-first hex or
        colon form; default board_address(index)."""
        name = str(name)
        if name in self.radios:
            raise ValueError("a radio named %r exists" % name)
        addr = _colon(address) if address else board_address(len(self.names))
        self.call(self._add, name, addr)
        return self.pty(name)

    def controller(self, name, address):
        """A radio without a pty, for an in-process Bumble host (a phone)."""
        return self.call(self._radio_only, str(name), _colon(address))

    def _radio_only(self, name, addr):
        self.names.append(name)
        self.addresses.append(addr)
        return self._radio(name, addr)

    def _internal_error(self, loop, context):
        e = context.get("exception")
        sys.stderr.write("radios: internal error: %s\n" % (repr(e) if e else context.get("message")))

    def _gone(self, port):
        port.radio.power_off()
        if self.on_event:
            self.on_event(port.radio.name, "its process closed the HCI pty (board off)")

    def close(self):
        if self.loop is None or self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # -- queries and actions (from any thread)
    def pty(self, name):
        return self.ports[str(name)].path

    def address(self, name):
        return self.addresses[self.names.index(str(name))]

    def call(self, fn, *args):
        """Runs fn(*args) on the radios' loop; returns its result (a coroutine is awaited)."""
        async def run():
            r = fn(*args)
            if asyncio.iscoroutine(r):
                r = await r
            return r
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result()

    def wait_down(self, name, timeout=5.0):
        """Waits until the board's process has let go of its pty (True) or `timeout` passes."""
        end = time.monotonic() + timeout
        while self.ports[str(name)].up and time.monotonic() < end:
            time.sleep(POLL_S)
        return not self.ports[str(name)].up


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tools.realhost.radios",
                                 description="Virtual controllers for real-host boards: one pty each, one link.")
    ap.add_argument("count", type=int, help="how many boards")
    ap.add_argument("--btsnoop", metavar="DIR", help="write each board's HCI traffic to DIR/<n>.btsnoop")
    a = ap.parse_args(argv)
    if a.count < 1:
        ap.error("count must be at least 1")
    events = lambda name, text: print("board %s: %s" % (name, text), flush=True)  # noqa: E731

    def stop(signum, frame):
        raise KeyboardInterrupt

    # Ctrl-C or a plain kill stops the radios cleanly (also where a parent left SIGINT ignored)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    r = Radios(a.count, btsnoop=a.btsnoop, on_event=events)
    try:
        r.start()
        for n in r.names:
            print("board %s: MICROPYBTUART=%s  (public address %s)" % (n, r.pty(n), r.address(n)), flush=True)
        print("Ctrl-C stops the radios.", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        r.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
