"""Is the bot warmed up? `revbot serve` listens at once and warms up behind it.

The warm-up (newest export in, a model trained if there is none, the forecast's shock fitted by a
backtest if it never was, each digest channel's forecast simulated) can take minutes on a small
machine. Meanwhile /healthz says the process is up, /readyz says "starting" (503), and a command
or button gets a private "starting" note at once instead of waiting for the warm-up's locks
("Open in CRM", a link the browser opened already, is only acked).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltResponse, Respond

from bot.listeners import ACTION_OPEN_CRM

log = logging.getLogger(__name__)
STARTING = "revbot is starting (loading today's data); try again in a minute."


class Readiness:
    """Starting until `done` is called, once the warm-up ended (well or not)."""

    def __init__(self, ready: bool = False) -> None:
        self._ready = threading.Event()
        self._started = time.monotonic()
        self.problem: str | None = None
        if ready:
            self._ready.set()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def done(self, problem: str | None = None) -> None:
        """The warm-up ended; `problem` says what failed (commands then explain it themselves)."""
        self.problem = problem
        self._ready.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    def report(self) -> tuple[int, dict]:
        """(HTTP status, body) for /readyz: 503 while starting, 200 after."""
        if not self.ready:
            return 503, {"status": "starting", "seconds": round(time.monotonic() - self._started)}
        body: dict[str, Any] = {"status": "ready"}
        if self.problem:
            body["problem"] = self.problem
        return 200, body


def _opens_a_link(body: dict) -> bool:
    """A press of "Open in CRM" (a link button, which needs no data: it needs only its ack)."""
    actions = body.get("actions")
    first = actions[0] if isinstance(actions, list) and actions else None
    return isinstance(first, dict) and first.get("action_id") == ACTION_OPEN_CRM


def install(app: App, readiness: Readiness) -> None:
    """While starting, answer Slack's commands and buttons with `STARTING`, privately, without
    running their listeners. Register before any middleware that takes over `ack`."""

    @app.middleware
    def while_starting(body: dict, respond: Respond, next: Callable[[], Any]) -> Any:  # noqa: A002 - Bolt's name
        if readiness.ready:
            return next()
        if body.get("command"):  # a slash command: the ack's body is the private answer
            answer = {"response_type": "ephemeral", "text": STARTING}
            return BoltResponse(status=200, body=json.dumps(answer),
                                headers={"content-type": "application/json;charset=utf-8"})  # fmt: skip
        if _opens_a_link(body):  # "Open in CRM": the browser opened it; nothing to say
            return BoltResponse(status=200, body="")
        if body.get("response_url"):  # a button: Slack shows nothing of its ack
            try:
                respond(text=STARTING, response_type="ephemeral", replace_original=False)
            except Exception:  # the click is acked either way; the log says why no note came
                log.warning("could not tell a user revbot is starting", exc_info=True)
            return BoltResponse(status=200, body="")
        return next()
