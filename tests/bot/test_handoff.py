"""bot.handoff's work slots, without Slack: a slot taken is always given back."""

from __future__ import annotations

import threading

from bot.handoff import GatedAck, ListenerExecutor, WorkSlots


def test_an_ack_bolt_sends_itself_keeps_no_slot():
    """Bolt acks an event on the thread that dispatches the request, before the listener starts
    (and the listener may ack again): that thread never runs the listener's `done`, so a slot
    taken there was never given back, and with all of them gone every command waited for good
    after its ack."""
    slots = WorkSlots(1, patience=0.1)
    executor = ListenerExecutor(slots, threads=4)
    try:
        for _ in range(3):  # each on a thread of its own, as a server's workers would
            ack = GatedAck(slots)
            dispatcher = threading.Thread(target=ack)
            dispatcher.start()
            dispatcher.join(5)
            assert not dispatcher.is_alive(), "the dispatching thread waits for a slot"
            executor.submit(ack).result(timeout=5)  # the event listener acks too
        command = executor.submit(GatedAck(slots))  # a command's listener: ack, then a slot
        command.result(timeout=5)
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
