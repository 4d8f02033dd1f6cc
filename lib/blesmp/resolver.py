"""Resolvable private addresses (Bluetooth Core Vol 6 Part B 1.3.2.2, Vol 3 Part H 2.2.2).

Phones and tags advertise and connect with resolvable private addresses (RPAs)
that change every few minutes. An RPA is ``prand || hash`` where the two top
bits of prand are ``01`` and ``hash = ah(IRK, prand)``; whoever holds the IRK the
peer distributed when bonding can tell that the address is that peer's.

Addresses are 6 bytes, most significant octet first, as MicroPython's IRQs give
them: ``addr[0]`` is the most significant octet, ``prand = addr[0:3]``,
``hash = addr[3:6]``. IRKs are 16 bytes MSB-first (the order of ``crypto.ah`` and
of the bond store).

API::

    r = Resolver(store)              # follows store.subscribe(); or Resolver()
    r.resolve(addr_type, addr)       # -> Bond or None (only RPAs run AES)
    r.identify(addr_type, addr)      # -> Bond or None for any address: an RPA is
                                     #    resolved, a public/static address is
                                     #    matched against the identity addresses
    r.set_bonds(bonds)               # without a store: any objects with
                                     #    addr_type, addr, irk attributes
    r.invalidate()                   # forget cached results
    len(r)                           # IRKs in use
    generate(irk) / Resolver.generate(irk)   # fresh RPA (6 bytes MSB-first)
    kind(addr_type, addr)            # PUBLIC, STATIC, RPA, NRPA or INVALID
    ScanFilter(r, on_result, bonded_only=True).irq(event, data)

The resolver follows the bond store (``blesmp.store.BondStore`` or any object
with ``bonds()`` and ``subscribe(cb)``): every ``added``/``replaced``/
``removed``/``cleared`` event rebuilds the IRK list from ``store.bonds()``
(cipher objects of IRKs still present are kept) and drops the cache; other
events (``refused``) are ignored. ``resolve``/``identify`` return the Bond
objects of the latest ``store.bonds()`` call. Bonds without an IRK, or with
the all-zero IRK (a peer that has none; it would "resolve" addresses anyone
can forge), are matched by identity address only. If two bonds carry the same
IRK, the first in ``store.bonds()`` wins.

Hot path: one ``cryptolib.aes(irk, 1)`` object per IRK, built once; its bound
``encrypt`` runs in place of ``ah`` on two preallocated 16-byte buffers; the
padding, the hash comparison and the loop over IRKs are the ``rpa_find``
kernel, and ``resolve``/``identify`` themselves are the ``rpa_resolve``/
``rpa_identify`` kernels (viper, or the pure fallback of the same names in
``_pure``). Results
(hits and misses) go into a 4-way set-associative cache of ``cache_size``
recent RPAs (a bytearray plus a list; 0 disables it). A call allocates nothing
once the resolver is built. The state that a call reads (IRK list, bonds,
cache) is swapped as one tuple when bonds change, so a store event arriving
between two calls (another thread, the IRQ handler) never mixes old and new.
With the pure fallback a resolve that is interrupted by another thread's
resolve may share the scratch buffers; run resolution from one context there.

The firmware resolves RPAs itself for connections when the peer IRKs reached
its resolving list at ``active(True)``, and then reports identity addresses in
``_IRQ_CENTRAL_CONNECT``/``_IRQ_PERIPHERAL_CONNECT``; it tells Python nothing for
scan results, nor for connections when the IRQ handler was installed late.
``identify`` covers all of these.

Scan helper: ``ScanFilter(resolver, on_result, bonded_only=True)``; call its
``irq(event, data)`` from the BLE IRQ handler (it returns True for
``_IRQ_SCAN_RESULT`` (5), whose data is ``(addr_type, addr, adv_type, rssi,
adv_data)``, False for every other event). It calls
``on_result(bond, addr_type, addr, adv_type, rssi, adv_data)`` for bonded peers
(``bond.addr_type``/``bond.addr`` is the identity), and with ``bond=None`` for
the others when ``bonded_only`` is False. ``addr`` and ``adv_data`` are the
IRQ's memoryviews: copy them (``bytes(addr)``) to keep them. Exceptions raised
inside never escape; they are counted in ``errors`` and the last one is kept in
``last_error``.
"""

# At most 17 globals (os, cryptolib and blesmp.crypto are imported where used, the kernels as one
# module): a module's dict grows from 17 to 37 slots at the 18th, and an app that resolves keeps
# this resident (blesmp.crypto, 40 globals, stays out of its heap unless it generates addresses).
from micropython import const

try:
    from . import _viper as _kernels

    if _kernels is None:  # hidden (sys.modules entry None: make test-mp does): MicroPython returns it
        raise ImportError
    BACKEND = "viper"
except (SyntaxError, ImportError, ValueError):  # ValueError: .mpy of another arch / no native emitter
    from . import _pure as _kernels  # type: ignore[no-redef]

    BACKEND = "python"

# Address kinds returned by kind().
PUBLIC = const(0)
STATIC = const(1)  # random static: top bits 11
RPA = const(2)  # resolvable private: top bits 01
NRPA = const(3)  # non-resolvable private: top bits 00
INVALID = const(4)  # random with the reserved top bits 10, or an unknown address type

_IRQ_SCAN_RESULT = const(5)
_EVENTS = ("added", "replaced", "removed", "cleared")
_ECB = const(1)
_WAYS = const(4)


