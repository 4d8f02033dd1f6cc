# Set-up code of blesmp.manager (SecurityManager.__init__ and set_security_param): it runs once
# at start-up (and on a later set_security_param), so the manager imports it for that call and
# drops it again (manager._drop), as the store does with _bondload. Not part of the API.
from micropython import const

from .manager import _key7, _log

_IO_NO_INPUT_OUTPUT = const(3)


def init(sm, store, max_bonds, allow, repeat, static):
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


def timer(sm, tid):
    if tid is None:
        return None
    try:
        import machine

        t = machine.Timer(tid)
        t.init(period=250, mode=machine.Timer.PERIODIC, callback=sm._poll_cb)
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
