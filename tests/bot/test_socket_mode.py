"""Socket Mode start-up smoke test: with SLACK_APP_TOKEN set, `serve` asks Slack for a socket
with the app-level token (apps.connections.open), accepts no HTTP events, still answers
/healthz, keeps the token out of the log, and stops cleanly. The socket itself is not faked:
its URL points at a closed loopback port, and the listeners are tested over HTTP elsewhere."""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request

from bot.serve import serve
from bot.settings import Secrets, Settings
from tests.bot.slackenv import TOKEN
from tests.fakeslack import FakeSlack

APP_TOKEN = "xapp-1-A0001-000-socket-secret"


def test_socket_mode_starts_with_the_app_token(small_crm, db_copy, caplog):
    caplog.set_level(logging.DEBUG)
    with FakeSlack() as slack:
        settings = Settings(secrets=Secrets(bot_token=TOKEN, app_token=APP_TOKEN, api_url=slack.base_url))  # fmt: skip
        ready, stop = threading.Event(), threading.Event()
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        worker = threading.Thread(
            target=serve, args=(settings, {}), daemon=True,
            kwargs=dict(db_path=db_copy, artifacts=small_crm["artifacts"], host="127.0.0.1",
                        port=port, scheduler=False, ready=ready, stop=stop),
        )  # fmt: skip
        worker.start()
        try:
            assert ready.wait(60)
            (opened, *_) = slack.wait_for("apps.connections.open", timeout=10)
            assert opened.headers["authorization"] == f"Bearer {APP_TOKEN}"
            root = f"http://127.0.0.1:{port}"
            with urllib.request.urlopen(root + "/healthz", timeout=5) as r:
                assert json.loads(r.read())["latest_run"]["run_id"] == 1
            try:
                urllib.request.urlopen(urllib.request.Request(root + "/slack/events", data=b"x"))
                raise AssertionError("Socket Mode must not accept events over HTTP")
            except urllib.error.HTTPError as e:
                assert e.code == 404
        finally:
            stop.set()
            worker.join(timeout=15)
        assert not worker.is_alive()
    assert APP_TOKEN not in caplog.text and TOKEN not in caplog.text
