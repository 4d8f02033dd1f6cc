# SecurityManager's configuration: its parameters (one table: names, defaults, checks, what each
# does) and the set-up that applies them (__init__, set_security_param, protect()'s checks). It runs
# once at start-up (and on a later set_security_param), so the manager imports it for that call and
# drops it again (blesmp._drop), as the store does with bondload. Not part of the API.
import time

from micropython import const

from . import _log
from .secinfo import addr_key as _key7

_IO_NO_INPUT_OUTPUT = const(3)


# SecurityManager's parameters, all keyword: name, default, check, what it does. The one place
# for them: __init__ takes **kw and fills it from here, set_security_param takes the first seven,
# and docs/security-manager.md's parameter table is tested against this list.
# check: (lo, hi) an int in that range; a tuple of strings: one of them; None: not checked here.
PARAMS = (
    ("io", 3, (0, 4), "IO capability IO_* (ESP_BLE_SM_IOCAP_MODE): ble.config(io=)"),
    ("bond", True, None, "store the keys (ble.config(bond=))"),
    ("mitm", False, None, "ask for MITM protection (ble.config(mitm=)); needs io other than IO_NO_INPUT_OUTPUT"),
    ("sc", True, None, "LE Secure Connections (ble.config(le_secure=))"),
    ("min_key_size", 16, (7, 16), "shorter keys are refused, link dropped (KEY_TOO_SHORT)"),
    ("sc_only", False, None, "Mode 1 Level 4: every encrypted link must reach level 4 (sets mitm, sc, 16)"),
    ("level", 1, (1, 4), "the level every encrypted link must reach (LEVEL_TOO_LOW)"),
    ("store", None, None, "a BondStore; None: BondStore('bonds.db', max_bonds=max_bonds)"),
    ("max_bonds", 8, (1, 255), "bonds the default store keeps"),
    ("agent", None, None, "where passkeys and confirmations come from (blesmp.agents)"),
    ("callback", None, None, "callback(event, conn, value) for the *_EVT events"),
    ("handler", None, None, "the application's own IRQ handler: the manager chains every other event to it"),
    ("window", False, None, "True: new bonds only while open_window() is open (NOT_IN_WINDOW)"),
    ("allow", None, None, "None, or the (addr_type, addr) identities allowed to pair (NOT_ALLOWED)"),
    ("repeat", "stronger", ("stronger", "deny", "allow"), "may a bonded peer pair again (WEAKER_THAN_BOND)"),
    ("prompt_timeout_ms", 25000, (1, 0x3FFFFFFF), "time to answer a prompt (PROMPT_TIMEOUT); keep it below 30 s"),
    ("backoff_ms", 2000, (0, 0x3FFFFFFF), "wait after a failed pairing, doubling per further failure, 64x max"),
    ("insecure_static_passkey", None, None, "one passkey for every pairing instead of a fresh one: demos only"),
    ("central_prompts", False, None, "True only on (patched) firmware that gives a central passkey prompts"),
    ("central_stall_ms", 5000, (1, 0x3FFFFFFF), "as central without prompts: fail a stalled MITM pairing after this"),
    ("timer", 0, None, "machine.Timer id driving poll() every 250 ms; None: call sm.poll() yourself"),
    ("clock", None, None, "the millisecond tick source (default time.ticks_ms)"),
    ("active", True, None, "call ble.active(True) once the handler is installed"),
    ("resolver", None, None, "a blesmp.resolver.Resolver: a bonded peer's RPA counts as its identity"),
    ("methods", None, None, "None (all) or the allowed METHOD_* association models (METHOD_NOT_ALLOWED)"),
)


def args(kw, first=0):
    """The parameters of `kw`, checked: all of PARAMS with their defaults, or (first=7, for
    set_security_param) the first seven with None for "unchanged"; TypeError for any other name."""
    p = {}
    for name, default, check, _ in PARAMS[:first or len(PARAMS)]:
        v = kw.pop(name, None if first else default)
        if check is not None and v is not None:
            if isinstance(check[0], str):
                if v not in check:
                    raise ValueError("%s must be one of %s, not %r" % (name, ", ".join(check), v))
            elif not isinstance(v, int) or isinstance(v, bool) or not check[0] <= v <= check[1]:
                raise ValueError("%s must be %d..%d, not %r" % (name, check[0], check[1], v))
        p[name] = v
    if kw:
        raise TypeError("SecurityManager: unknown parameter %r" % sorted(kw)[0])
    return p


