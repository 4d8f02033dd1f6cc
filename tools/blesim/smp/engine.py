"""The SMP engine (work in progress)."""


class SmpEngine:
    def __init__(self, *a, **k):
        raise NotImplementedError("engine being written")
