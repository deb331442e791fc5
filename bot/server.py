"""HTTP in front of the Bolt app: Slack's requests at POST /slack/events, GET /healthz for
monitors. Standard library only (a threading WSGI server): the bot's traffic is a few requests a
minute, and every request's heavy part already runs on Bolt's listener threads."""

from __future__ import annotations

import json
import logging
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.gate import Gate
from bot.snapshot import Pipeline
from dataset import store

log = logging.getLogger(__name__)


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the stdlib's name
        log.debug("%s %s", self.address_string(), format % args)


def health(pipeline: Pipeline) -> dict:
    """What a monitor needs: is the database readable, and how fresh is the latest run."""
    run = store.latest_run(pipeline.db())
    return {
        "ok": True,
        "latest_run": run and {"run_id": run["run_id"], "as_of": run["as_of"],
                               "created_at": run["created_at"]},
    }  # fmt: skip


def wsgi_app(app: App | None, pipeline: Pipeline):
    """The WSGI callable; with `app` None (Socket Mode) only /healthz is served. Slack's requests
    pass the `Gate` (malformed, replayed or retried requests stop there) before Bolt."""
    slack = SlackRequestHandler(app) if app is not None else None
    secret = pipeline.settings.secrets.signing_secret
    if slack is not None and secret:
        slack = Gate(slack, secret)

    def application(environ, start_response):
        if environ.get("PATH_INFO") == "/healthz" and environ["REQUEST_METHOD"] == "GET":
            try:
                body, status = health(pipeline), "200 OK"
            except Exception as exc:  # the monitor should see a failure, not a hang
                body, status = {"ok": False, "error": type(exc).__name__}, "503 Service Unavailable"
            data = json.dumps(body).encode()
            start_response(status, [("Content-Type", "application/json"),
                                    ("Content-Length", str(len(data)))])  # fmt: skip
            return [data]
        if slack is not None:
            return slack(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"Not Found"]

    return application


def serve_background(application, host: str, port: int) -> tuple[WSGIServer, threading.Thread]:
    """Start serving on a thread; port 0 picks a free one (`server.server_port`)."""
    server = make_server(host, port, application, server_class=_ThreadingWSGIServer,
                         handler_class=_QuietHandler)  # fmt: skip
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), name="http", daemon=True)
    thread.start()
    return server, thread
