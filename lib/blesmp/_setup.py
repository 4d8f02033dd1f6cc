# Set-up code of blesmp.manager (SecurityManager.__init__ and set_security_param): it runs once
# at start-up (and on a later set_security_param), so the manager imports it for that call and
# drops it again (blesmp._drop), as the store does with _bondload. Not part of the API.
import time

from micropython import const

from . import _log
from ._secinfo import addr_key as _key7

_IO_NO_INPUT_OUTPUT = const(3)


def init(sm, ble, store, io, bond, mitm, sc, mks, sc_only, level, max_bonds, agent, callback, handler,
         window, allow, repeat, prompt_timeout_ms, backoff_ms, static, central_prompts, central_stall_ms,
         tid, clock, resolver, methods):
    # SecurityManager.__init__ (see its docstring), up to ble.active(True)
    sm._ble = ble
    sm.resolver = resolver  # optional blesmp.resolver.Resolver: back-off by identity
    m = 7
    if methods is not None:  # METHOD_* bits: OR them (a set or a list of them, or one int)
        m = 0
        for x in ((methods,) if isinstance(methods, int) else methods):
            m |= x
        if not 0 < m < 8:
            raise ValueError("methods: METHOD_JUST_WORKS, METHOD_PASSKEY, METHOD_NUMERIC_COMPARISON")
    sm.methods = m
    sm._ms = clock or time.ticks_ms  # a ticks_ms-like clock (tests pass a fake one)
    if store is None:
        from .store import BondStore

        store = BondStore(max_bonds=max_bonds, policy="allow" if repeat == "allow" else "stronger")
    sm.store = store
    sm._allow = None
    if allow is not None:
        sm._allow = [_key7(t, a) for t, a in allow]
    if repeat not in ("stronger", "deny", "allow"):
        raise ValueError("repeat must be 'stronger', 'deny' or 'allow'")
    sm.repeat = repeat
    if static is not None:
        from ._link import check_pk

        check_pk(static)
    sm._static = static
    sm.agent = agent
    sm.callback = callback
    sm.handler = handler
    sm.window = window
    sm._win_until = None
    sm.prompt_timeout_ms = prompt_timeout_ms
    sm.backoff_ms = backoff_ms
    sm.central_prompts = central_prompts
    sm.central_stall_ms = central_stall_ms
    sm._links = {}
    sm._backoff = {}  # key7 -> [failures, until_ms or None]
    sm._mark = None  # ticks of the last bond-count look-up (a pairing is starting)
    sm._disc = []  # handles to disconnect once outside a store callback
    sm._flush_cb = sm._flush
    sm._flush_queued = False
    sm._in_store = False
    sm._authz = {}  # attr handle -> (level, min_key_size, authorize callback)
    set_param(sm, io, bond, mitm, sc, mks, sc_only, level)
    sub = getattr(store, "subscribe", None)
    if sub is not None:
        sub(sm._on_store)
    ble.irq(sm._irq)  # before active(True): the store sees the IRK restore at start-up
    sm._timer = timer(sm, tid)


def protect_args(h, level, mks, authorize):
    # SecurityManager.protect's argument checks; returns the value handle
    h = getattr(h, "_value_handle", h)  # an aioble Characteristic or Descriptor
    if h is None:
        raise ValueError("protect: the characteristic has no handle yet (register the services first)")
    if not isinstance(h, int) or isinstance(h, bool) or not 0 < h < 0xFFFF:
        raise TypeError("protect: attr_handle must be a value handle 1..65534 (from gatts_register_services) "
                        "or an aioble Characteristic, not %r" % (h,))
    if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= 4:
        raise ValueError("protect: level must be 1..4 (LEVEL_*), not %r" % (level,))
    if not isinstance(mks, int) or isinstance(mks, bool) or not (mks == 0 or 7 <= mks <= 16):
        raise ValueError("protect: min_key_size must be 0 (any) or 7..16, not %r" % (mks,))
    if authorize is not None and not callable(authorize):
        raise TypeError("protect: authorize must be None or callable(conn, attr_handle, write) -> bool")
    return h


def timer(sm, tid):
    if tid is None:
        return None
    try:
        import machine

        t = machine.Timer(tid)
        t.init(period=250, mode=machine.Timer.PERIODIC, callback=lambda _t: sm.poll())
        return t
    except Exception as e:  # noqa: BLE001 (no such timer here: poll() is the app's job)
        _log("no machine.Timer(%r): call sm.poll() yourself (%r)" % (tid, e))
        return None


def set_param(sm, io, bond, mitm, sc, mks, sc_only, level):
    # SecurityManager.set_security_param (see its docstring)
    io = sm.io if io is None else io
    bond = sm.bond if bond is None else bond
    mitm = sm.mitm if mitm is None else mitm
    sc = sm.sc if sc is None else sc
    mks = sm.min_key_size if mks is None else mks
    sc_only = sm.sc_only if sc_only is None else sc_only
    level = sm.level if level is None else level
    if not (isinstance(io, int) and 0 <= io <= 4):
        raise ValueError("io must be 0..4 (IO_*)")
    if not (isinstance(mks, int) and 7 <= mks <= 16):
        raise ValueError("min_key_size must be 7..16")
    if not (isinstance(level, int) and 1 <= level <= 4):
        raise ValueError("level must be 1..4")
    if sc_only:
        sc = mitm = True
        mks = 16
        level = 4
    if level >= 3:
        mitm = True
    if level == 4:
        sc = True
    if mitm and io == _IO_NO_INPUT_OUTPUT:
        raise ValueError("mitm/level>=3 needs a display or keyboard: io=IO_NO_INPUT_OUTPUT can only do Just Works")
    sm.io, sm.bond, sm.mitm, sm.sc = io, bool(bond), bool(mitm), bool(sc)
    sm.min_key_size, sm.sc_only, sm.level = mks, bool(sc_only), level
    sm._ble.config(io=io, bond=sm.bond, mitm=sm.mitm, le_secure=sm.sc)