def kind(addr_type, addr):
    """Classifies an address: PUBLIC, STATIC, RPA, NRPA or INVALID."""
    if addr_type == 0:
        return PUBLIC
    if addr_type != 1:
        return INVALID
    top = addr[0] >> 6
    if top == 1:
        return RPA
    if top == 3:
        return STATIC
    if top == 0:
        return NRPA
    return INVALID


def generate(irk):
    """A fresh resolvable private address for irk (16 bytes MSB-first): 6 bytes MSB-first."""
    if not isinstance(irk, (bytes, bytearray, memoryview)) or len(irk) != 16:
        raise ValueError("irk must be 16 bytes")
    from os import urandom

    from .crypto import ah

    p = bytearray(3)
    while True:
        p[:] = urandom(3)
        p[0] = (p[0] & 0x3F) | 0x40
        # The 22 random bits must contain at least one 0 and one 1.
        low = p[0] & 0x3F
        if (low | p[1] | p[2]) and not (low == 0x3F and p[1] == 0xFF and p[2] == 0xFF):
            return bytes(p) + ah(irk, p)


def _usable_irk(irk):
    if irk is None or len(irk) != 16:
        return False
    for x in irk:
        if x:
            return True
    return False  # all zero: the peer has no IRK


class Resolver:
    """Resolves RPAs against the bonded peers' IRKs (see the module docstring)."""

    generate = staticmethod(generate)

    def __init__(self, store=None, cache_size=32):
        if cache_size < 0:
            raise ValueError("cache_size must be >= 0")
        nsets = 0
        if cache_size:
            nsets = 1
            while nsets * _WAYS < cache_size:
                nsets <<= 1
        self._nsets = nsets
        self._mask = nsets - 1 if nsets else -1  # -1: no cache
        self._blk = bytearray(16)
        self._out = bytearray(16)
        self._ciphers = {}  # IRK bytes -> bound encrypt of its ECB object
        self._st = None
        self._store = store
        self.error = None  # the last exception a store event raised, if any
        self.set_bonds(store.bonds() if store is not None else ())
        if store is not None:
            store.subscribe(self._changed)

    @property
    def cache_size(self):
        return self._nsets * _WAYS

    def __len__(self):
        return len(self._st[0])

    def set_bonds(self, bonds):
        """Rebuilds from bonds (objects with addr_type, addr, irk) and drops the cache."""
        bonds = list(bonds)
        old = self._ciphers
        ciphers = {}
        encs = []
        ibonds = []
        ids = bytearray(7 * len(bonds))
        for j, b in enumerate(bonds):
            ids[7 * j] = b.addr_type & 0xFF
            ids[7 * j + 1 : 7 * j + 7] = b.addr
            irk = b.irk
            if not _usable_irk(irk):
                continue
            key = bytes(irk)
            if key in ciphers:
                continue  # the same IRK twice: the first bond wins
            enc = old.get(key)
            if enc is None:
                from cryptolib import aes

                enc = aes(key, _ECB).encrypt
            ciphers[key] = enc
            encs.append(enc)
            ibonds.append(b)
        self._ciphers = ciphers
        self._st = (encs, ibonds, ids, len(bonds), bonds) + self._fresh_cache()

    def _fresh_cache(self):
        # The state's tail: (tab, cres, mask, blk, out). tab holds 8-octet
        # entries then one round-robin counter per set; cres the results.
        n = self._nsets
        tab = bytearray(n * (_WAYS * 8 + 1)) if n else None
        cres = [None] * (n * _WAYS) if n else None
        return (tab, cres, self._mask, self._blk, self._out)

    def invalidate(self):
        """Forgets every cached result."""
        self._st = self._st[:5] + self._fresh_cache()

    def reload(self):
        """Rebuilds from the store (done automatically on every store event)."""
        if self._store is not None:
            self.set_bonds(self._store.bonds())

    def _changed(self, event, bond):
        # Called by the store, possibly from inside the IRQ handler: never raises.
        # Events that do not change the bond set (e.g. "refused") are ignored.
        if event not in _EVENTS:
            return
        try:
            self.set_bonds(self._store.bonds())
        except Exception as e:  # noqa: BLE001
            self.error = e
            try:
                self.invalidate()
            except Exception:  # noqa: BLE001, S110
                pass

    # resolve(addr_type, addr): the bond whose IRK resolves the RPA addr, else
    # None (also for public, static and non-resolvable addresses, without AES);
    # ValueError unless addr is 6 bytes.
    # identify(addr_type, addr): the bond behind any address: an RPA is
    # resolved, a public or static address is matched against the bonds'
    # identity addresses.
    # Both are kernels (viper, or the pure fallback) so that a cached answer
    # costs one call; their bodies live in _viper.py / _pure.py.
    resolve = _kernels.rpa_resolve
    identify = _kernels.rpa_identify


class ScanFilter:
    """Wraps _IRQ_SCAN_RESULT: reports bonded peers (or every result) with their bond."""

    def __init__(self, resolver, on_result, bonded_only=True):
        self.resolver = resolver
        self.on_result = on_result
        self.bonded_only = bonded_only
        self.errors = 0
        self.last_error = None

    def irq(self, event, data):
        """Call from the BLE IRQ handler; True if the event was a scan result."""
        if event != _IRQ_SCAN_RESULT:
            return False
        try:
            addr_type, addr, adv_type, rssi, adv_data = data
            bond = self.resolver.identify(addr_type, addr)
            if bond is not None or not self.bonded_only:
                self.on_result(bond, addr_type, addr, adv_type, rssi, adv_data)
        except Exception as e:  # noqa: BLE001 (an escaped exception kills the IRQ handler)
            self.errors += 1
            self.last_error = e
        return True
