"""`make demo STACK=nimble`: the demo's boards on the real host (tools/demo.py's Session, with
radios instead of the simulator's broker). The lock and the fob are real-host MicroPython
processes running firmware/ unmodified; the phone is a Bumble device on the same link
(tools/realhost/phone.py), as on the simulator it is a phone, not an ESP32. A power cut
kills the lock's process; the next one starts on the same radio (its pty flushed) and flash.
"""

import asyncio
import os
import queue
import subprocess
import threading

from tools.realhost import boards
from tools.realhost.airtrace import AirTrace
from tools.realhost.phone import Phone
from tools.realhost.radios import Radios


class _PhoneProc:
    """Looks like the Popen of a board process to the demo's Session."""

    def __init__(self, fut):
        self.fut = fut

    def poll(self):
        return 0 if self.fut.done() else None

    def kill(self):
        self.fut.cancel()

    def wait(self, timeout=None):
        try:
            self.fut.result(timeout)
        except BaseException:  # cancelled or failed: it has ended either way
            pass
        return 0


def make_session_class(base):
    """The real-host Session, a subclass of tools/demo.py's (passed in: no import circle)."""

    class NimbleSession(base):
        def __init__(self, title, workdir, host, firmware, out):
            self.title = title
            self.workdir = workdir
            self.out = out
            self.host = host
            self.firmware = firmware
            self.exe = boards.interpreter(host)
            self.air = AirTrace()
            self.radios = Radios(tap=self.air.link_tap, hci_tap=self.air.hci_tap).start()
            self.air.radios = self.radios
            self.procs = {}
            self.lines = {}
            self.q = queue.Queue()
            self.cursor = {}
            self.phones = {}

        def start(self, name, script, fs, interp="mp", addr=None, profile=None, args=(), stdin=False):
            os.makedirs(fs, exist_ok=True)
            self.lines.setdefault(name, [])
            self.air.trace.add("note", name, "join", text="%s starts" % name)
            if profile == "phone":
                return self._start_phone(name, addr)
            pty = self.radios.pty(name) if name in self.radios.ports else self.radios.add(name, addr)
            env = boards.board_env(pty, [self.firmware])
            p = subprocess.Popen(boards.board_command(self.exe, script, args), cwd=fs, env=env,
                                 stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self.procs[name] = p
            threading.Thread(target=self._pump, args=(name, p), daemon=True).start()
            return p

        def _start_phone(self, name, addr):
            def say(line):
                self.q.put((name, line))

            phone = Phone(self.radios, name, addr, io="keyboard", say=say)
            self.radios.call(phone.power_on)
            self.phones[name] = phone
            async def visit():
                try:
                    await phone.visit(self.lock_address())
                except Exception as e:  # the step fails on the missing line; say why
                    say("PHONE ERROR %r" % (e,))

            fut = asyncio.run_coroutine_threadsafe(visit(), self.radios.loop)
            proc = _PhoneProc(fut)
            self.procs[name] = proc
            fut.add_done_callback(lambda f: self.q.put((name, proc)))
            return proc

        def lock_address(self):
            return self.radios.address("lock")

        def type(self, name, text):
            if name not in self.phones:
                return super().type(name, text)
            self.out.write("   %-5s| <<< the user types %s\n" % (name, text))
            self.radios.call(self.phones[name].type, text + "\n")

        def announce(self, name):
            pass  # real time: there is no clock to hold

        def power_cut(self, name):
            p = self.procs.pop(name)
            p.kill()
            p.wait()
            self.radios.wait_down(name)  # the radio has dropped its links before the next boot
            self.out.write("   %-5s| ---- power cut: process killed (RAM lost, flash kept) ----\n" % name)

        def close(self):
            self.stop_boards()
            self.radios.close()
            self.drain()
            return self.air.trace

    return NimbleSession
