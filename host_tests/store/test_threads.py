"""The NimBLE task (IRQ handler) and the main thread write the same store at once (CPython
threads on the real filesystem): every write stays whole and the final file has every bond."""

import sys
import threading

from blesmp import blob
from blesmp.store import BondStore
from tools.bench.fakebond import secret


def _blob(i):
    return secret(i, blob.ESP88, irk=False)


def test_irq_and_main_thread_writes_do_not_collide(tmp_path):
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        st = BondStore(str(tmp_path / "bonds.db"), layout=blob.ESP88, max_bonds=200)
        errors = []

        def nimble():
            try:
                for i in range(60):
                    k, v = _blob(i)
                    assert st.set_secret(1, k, v) and st.set_secret(2, k, v)
            except BaseException as e:  # noqa: BLE001
                errors.append(e)

        def app():
            try:
                for i in range(60):
                    st.touch(1, bytes((0xC0, 0, 0, 0, 0, i // 2)))
                    st.flush()
                    st.dirty = True
            except BaseException as e:  # noqa: BLE001
                errors.append(e)

        t1, t2 = threading.Thread(target=nimble), threading.Thread(target=app)
        t1.start()
        t2.start()
        t1.join()
        t2.join()
        assert not errors and st.problems == [] and st.last_error is None, (errors, st.problems)
        st.flush()
        again = BondStore(str(tmp_path / "bonds.db"), layout=blob.ESP88, max_bonds=200)
        assert len(again) == 60 and again.problems == []
    finally:
        sys.setswitchinterval(old)
