"""Repeated Attempts (Vol 3 Part H 2.3.6): a per-peer waiting interval after a failed pairing,
growing exponentially with each further failure, shared by every connection of one device."""


class RepeatedAttempts:
    """failed(peer, now) starts/extends the interval; blocked(peer, now) says whether a new pairing
    with that peer must be refused; succeeded(peer) clears it. peer is any hashable key (the engine
    uses the connection address (type, addr))."""

    def __init__(self, base=2.0, factor=2.0, maximum=64.0):
        self.base = base
        self.factor = factor
        self.maximum = maximum
        self._peers = {}  # peer -> [failures, blocked_until]

    def failed(self, peer, now):
        entry = self._peers.get(peer)
        if entry is None:
            entry = self._peers[peer] = [0, 0.0]
        interval = min(self.maximum, self.base * self.factor ** entry[0])
        entry[0] += 1
        entry[1] = now + interval
        return interval

    def succeeded(self, peer):
        self._peers.pop(peer, None)

    def blocked(self, peer, now):
        entry = self._peers.get(peer)
        return entry is not None and now < entry[1]

    def until(self, peer):
        entry = self._peers.get(peer)
        return None if entry is None else entry[1]

    def failures(self, peer):
        entry = self._peers.get(peer)
        return 0 if entry is None else entry[0]
