"""blesmp.aio (await sm.pair(conn), awaitable prompts, aioble-style connection objects) and the
agents (console, two buttons on machine.Pin, callbacks) on simulated boards."""

import asyncio

import pytest
from simkit import Dev, Phone, World, both_done, connect, done

from blesmp import aio
from blesmp import const as C
from blesmp.agents import ButtonAgent, ConsoleAgent


@pytest.fixture
def w(monkeypatch):
    world = World(seed=11)

    async def virtual_sleep_ms(ms):
        world.run(ms / 1000.0)  # the asyncio loop's time passes on the virtual clock
        await asyncio.sleep(0)

    monkeypatch.setattr(aio, "_sleep_ms", virtual_sleep_ms)
    yield world
    world.close()


class AiobleConnection:
    """What aioble's DeviceConnection carries: the handle in _conn_handle."""

    def __init__(self, handle):
        self._conn_handle = handle


def test_await_pair_and_prompts(w):
    p = Dev(w, "periph", cls=aio.SecurityManager, io=C.IO_DISPLAY_YESNO, mitm=True)
    ph = Phone(w, "phone", cls=aio.SecurityManager, io=C.IO_DISPLAY_YESNO, mitm=True)
    hc, hp = connect(w, ph, p)

    async def user(dev):
        prompt = await dev.sm.prompt()
        assert prompt.kind == C.NC_REQ_EVT and 0 <= prompt.number <= 999999
        assert prompt.reply(True)
        return prompt.number

    async def main():
        p.sm.start()
        ph.sm.start()
        t_user_p = asyncio.ensure_future(user(p))
        t_user_ph = asyncio.ensure_future(user(ph))
        result = await ph.sm.pair(AiobleConnection(hc))
        n1, n2 = await t_user_p, await t_user_ph
        return result, n1, n2

    result, n1, n2 = asyncio.run(main())
    assert n1 == n2
    assert result.success and result.level == 4 and result.bonded
    assert w.run_until(done(p), 5) and p.result().success


def test_await_pair_returns_failure_promptly(w):
    p = Dev(w, "periph", cls=aio.SecurityManager, io=C.IO_DISPLAY_YESNO, mitm=True)
    ph = Phone(w, "phone", cls=aio.SecurityManager, io=C.IO_DISPLAY_YESNO, mitm=True)
    hc, hp = connect(w, ph, p)

    async def main():
        p.sm.start()
        prompt_task = asyncio.ensure_future(p.sm.prompt())
        pair_task = asyncio.ensure_future(ph.sm.pair(hc))
        prompt = await prompt_task
        prompt.reply(False)  # the ESP32's user says the numbers differ
        return await pair_task

    t0 = w.now
    r = asyncio.run(main())
    assert not r.success and w.now - t0 < 10


def test_await_pair_central_limitation(w):
    p = Dev(w, "periph", io=C.IO_DISPLAY_YESNO, mitm=True)
    c = Dev(w, "central", cls=aio.SecurityManager, io=C.IO_DISPLAY_YESNO, mitm=True)
    hc, hp = connect(w, c, p)
    r = asyncio.run(c.sm.pair(hc, level=3))
    assert r.reason == C.CENTRAL_NO_PROMPTS


def test_console_agent_pin_at_the_repl(w):
    out = []
    agent = ConsoleAgent(out=out.append)
    p = Dev(w, "periph", io=C.IO_KEYBOARD_ONLY, mitm=True, agent=agent)
    ph = Phone(w, "phone", io=C.IO_DISPLAY_ONLY, mitm=True)
    hc, hp = connect(w, ph, p)
    ph.call(ph.sm.pair, hc)
    w.run(2)
    assert any("Type it" in line for line in out)
    shown = [e[2] for e in ph.events if e[0] == "PASSKEY_NOTIF"]
    assert len(shown) == 1
    p.call(agent.pin, shown[0])  # typed at the REPL, later
    assert both_done(w, p, ph)
    assert p.result().success and p.result().authenticated
    assert any("AUTH_CMPL" in line and "success" in line for line in out)


def test_button_agent_window_and_numeric_comparison(w):
    shown = []
    p = Dev(w, "periph", io=C.IO_DISPLAY_YESNO, mitm=True, window=True)
    with p.board:
        import machine

        agent = ButtonAgent(0, 4, show=shown.append, window_s=30, debounce_ms=50).attach(p.sm)
    p.sm.agent = agent
    ph = Phone(w, "phone", io=C.IO_DISPLAY_YESNO, mitm=True)
    ph.answers["NC_REQ"] = lambda dev, conn, v: dev.sm.confirm_reply(conn, True)

    def press(pin):
        with p.board:
            machine.Pin(pin).set_input(0)
            import micropython

            micropython.run_scheduled()
        w.run(0.1)
        with p.board:
            machine.Pin(pin).set_input(1)
        w.run(0.1)

    press(0)  # "yes" with nothing asked: opens the pairing window
    assert p.sm.window_open() and "window open" in shown[-1]
    hc, hp = connect(w, ph, p)
    ph.call(ph.sm.pair, hc)
    w.run(1)
    assert shown[-1].endswith("yes/no?")
    press(0)
    assert both_done(w, p, ph)
    assert p.result().success and p.result().level == 4 and shown[-1] == "paired"