def init(sm, ble, kw):
    # SecurityManager.__init__ (see PARAMS), up to ble.active(True); returns `active`
    p = args(kw)
    methods = p["methods"]
    allow = p["allow"]
    repeat = p["repeat"]
    static = p["insecure_static_passkey"]
    sm._ble = ble
    sm.resolver = p["resolver"]  # optional blesmp.resolver.Resolver: back-off by identity
    m = 7
    if methods is not None:  # METHOD_* bits: OR them (a set or a list of them, or one int)
        m = 0
        for x in ((methods,) if isinstance(methods, int) else methods):
            m |= x
        if not 0 < m < 8:
            raise ValueError("methods: METHOD_JUST_WORKS, METHOD_PASSKEY, METHOD_NUMERIC_COMPARISON")
    sm.methods = m
    sm._ms = p["clock"] or time.ticks_ms  # a ticks_ms-like clock (tests pass a fake one)
    store = p["store"]
    if store is None:
        from .store import BondStore

        store = BondStore(max_bonds=p["max_bonds"], policy="allow" if repeat == "allow" else "stronger")
    sm.store = store
    sm._allow = None
    if allow is not None:
        sm._allow = [_key7(t, a) for t, a in allow]
    sm.repeat = repeat
    if static is not None:
        from .link import check_pk

        check_pk(static)
    sm._static = static
    sm.agent = p["agent"]
    sm.callback = p["callback"]
    sm.handler = p["handler"]
    sm.window = p["window"]
    sm._win_until = None
    sm.prompt_timeout_ms = p["prompt_timeout_ms"]
    sm.backoff_ms = p["backoff_ms"]
    sm.central_prompts = p["central_prompts"]
    sm.central_stall_ms = p["central_stall_ms"]
    sm._links = {}
    sm._backoff = {}  # key7 -> [failures, until_ms or None]
    sm._mark = None  # ticks of the last bond-count look-up (a pairing is starting)
    sm._disc = []  # handles to disconnect once outside a store callback
    sm._flush_cb = sm._flush
    sm._flush_queued = False
    sm._in_store = False
    sm._t_end = 0  # ticks when the last IRQ handler returned (blesmp.link.delivery)
    sm._authz = {}  # attr handle -> (level, min_key_size, authorize callback)
    set_param(sm, p)
    sub = getattr(store, "subscribe", None)
    if sub is not None:
        sub(sm._on_store)
    ble.irq(sm._irq)  # before active(True): the store sees the IRK restore at start-up
    sm._timer = timer(sm, p["timer"])
    return p["active"]


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


def set_param(sm, p):
    # SecurityManager.set_security_param (see its docstring): p holds the first seven PARAMS,
    # None for "unchanged"
    io = sm.io if p["io"] is None else p["io"]
    bond = sm.bond if p["bond"] is None else p["bond"]
    mitm = sm.mitm if p["mitm"] is None else p["mitm"]
    sc = sm.sc if p["sc"] is None else p["sc"]
    mks = sm.min_key_size if p["min_key_size"] is None else p["min_key_size"]
    sc_only = sm.sc_only if p["sc_only"] is None else p["sc_only"]
    level = sm.level if p["level"] is None else p["level"]
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
    # The association models some peer could pair with (Vol 3 Part H Table 2.8): Just Works with
    # any io; Passkey Entry needs a display or a keyboard; Numeric Comparison a display with
    # yes/no, and LE Secure Connections. A methods= that leaves none would fail every pairing.
    can = (1 if level < 3 else 0) | (0 if io == _IO_NO_INPUT_OUTPUT else 2) | (4 if sc and io in (1, 4) else 0)
    if not sm.methods & can:
        raise ValueError("methods= allows no association model that io=%d%s can do" % (
            io, ", level>=3" if level >= 3 else ("" if sc else ", sc=False")))
    sm.io, sm.bond, sm.mitm, sm.sc = io, bool(bond), bool(mitm), bool(sc)
    sm.min_key_size, sm.sc_only, sm.level = mks, bool(sc_only), level
    sm._ble.config(io=io, bond=sm.bond, mitm=sm.mitm, le_secure=sm.sc)
