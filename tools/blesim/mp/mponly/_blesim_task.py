"""asyncio's Task and TaskQueue in Python, for a MicroPython board process on the virtual
clock (see select.py here: the C versions stamp tasks with the real ticks_ms).

Same protocol as the classes asyncio's core expects (`peek/push/pop/remove`, tasks with
`coro/data/state/ph_key`, awaitable, `done()`, `cancel()`); the queue is a list kept in due
order (first in, first out among tasks due at the same tick), which is plenty for the few
tasks a board application runs.
"""

from asyncio import core


class TaskQueue:
    def __init__(self):
        self._q = []

    def peek(self):
        return self._q[0] if self._q else None

    def push(self, v, key=None):
        v.data = None
        v.ph_key = key if key is not None else core.ticks()
        q = self._q
        i = len(q)
        while i > 0 and core.ticks_diff(q[i - 1].ph_key, v.ph_key) > 0:
            i -= 1
        q.insert(i, v)

    def pop(self):
        return self._q.pop(0)

    def remove(self, v):
        q = self._q
        for i in range(len(q)):
            if q[i] is v:
                del q[i]
                return


class Task:
    def __init__(self, coro, globals=None):
        self.coro = coro
        self.data = None  # the queue it waits on, its result/exception, or CancelledError
        self.state = True  # True: running; a TaskQueue: running, awaited; False/None: done
        self.ph_key = 0

    def __iter__(self):
        if not self.state:
            self.state = False  # finished, and now awaited
        elif self.state is True:
            self.state = TaskQueue()  # the tasks that await this one
        elif type(self.state) is not TaskQueue:
            raise RuntimeError("can't wait")
        return self

    def __next__(self):
        if not self.state:
            raise self.data  # done: hand the result (StopIteration) or error to the awaiter
        self.state.push(core.cur_task)
        core.cur_task.data = self

    def done(self):
        return not self.state

    def cancel(self):
        if not self.state:
            return False
        if self is core.cur_task:
            raise RuntimeError("can't cancel self")
        t = self
        while isinstance(t.data, Task):  # cancel what it waits on
            t = t.data
        if hasattr(t.data, "remove"):  # waiting in some queue: back to the run queue now
            t.data.remove(t)
            core._task_queue.push(t)
        elif core.ticks_diff(t.ph_key, core.ticks()) > 0:  # sleeping: wake it now
            core._task_queue.remove(t)
            core._task_queue.push(t)
        t.data = core.CancelledError
        return True
