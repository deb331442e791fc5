"""The door in front of Bolt for HTTP mode: requests Bolt should never run, answered here.

Bolt answers 500 to a request it cannot parse (a non-numeric `X-Slack-Request-Timestamp`, an
interactive `payload` that is not a JSON object, a body that is not UTF-8), and on a 500 our error
handler would even answer the unverified request's `response_url`. It also runs a signed request
as often as it arrives within Slack's 5-minute window. So, before Bolt:

- an unreadable timestamp or a bad signature gets 401, like Bolt's own refusal;
- a signed body that cannot be a Slack payload gets 400;
- a signature already seen within the window (a replay) is dropped, and a Slack retry
  (`X-Slack-Retry-Num`: Slack did not get our answer in time, but the work was started) is
  acked, in both cases with an empty 200 and without running the listener again.

Socket Mode needs none of this: its payloads come over an authenticated socket, not HTTP.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from urllib.parse import parse_qs

from slack_sdk.signature import SignatureVerifier

log = logging.getLogger(__name__)
WINDOW = 300  # seconds: Slack's (and slack_sdk's) limit on a request's age
MAX_REMEMBERED = 100_000  # signatures kept at most, oldest dropped first (memory stays bounded)
MAX_BODY = 1_000_000  # bytes: Slack's payloads are a few kilobytes

WsgiApp = Callable[[dict, Callable], Iterable[bytes]]


class Refused(Exception):
    """A request answered at the door: HTTP status and a short JSON reason."""

    def __init__(self, status: str, error: str):
        super().__init__(error)
        self.status, self.error = status, error


def payload_problem(body: str, content_type: str) -> str | None:
    """Why `body` cannot be a Slack request Bolt can route (None if it can)."""
    if "application/json" in content_type:
        try:
            data = json.loads(body)
        except ValueError:
            return "the body is not JSON"
        return None if isinstance(data, dict) else "the body is not a JSON object"
    form = parse_qs(body, keep_blank_values=True)
    if "payload" not in form:
        return None  # a slash command: plain form fields
    try:
        data = json.loads(form["payload"][0])
    except ValueError:
        return "the payload field is not JSON"
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        return "the payload is not a JSON object with a type"
    if data["type"] == "block_actions":
        actions = data.get("actions")
        if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
            return "a block_actions payload without actions"
        if not isinstance(actions[0].get("action_id"), str):
            return "an action without an action_id"
    return None


class Gate:
    """WSGI middleware around Bolt's handler for POST `path`; everything else passes through."""

    def __init__(self, inner: WsgiApp, signing_secret: str, path: str = "/slack/events",
                 clock: Callable[[], float] = time.time):  # fmt: skip
        self.inner, self.path, self.clock = inner, path, clock
        self.verifier = SignatureVerifier(signing_secret)
        self._seen: OrderedDict[str, float] = OrderedDict()  # signature -> when it expires
        self._lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") != self.path:
            return self.inner(environ, start_response)
        try:
            body, run = self._admit(environ)
        except Refused as no:
            return _answer(start_response, no.status, {"error": no.error})
        if not run:
            return _answer(start_response, "200 OK", None)
        inner = dict(environ, **{"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))})
        try:
            return self.inner(inner, start_response)
        except (
            Exception
        ) as exc:  # Bolt could not build its request from the body: the sender's fault
            log.warning("unparseable request refused: %s", type(exc).__name__)
            return _answer(start_response, "400 Bad Request", {"error": "malformed request"})

    def _admit(self, environ: dict) -> tuple[bytes, bool]:
        """The body, and whether to run it (False: a replay or a Slack retry, acked empty)."""
        length = environ.get("CONTENT_LENGTH") or "0"
        if not length.isascii() or not length.isdigit() or int(length) > MAX_BODY:
            raise Refused("400 Bad Request", "bad content length")
        body = environ["wsgi.input"].read(int(length)) if int(length) else b""
        stamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", "")
        signature = environ.get("HTTP_X_SLACK_SIGNATURE", "")
        if not (stamp.isascii() and stamp.isdigit()):
            raise Refused("401 Unauthorized", "invalid request")
        try:  # before the signature: slack_sdk's verifier decodes the body and would raise
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused("400 Bad Request", "the body is not UTF-8") from None
        if not self.verifier.is_valid(text, stamp, signature):
            raise Refused("401 Unauthorized", "invalid request")
        if problem := payload_problem(text, environ.get("CONTENT_TYPE", "")):
            raise Refused("400 Bad Request", problem)
        if not self._first_time(signature):
            log.warning("a signed request arrived again within %d s: dropped", WINDOW)
            return body, False
        if environ.get("HTTP_X_SLACK_RETRY_NUM"):
            log.info("Slack retry %s acked, not run again", environ["HTTP_X_SLACK_RETRY_NUM"])
            return body, False
        return body, True

    def _first_time(self, signature: str) -> bool:
        """Remember a verified signature for the window; False if it was already there."""
        now = self.clock()
        with self._lock:
            while self._seen and next(iter(self._seen.values())) < now:
                self._seen.popitem(last=False)
            if signature in self._seen:
                return False
            self._seen[signature] = now + 2 * WINDOW  # a timestamp may be up to WINDOW ahead
            while len(self._seen) > MAX_REMEMBERED:
                self._seen.popitem(last=False)
            return True


def _answer(start_response: Callable, status: str, body: dict | None) -> list[bytes]:
    data = json.dumps(body).encode() if body is not None else b""
    headers = [("Content-Length", str(len(data)))]
    if body is not None:
        headers.append(("Content-Type", "application/json"))
    start_response(status, headers)
    return [data]
