"""Hypothesis fuzz of SecurityManager's IRQ handler: random events with random tuples (right and
wrong shapes, memoryviews, None, huge ints, strings), alone and interleaved with plausible
security sequences, against a real BondStore on simulated flash. Nothing may escape the
handler, every answer must have a type the firmware accepts, and the manager must still work
afterwards (poll, status, state, a real pairing)."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from simkit import Dev, World, both_done, connect

from blesmp import const as C

_EVENTS = [1, 2, 3, 4, 7, 8, 20, 21, 27, 28, 29, 30, 31]
_ints = st.one_of(st.integers(-3, 70000), st.sampled_from([0, 1, 2, 3, 4, 10, 16, 255, 65535, 2**31, -(2**40)]))
_bufs = st.one_of(st.none(), st.binary(max_size=90).map(memoryview), st.binary(min_size=7, max_size=7),
                  st.sampled_from([bytes(7), b"irk", bytes(88), bytes(80)]).map(memoryview))
_items = st.one_of(_ints, _bufs, st.text(max_size=3), st.booleans(), st.floats(allow_nan=True))
_data = st.one_of(st.tuples(), st.lists(_items, max_size=6).map(tuple), st.none(), st.integers(), st.text(max_size=4))
_event = st.one_of(st.sampled_from(_EVENTS), st.integers(-5, 100), st.none(), st.text(max_size=2))

# Plausible events: right shapes, random values (conn handles near the real ones).
_h = st.integers(0, 3)
_plausible = st.one_of(
    st.tuples(st.just(1), st.tuples(_h, st.integers(0, 1), st.binary(min_size=6, max_size=6).map(memoryview))),
    st.tuples(st.just(2), st.tuples(_h, st.integers(0, 1), st.binary(min_size=6, max_size=6).map(memoryview))),
    st.tuples(st.just(7), st.tuples(_h, st.integers(0, 1), st.binary(min_size=6, max_size=6).map(memoryview))),
    st.tuples(st.just(28), st.tuples(_h, st.integers(0, 1), st.integers(0, 1), st.integers(0, 1),
                                     st.integers(0, 16))),
    st.tuples(st.just(29), st.tuples(st.sampled_from([1, 2, 10]), st.integers(0, 3),
                                     st.one_of(st.none(), st.binary(min_size=7, max_size=7).map(memoryview),
                                               st.just(memoryview(bytes(7)))))),
    st.tuples(st.just(30), st.tuples(st.sampled_from([1, 2, 10]),
                                     st.binary(min_size=7, max_size=7).map(memoryview),
                                     st.one_of(st.none(), st.binary(min_size=88, max_size=88).map(memoryview),
                                               st.binary(min_size=80, max_size=80).map(memoryview)))),
    st.tuples(st.just(31), st.tuples(_h, st.sampled_from([0, 1, 2, 3, 4, 5]), st.integers(0, 999999))),
    st.tuples(st.just(4), st.tuples(st.sampled_from([0, 1, 65535]), st.integers(0, 40))),
    st.tuples(st.just(-1), st.integers(0, 40000)),  # let virtual time pass (ms), then poll
)


def _fresh():
    w = World(seed=3, trace=False)
    d = Dev(w, "dut", io=C.IO_DISPLAY_YESNO, mitm=True, window=True)
    d.sm.protect(5, C.LEVEL_MITM, authorize=lambda *a: 1 / 0)
    return w, d


def _check(event, ret):
    if event == C.IRQ_GET_SECRET:
        assert ret is None or isinstance(ret, (bytes, bytearray, memoryview))
    elif event == C.IRQ_SET_SECRET:
        assert isinstance(ret, (bool, int)) or ret is None
    elif event == C.IRQ_GATTS_READ_REQUEST:
        assert isinstance(ret, int) and 0 <= ret <= 255


def _deliver(d, event, data):
    with d.board:
        ret = d.sm._irq(event, data)  # the very function installed with ble.irq()
    _check(event, ret)


_SET = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@_SET
@given(st.lists(st.tuples(_event, _data), max_size=30))
def test_random_events_and_tuples_never_escape(seq):
    w, d = _fresh()
    try:
        for event, data in seq:
            _deliver(d, event, data)
        d.sm.poll()
        d.sm.status()
    finally:
        w.close()


@_SET
@given(st.lists(_plausible, max_size=40))
def test_plausible_sequences_never_escape_and_manager_survives(seq):
    w, d = _fresh()
    try:
        for event, data in seq:
            if event == -1:
                w.run(data / 1000.0)
                continue
            _deliver(d, event, data)
        w.run(35)  # every watchdog fires
        with d.board:
            d.sm.poll()
            d.sm.status()
            for link in d.sm.connections():
                assert 1 <= link.level <= 4
        assert d.ble._handler is not None
    finally:
        w.close()


def test_manager_still_pairs_after_fuzz():
    w, d = _fresh()
    try:
        import random

        rnd = random.Random(5)
        for _ in range(300):
            ev = rnd.choice(_EVENTS)
            data = tuple(rnd.choice([0, 1, 2, 65535, None, memoryview(bytes(7)), b"x", "s"])
                         for _ in range(rnd.randint(0, 5)))
            _deliver(d, ev, data)
        for h in list(d.sm._links):
            d.sm._links.pop(h)  # forget the fake links (their handles are not real connections)
        c = Dev(w, "central")
        d.sm.open_window(60)
        d.events.clear()
        hc, hp = connect(w, c, d)
        c.call(c.sm.pair, hc)
        assert both_done(w, c, d)
        assert c.result().success and d.result().success
    finally:
        w.close()
