"""A loopback fake of Slack's Socket Mode, so the real slack_sdk client is driven end to end.

Slack's side of the protocol (docs.slack.dev/apis/events-api/using-socket-mode), as the
built-in client of slack_sdk expects it (slack_sdk/socket_mode/client.py and builtin/):

- the app calls apps.connections.open with its xapp- token and gets a WebSocket URL;
- on connecting it is sent {"type": "hello", ...};
- each request is an envelope {"envelope_id", "type": "slash_commands" | "interactive" |
  "events_api", "payload", "accepts_response_payload"} (events add "retry_attempt" and
  "retry_reason"), which the app must acknowledge within 3 s with {"envelope_id", "payload"?};
  the payload of a slash command's ack is the user's immediate answer;
- {"type": "disconnect", "reason": "refresh_requested"} asks the app to open a new socket (a new
  apps.connections.open) and drop the old one.

The server is the `websockets` library's (a maintained RFC 6455 implementation: the handshake,
masking, ping/pong and close come from it, not from a reading of the protocol that could share
the client's mistakes), on an ephemeral 127.0.0.1 port, a thread per connection. Each URL it
hands out carries a fresh ticket that connects once, so a reconnect that skipped
apps.connections.open is refused, as a stale URL is by Slack.

    with FakeSlack() as slack, FakeSocketMode() as sock:
        sock.attach(slack)  # apps.connections.open now answers a URL of this server
        ...  # start the app; then
        sock.wait_connection()
        ack = sock.wait_ack(sock.slash_command({"command": "/deal", ...}))
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

if TYPE_CHECKING:
    from tests.fakeslack import FakeSlack

ACK_DEADLINE = 3.0  # seconds Slack waits for an acknowledgement


@dataclass
class Connection:
    """One WebSocket the app opened, with the ticket of the URL it used."""

    number: int  # 1 for the first connection, 2 for the one after a reconnect...
    ticket: str
    ws: ServerConnection
    opened: float  # time.monotonic()
    closed: threading.Event = field(default_factory=threading.Event)
    close_code: int | None = None  # None if the client dropped the socket without a close frame


@dataclass
class Envelope:
    """One envelope sent to the app."""

    envelope_id: str
    type: str
    message: dict[str, Any]
    connection: int
    sent: float  # time.monotonic()


@dataclass
class Ack:
    """The app's acknowledgement of an envelope."""

    envelope_id: str
    payload: dict[str, Any] | None  # None for a bare ack
    connection: int
    at: float  # time.monotonic()
    after: float  # seconds since its envelope was sent


