# The bond store's interface as far as the resolver uses it: bonds(), subscribe() and the events
# (added, replaced, removed, cleared). Plain Python: test_resolver.py runs on MicroPython too.


class Bond:
    def __init__(self, addr_type, addr, irk):
        self.addr_type = addr_type
        self.addr = addr
        self.irk = irk

    def __repr__(self):
        return "Bond(%d, %s, %s)" % (self.addr_type, self.addr.hex(), self.irk.hex() if self.irk else None)


class FakeStore:
    def __init__(self, bonds=()):
        self._bonds = list(bonds)
        self._subs = []

    def bonds(self):
        return list(self._bonds)

    def subscribe(self, cb):
        self._subs.append(cb)

    def _emit(self, event, bond):
        for cb in self._subs:
            cb(event, bond)

    def add(self, bond):
        """A bond for a new address ("added"), or a new one for an address already bonded
        ("replaced", in its place)."""
        for i, b in enumerate(self._bonds):
            if b.addr_type == bond.addr_type and b.addr == bond.addr:
                self._bonds[i] = bond
                self._emit("replaced", bond)
                return
        self._bonds.append(bond)
        self._emit("added", bond)

    def remove(self, addr_type, addr):
        for b in self._bonds:
            if b.addr_type == addr_type and b.addr == addr:
                self._bonds.remove(b)
                self._emit("removed", b)
                return True
        return False

    def clear(self):
        self._bonds = []
        self._emit("cleared", None)
