"""HTTP in front of the Bolt app: Slack's requests at POST /slack/events; GET /healthz (the
process is up) and GET /readyz (warmed up: 200, or 503 while starting) for monitors.

Served by waitress: maintained, pure Python (no compiler, runs wherever revbot runs, the slim
container included), a listen backlog and a worker pool we size ourselves, and one I/O thread
that reads whole requests before a worker sees them. The standard library's wsgiref server it
replaces listened with a backlog of 5 and lost most of a 200-request burst
(benchmarks/serve_bench.py).

A waitress worker only waits for the listener's ack (milliseconds: see bot/handoff.py), so a few
dozen of them absorb a burst; the connections beyond them wait in waitress, not in the kernel.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from waitress.server import create_server

from bot.gate import Gate
from bot.reader import Reader
from bot.readiness import Readiness

log = logging.getLogger(__name__)
BACKLOG = 2048  # connections the kernel queues before waitress accepts them (Linux caps it)
THREADS = 32  # waitress workers: requests handed to Bolt at once
CONNECTIONS = 1000  # open connections waitress keeps reading (each one a file descriptor)
MAX_BODY = 1_000_000  # bytes: Slack's payloads are a few kilobytes

WsgiApp = Callable[[dict, Callable], Iterable[bytes]]


def health(reader: Reader) -> dict:
    """What a monitor needs: is the database readable, and how fresh is the latest run."""
    run = reader.latest_header()
    return {
        "ok": True,
        "latest_run": run and {"run_id": run["run_id"], "as_of": run["as_of"],
                               "created_at": run["created_at"]},
    }  # fmt: skip


def _json(start_response: Callable, status: int, body: dict) -> list[bytes]:
    reasons = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}
    data = json.dumps(body).encode()
    start_response(f"{status} {reasons[status]}", [("Content-Type", "application/json"),
                                                   ("Content-Length", str(len(data)))])  # fmt: skip
    return [data]


def wsgi_app(app: App | None, reader: Reader, readiness: Readiness | None = None) -> WsgiApp:
    """The WSGI callable; with `app` None (Socket Mode) only /healthz and /readyz are served.
    Without `readiness` the bot counts as ready (it was warmed up before serving). Slack's
    requests pass the `Gate` (malformed, replayed or retried requests stop there) before Bolt."""
    slack = SlackRequestHandler(app) if app is not None else None
    secret = reader.settings.secrets.signing_secret
    if slack is not None and secret:
        slack = Gate(slack, secret)
    readiness = readiness or Readiness(ready=True)

    def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO"), environ["REQUEST_METHOD"]
        if path == "/healthz" and method == "GET":
            try:
                body, status = health(reader), 200
            except Exception as exc:  # the monitor should see a failure, not a hang
                body, status = {"ok": False, "error": type(exc).__name__}, 503
            ready = readiness.report()[1]["status"]
            return _json(start_response, status, body | {"status": ready})
        if path == "/readyz" and method == "GET":
            return _json(start_response, *readiness.report())
        if slack is not None:
            return slack(environ, start_response)
        return _json(start_response, 404, {"error": "not found"})

    return application


class HttpServer:
    """waitress serving on a thread; `server_port` is the port bound (port 0 picks a free one).
    The names follow the standard library's servers, which this one replaced."""

    def __init__(self, application: WsgiApp, host: str, port: int, *, threads: int = THREADS,
                 backlog: int = BACKLOG) -> None:  # fmt: skip
        self._map: dict = {}  # waitress's socket map: ours, so `shutdown` can close it
        self._server = create_server(
            application, map=self._map, host=host, port=port, ipv6=False, threads=threads,
            backlog=backlog, connection_limit=CONNECTIONS, max_request_body_size=MAX_BODY,
            asyncore_use_poll=True,  # select() stops at 1024 file descriptors
            ident="revbot",
        )  # fmt: skip
        self.server_port: int = self._server.effective_port
        self._thread = threading.Thread(target=self._server.run, name="http", daemon=True)

    def start(self) -> HttpServer:
        self._thread.start()
        return self

    def shutdown(self, timeout: float = 5) -> None:
        """Stop accepting, close every connection, let the workers finish (up to `timeout`)."""

        def close_all() -> None:  # runs on waitress's I/O thread, the only one touching the map
            for channel in list(self._map.values()):
                channel.close()

        if self._thread.is_alive():
            try:
                self._server.trigger.pull_trigger(close_all)
            except OSError as exc:  # the I/O thread's wake-up pipe is already closed
                # (seen once in CI, cause unknown): close from here rather than fail to stop
                log.warning("HTTP server's wake-up pipe closed before shutdown (%s)", exc)
                close_all()
            self._thread.join(timeout)
        self._server.task_dispatcher.shutdown(cancel_pending=True, timeout=timeout)

    def server_close(self) -> None:
        """Nothing left to close after `shutdown`; kept for callers written for socketserver."""


def serve_background(application: WsgiApp, host: str, port: int) -> tuple[HttpServer, threading.Thread]:  # fmt: skip
    """Start serving on a thread; port 0 picks a free one (`server.server_port`)."""
    server = HttpServer(application, host, port).start()
    return server, server._thread