class FakeSocketMode:
    """The server plus everything it sent and received; state is guarded by one condition."""

    def __init__(self, app_id: str = "A0001") -> None:
        self.app_id = app_id
        self.connections: list[Connection] = []
        self.envelopes: dict[str, Envelope] = {}
        self.acks: dict[str, Ack] = {}
        self.received: list[tuple[int, str]] = []  # (connection, text) of every client message
        self.unexpected: list[str] = []  # client messages that are not an ack of our envelopes
        self.refused: list[str] = []  # tickets refused at the handshake (unknown or used)
        self._issued: set[str] = set()
        self._used: set[str] = set()
        self._tickets = itertools.count(1)
        self._events = itertools.count(1)
        self._changed = threading.Condition()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> FakeSocketMode:
        self._server = serve(self._handle, "127.0.0.1", 0, process_request=self._check_ticket,
                             compression=None)  # fmt: skip
        self.port = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server and self._thread:
            self._server.shutdown()  # closes the connections still open (1001) and waits
            self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self) -> FakeSocketMode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def attach(self, slack: FakeSlack) -> None:
        """Make `slack`'s apps.connections.open answer with a fresh URL of this server."""
        slack.socket_url = self.issue_url

    def issue_url(self) -> str:
        """A new WebSocket URL, good for one connection (what apps.connections.open returns)."""
        ticket = f"ticket-{next(self._tickets)}"
        with self._changed:
            self._issued.add(ticket)
        return f"ws://127.0.0.1:{self.port}/link/?ticket={ticket}&app_id={self.app_id}"

    # -- what Slack sends --------------------------------------------------------------------
    def send(self, kind: str, payload: dict[str, Any], **fields: Any) -> str:
        """Send an envelope of `kind` on the newest open connection; returns its envelope_id."""
        conn = self._current()
        envelope_id = str(uuid.uuid4())
        message = {"envelope_id": envelope_id, "type": kind, "payload": payload} | fields
        with self._changed:
            self.envelopes[envelope_id] = Envelope(envelope_id, kind, message, conn.number,
                                                   time.monotonic())  # fmt: skip
        conn.ws.send(json.dumps(message))
        return envelope_id

    def slash_command(self, payload: dict[str, Any]) -> str:
        """A slash command (the fields of Slack's HTTP form, as a JSON object)."""
        return self.send("slash_commands", payload, accepts_response_payload=True)

    def interactive(self, payload: dict[str, Any]) -> str:
        """A button press or another interaction (the `payload` of Slack's HTTP form)."""
        return self.send("interactive", payload, accepts_response_payload=False)

    def event(self, event: dict[str, Any], retry_attempt: int = 0) -> str:
        """An Events API callback wrapping `event`."""
        payload = {
            "token": "unused", "team_id": "T0001", "api_app_id": self.app_id, "event": event,
            "type": "event_callback", "event_id": f"Ev{next(self._events):08d}",
            "event_time": int(time.time()), "is_ext_shared_channel": False,
            "authorizations": [{"team_id": "T0001", "user_id": "UBOT", "is_bot": True}],
        }  # fmt: skip
        return self.send("events_api", payload, accepts_response_payload=False,
                         retry_attempt=retry_attempt, retry_reason="" if not retry_attempt else "timeout")  # fmt: skip

    def disconnect(self, reason: str = "refresh_requested") -> Connection:
        """Ask the app to reconnect, on the newest open connection (which stays open: the app
        is expected to drop it once its new one is up). Returns that connection."""
        conn = self._current()
        conn.ws.send(json.dumps({"type": "disconnect", "reason": reason,
                                 "debug_info": {"host": "applink-fake"}}))  # fmt: skip
        return conn

    def nudge(self) -> None:
        """Ping every open connection. slack_sdk's client closes its socket only between two
        reads, each waiting up to 3 s for data: a ping wakes it, so a test's stop takes about
        a second (its message queue's own wait), and the socket is still closed by the app,
        not by this server."""
        with self._changed:
            open_ = [c for c in self.connections if not c.closed.is_set()]
        for conn in open_:
            with contextlib.suppress(ConnectionClosed):
                conn.ws.ping()

    # -- inspection --------------------------------------------------------------------------
    def wait_connection(self, count: int = 1, timeout: float = 10.0) -> Connection:
        """The `count`-th connection, once it was sent its hello."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.connections) >= count, timeout):
                raise AssertionError(
                    f"expected {count} connection(s) within {timeout}s, got "
                    f"{len(self.connections)}; refused tickets: {self.refused or 'none'}"
                )
            return self.connections[count - 1]

    def wait_ack(self, envelope_id: str, timeout: float = ACK_DEADLINE) -> Ack:
        """The acknowledgement of an envelope, or an AssertionError after `timeout` seconds."""
        with self._changed:
            if not self._changed.wait_for(lambda: envelope_id in self.acks, timeout):
                kind = self.envelopes[envelope_id].type if envelope_id in self.envelopes else "?"
                raise AssertionError(
                    f"no ack of the {kind} envelope {envelope_id} within {timeout}s; "
                    f"acks seen: {len(self.acks)}, other messages: {self.unexpected or 'none'}"
                )
            return self.acks[envelope_id]

    # -- the server side (runs on the server's threads) --------------------------------------
    def _current(self) -> Connection:
        with self._changed:
            open_ = [c for c in self.connections if not c.closed.is_set()]
        if not open_:
            raise AssertionError("the app has no open Socket Mode connection")
        return open_[-1]

    def _check_ticket(self, ws: ServerConnection, request: Request) -> Response | None:
        """Refuse a URL this fake did not hand out, or one already used."""
        ticket = parse_qs(urlsplit(request.path).query).get("ticket", [""])[0]
        with self._changed:
            if ticket in self._issued and ticket not in self._used:
                self._used.add(ticket)
                return None
            self.refused.append(ticket)
        return ws.respond(HTTPStatus.UNAUTHORIZED, "invalid or used ticket\n")

    def _handle(self, ws: ServerConnection) -> None:
        ticket = parse_qs(urlsplit(ws.request.path).query)["ticket"][0]
        with self._changed:
            conn = Connection(len(self.connections) + 1, ticket, ws, time.monotonic())
        hello = {"type": "hello", "num_connections": 1,
                 "debug_info": {"host": "applink-fake", "approximate_connection_time": 3600},
                 "connection_info": {"app_id": self.app_id}}  # fmt: skip
        try:
            ws.send(json.dumps(hello))
            with self._changed:  # listed (and usable by `send`) once it was greeted
                self.connections.append(conn)
                self._changed.notify_all()
            for text in ws:
                self._receive(conn, text if isinstance(text, str) else text.decode())
        except ConnectionClosed:
            pass  # the app dropped the socket without a close frame, as slack_sdk's client does
        finally:
            conn.close_code = ws.close_code
            conn.closed.set()
            with self._changed:
                self._changed.notify_all()

    def _receive(self, conn: Connection, text: str) -> None:
        now = time.monotonic()
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        with self._changed:
            self.received.append((conn.number, text))
            envelope_id = message.get("envelope_id") if isinstance(message, dict) else None
            envelope = self.envelopes.get(envelope_id) if isinstance(envelope_id, str) else None
            if envelope is None or envelope_id in self.acks:
                self.unexpected.append(text)
            else:
                payload = message.get("payload")
                self.acks[envelope_id] = Ack(envelope_id, payload, conn.number, now,
                                             now - envelope.sent)  # fmt: skip
            self._changed.notify_all()
