"""The ack never waits on rendering: a listener's `ack()` is where its work joins a short queue.

Bolt runs each listener on its `listener_executor` and answers Slack's HTTP request as soon as
the listener calls `ack()`; our listeners ack first, then read the snapshot, render and answer
through `respond()` (the response_url) or the Web API. With one pool for both, a burst of 200
`/deal` or 60 `/forecast` queues the later acks behind the earlier renders, and Slack gives up
after 3 s. Lazy listeners would split the two, but they share the same executor, and they would
turn every listener inside out.

So: the executor is wide (a thread per request in flight, up to `ACK_THREADS`: each one that is
waiting costs a blocked thread, not CPU), and `GatedAck`, put in the request's context by a
middleware, sends the ack and then waits for one of `WORK_SLOTS` work slots before it returns to
the listener. Rendering runs at most `WORK_SLOTS` at a time (the GIL would make more of them only
slower, and slow everyone's acks), and not while other acks are due (for up to `ACK_PRIORITY`
seconds): acks have Slack's 3-second deadline, answers through response_url have 30 minutes. A
new request's ack never queues behind a render. The slot is given back when the listener
returns, whatever happens in it. Beyond `ACK_THREADS` requests in flight, acks queue again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from slack_bolt import Ack, App, BoltContext

ACK_THREADS = 256  # requests in flight at once (acked, or waiting for a work slot)
WORK_SLOTS = 2  # listeners past their ack running at once: one per core on the target machine
ACK_PRIORITY = 1.0  # seconds work waits for the acks in flight before it runs anyway


class WorkSlots:
    """Who may work past its ack: at most `slots` listeners at once, and none while another
    request is still waiting for its ack (unless it has waited `patience` seconds), since on a
    small machine a render competing for the GIL slows every ack. The holder is the current
    thread (given back by `done`)."""

    def __init__(self, slots: int, patience: float = ACK_PRIORITY) -> None:
        self._slots = threading.Semaphore(slots)
        self._patience = patience
        self._unacked = 0  # listeners started and not yet acked
        self._quiet = threading.Condition()
        self._local = threading.local()

    def started(self) -> None:
        """A listener was handed to the executor (called on the request's thread)."""
        with self._quiet:
            self._unacked += 1

    def running(self) -> None:
        """On the listener's thread: its ack is still due."""
        self._local.due = True
        self._local.listener = True

    def acked(self) -> None:
        if getattr(self._local, "due", False):
            self._local.due = False
            with self._quiet:
                self._unacked -= 1
                if self._unacked == 0:
                    self._quiet.notify_all()

    def take(self) -> None:
        """Wait for the acks in flight (up to `patience`), then for a slot. Only on a listener's
        thread: Bolt acks an event itself on the thread dispatching the request, where nothing
        would give a slot back (`done` runs on the listener's thread)."""
        self.acked()
        if not getattr(self._local, "listener", False) or getattr(self._local, "held", False):
            return
        with self._quiet:
            self._quiet.wait_for(lambda: self._unacked == 0, timeout=self._patience)
        self._slots.acquire()
        self._local.held = True

    def done(self) -> None:
        """The listener returned (acked or not): its slot and its place in the count go back."""
        self.acked()
        self._local.listener = False
        if getattr(self._local, "held", False):
            self._local.held = False
            self._slots.release()


class GatedAck(Ack):
    """Bolt's `ack`, which then waits for a work slot: the HTTP answer goes out first."""

    def __init__(self, slots: WorkSlots) -> None:
        super().__init__()
        self._slots = slots

    def __call__(self, *args: Any, **kwargs: Any):
        response = super().__call__(*args, **kwargs)
        self._slots.take()
        return response


class ListenerExecutor(ThreadPoolExecutor):
    """Bolt's listener executor: a wide pool that gives the work slot back after each task."""

    def __init__(self, slots: WorkSlots, threads: int = ACK_THREADS) -> None:
        super().__init__(threads, thread_name_prefix="listener")
        self.slots = slots

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        self.slots.started()

        def run() -> Any:
            self.slots.running()
            try:
                return fn(*args, **kwargs)
            finally:
                self.slots.done()

        return super().submit(run)


def install(app: App, slots: WorkSlots) -> None:
    """Give every request a `GatedAck` (the app must run on a `ListenerExecutor` of `slots`)."""

    @app.middleware
    def gated_ack(context: BoltContext, next: Callable[[], Any]) -> Any:  # noqa: A002 - Bolt's name
        context["ack"] = GatedAck(slots)
        return next()
