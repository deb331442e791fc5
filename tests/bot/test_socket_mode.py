"""Socket Mode end to end: the real `serve()` with SLACK_APP_TOKEN set, its slack_sdk client
connected to a loopback Socket Mode server (tests/fakesocket.py) that FakeSlack's
apps.connections.open points at. Slash commands, button presses and events arrive as envelopes;
each must be acknowledged within Slack's 3 s, and the answers (response_url posts, uploads)
must be the ones the HTTP path gives for the same request. Also: Slack's "disconnect" is
followed by a reconnect that keeps working, and no token reaches the log.

The first test starts `serve` with nothing serving the socket (its URL points at a closed
loopback port): start-up must not depend on the socket."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from bot import serve as serve_module
from bot.listeners import ACTION_WHY
from bot.readiness import STARTING
from bot.serve import serve
from bot.settings import Secrets, Settings
from dataset.money import chance
from tests.bot.slackenv import LEADER, TOKEN, action_body, command_body, post, settings_for
from tests.fakeslack import FakeSlack
from tests.fakesocket import ACK_DEADLINE, Ack, FakeSocketMode

APP_TOKEN = "xapp-1-A0001-000-socket-secret"
DIGEST = {"ts": "1700000000.000100", "text": "Pipeline digest", "blocks": []}  # a posted digest
SORRY = "Sorry, something went wrong on my side"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_socket_mode_starts_with_the_app_token(small_crm, db_copy, caplog):
    caplog.set_level(logging.DEBUG)
    with FakeSlack() as slack:
        settings = Settings(secrets=Secrets(bot_token=TOKEN, app_token=APP_TOKEN, api_url=slack.base_url))  # fmt: skip
        ready, stop = threading.Event(), threading.Event()
        port = free_port()
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


# --- the bot over a served socket -----------------------------------------------------------


@dataclass
class SocketBot:
    slack: FakeSlack
    sock: FakeSocketMode
    root: str  # http://127.0.0.1:PORT, for /healthz and /readyz
    data: dict  # small_crm: the scores and the people


def readyz(root: str) -> int:
    try:
        with urllib.request.urlopen(root + "/readyz", timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


@contextlib.contextmanager
def running_bot(small_crm: dict, db_path: Path, warm: bool = True) -> Iterator[SocketBot]:
    """`serve` in Socket Mode (the roster of the HTTP tests, an app token, no signing secret)
    on a thread, connected to the loopback socket; with `warm`, once the warm-up is done."""
    with FakeSlack() as slack, FakeSocketMode() as sock:
        sock.attach(slack)
        http = settings_for(slack.base_url, small_crm["who"])
        settings = dataclasses.replace(http, secrets=Secrets(bot_token=TOKEN, app_token=APP_TOKEN, api_url=slack.base_url))  # fmt: skip
        port, listening, stop = free_port(), threading.Event(), threading.Event()
        worker = threading.Thread(
            target=serve, args=(settings, {}), daemon=True,
            kwargs=dict(db_path=db_path, artifacts=small_crm["artifacts"], host="127.0.0.1",
                        port=port, scheduler=False, ready=listening, stop=stop),
        )  # fmt: skip
        worker.start()
        root = f"http://127.0.0.1:{port}"
        try:
            assert listening.wait(60)
            sock.wait_connection()
            deadline = time.monotonic() + 60
            while warm and readyz(root) != 200:
                assert time.monotonic() < deadline, "never ready"
                time.sleep(0.05)
            yield SocketBot(slack, sock, root, small_crm)
        finally:
            stop.set()
            deadline = time.monotonic() + 15
            while worker.is_alive() and time.monotonic() < deadline:
                sock.nudge()
                worker.join(timeout=0.05)
        assert not worker.is_alive(), "serve did not stop"
        assert sock.connections[-1].closed.wait(5), "the socket was left open"
        assert sock.unexpected == [], "the client sent something other than acks"
        sent = "".join(text for _, text in sock.received)
        assert TOKEN not in sent and APP_TOKEN not in sent


@pytest.fixture
def app(small_crm, db_copy, caplog) -> Iterator[SocketBot]:
    caplog.set_level(logging.DEBUG)
    with running_bot(small_crm, db_copy) as running:
        yield running
    assert APP_TOKEN not in logged(caplog) and TOKEN not in logged(caplog)


def logged(caplog) -> str:
    """The whole test's log, start-up included (`caplog.text` holds only the current phase's)."""
    text = logging.Formatter("%(name)s %(message)s")
    phases = ("setup", "call", "teardown")
    return "\n".join(text.format(r) for when in phases for r in caplog.get_records(when))


def slash(app: SocketBot, command: str, text: str, user: str = LEADER,
          channel: str = "C0SALES", **change: str | None) -> tuple[Ack, str]:  # fmt: skip
    """Send a slash command envelope (the HTTP tests' form, as JSON; `change` replaces or, with
    None, removes fields); return its ack and its response_url."""
    url = app.slack.response_url("sock")
    body = command_body(command, text, user, url, channel).decode()
    payload = dict(parse_qsl(body, keep_blank_values=True)) | change
    payload = {k: v for k, v in payload.items() if v is not None}
    ack = app.sock.wait_ack(app.sock.slash_command(payload))
    assert ack.after < ACK_DEADLINE
    return ack, url


def click(app: SocketBot, action_id: str, value: str, user: str = LEADER) -> tuple[Ack, str]:
    """Press a digest button over the socket; return the ack and the response_url."""
    url = app.slack.response_url("sock-act")
    form = dict(parse_qsl(action_body(action_id, value, user, url, DIGEST).decode()))
    ack = app.sock.wait_ack(app.sock.interactive(json.loads(form["payload"])))
    assert ack.after < ACK_DEADLINE
    return ack, url


def over_http(served, command: str, text: str, user: str = LEADER) -> dict:
    """What the HTTP path answers to the same command (tests/bot/conftest.py's served app)."""
    url = served.slack.response_url("http")
    reply = post(served.url, command_body(command, text, user, url))
    assert reply.status == 200
    return served.slack.answer_at(url)


def said_to_slack(app: SocketBot) -> str:
    """Everything the bot sent Slack: acks, response_url posts and Web API calls."""
    acks = [json.dumps(a.payload) for a in app.sock.acks.values()]
    calls = [c.body.decode(errors="replace") for c in app.slack.calls]
    return "\n".join(acks + calls)


def test_deal_over_the_socket_answers_as_over_http(app, served):
    deal = app.data["scores"].iloc[0]
    ack, url = slash(app, "/deal", deal["deal_id"].lower())
    assert ack.payload is None  # acked at once; the answer follows on response_url
    answer = app.slack.answer_at(url)
    assert answer["response_type"] == "ephemeral"
    text = json.dumps(answer["blocks"], ensure_ascii=False)
    assert f"*Win probability*\\n{chance(deal['win_prob'])}" in text
    assert f"*Risk*\\n{deal['risk']:.0f} / 100" in text and "*Suggested next steps*" in text
    assert answer == over_http(served, "/deal", deal["deal_id"].lower())


def test_forecast_over_the_socket_uploads_the_chart_as_over_http(app, served):
    ack, _ = slash(app, "/forecast", "")
    assert ack.payload == {"text": "Working on the forecast; the chart follows in a moment."}
    (done,) = app.slack.wait_for("files.completeUploadExternal", timeout=30)
    assert done.params["channel_id"] == "C0SALES"
    (png,) = app.slack.uploads.values()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    reply = post(served.url, command_body("/forecast", "", LEADER, served.slack.response_url()))
    assert reply.body == ack.payload["text"]
    (http,) = served.slack.wait_for("files.completeUploadExternal", timeout=30)
    assert done.params["initial_comment"] == http.params["initial_comment"]
    assert "*Forecast for " in done.params["initial_comment"]
    assert app.slack.calls_to("response_url") == []  # nothing more to say


def test_why_button_over_the_socket(app):
    deal_id = app.data["scores"]["deal_id"].iloc[0]
    ack, url = click(app, ACTION_WHY, f"1:{deal_id}")
    assert ack.payload is None
    (call,) = app.slack.wait_for("views.open")
    assert deal_id in json.dumps(call.params["view"])
    assert "*Suggested next steps*" in json.dumps(call.params["view"]["blocks"])
    # a button it cannot read (a forged value) is acked and answered too
    ack, url = click(app, ACTION_WHY, "not-a-run:x")
    assert "I can't read this button" in app.slack.answer_at(url)["text"]


def test_events_are_acknowledged_even_those_nobody_listens_to(app):
    """revbot subscribes to no event, but an app whose settings gain one (or Slack itself) may
    send it: an envelope left unacknowledged is sent again and again by Slack."""
    mention = {"type": "app_mention", "user": LEADER, "text": "<@UBOT> hi", "channel": "C0SALES",
               "ts": "1700000001.000100", "event_ts": "1700000001.000100"}  # fmt: skip
    home = {"type": "app_home_opened", "user": LEADER, "tab": "messages"}
    # at once, so the client's workers take them in parallel (Bolt acks an event on the thread
    # that dispatches it: each of them once kept one of revbot's work slots for good)
    sent = [app.sock.event(e) for e in (mention, home, mention, home)]
    sent.append(app.sock.event(mention, retry_attempt=1))  # Slack's retry, too
    for envelope_id in sent:
        ack = app.sock.wait_ack(envelope_id)
        assert ack.payload is None and ack.after < ACK_DEADLINE
    deal_id = app.data["scores"]["deal_id"].iloc[0]
    _, url = slash(app, "/deal", deal_id)  # and the bot goes on working
    assert deal_id in json.dumps(app.slack.answer_at(url)["blocks"])
    assert app.slack.calls_to("chat.postMessage") == []  # no answer to an event


def test_bad_commands_get_help_over_the_socket(app, served):
    deal_id = app.data["scores"]["deal_id"].iloc[0]
    typo = deal_id[:-1] + ("X" if deal_id[-1] != "X" else "Y")
    for command, text, expected in [
        ("/deal", "", "*Usage:* `/deal &lt;deal id or account name&gt;`"),
        ("/deal", typo, f"I found no open deal with id or account *{typo}*"),
        ("/forecast", "Atlantis", "I don't know a region or manager called *Atlantis*"),
        ("/forecast", "1999-Q1", "not 1999-Q1"),
    ]:
        _, url = slash(app, command, text)
        answer = app.slack.answer_at(url)
        assert expected in answer["text"] and answer["response_type"] == "ephemeral"
        assert text != typo or f"`{deal_id}`" in answer["text"]  # the closest id is suggested
        assert answer == over_http(served, command, text)
    _, url = slash(app, "/deal", deal_id, user_id=None)  # Slack's payload without the user
    assert app.slack.answer_at(url)["text"].startswith("Slack did not tell me who is asking")
    assert app.slack.calls_to("files.completeUploadExternal") == []
    assert "Traceback" not in said_to_slack(app)


def test_a_failing_listener_says_sorry_without_the_traceback(app, monkeypatch):
    def broken(*_args):
        raise RuntimeError("internal detail: /srv/revbot/secret.db")

    monkeypatch.setattr("bot.listeners.commands.deal_answer", broken)
    ack, url = slash(app, "/deal", "anything")
    assert ack.payload is None
    answer = app.slack.answer_at(url)
    assert answer["text"].startswith(SORRY) and answer["response_type"] == "ephemeral"
    told = said_to_slack(app)
    assert "Traceback" not in told and "internal detail" not in told


def test_reconnects_after_slack_asks_and_keeps_answering(app):
    first = app.sock.disconnect("refresh_requested")
    second = app.sock.wait_connection(2)
    opened = app.slack.wait_for("apps.connections.open", 2)  # a new URL, asked for again
    assert [c.headers["authorization"] for c in opened] == [f"Bearer {APP_TOKEN}"] * 2
    assert second.ticket != first.ticket and app.sock.refused == []
    assert first.closed.wait(5), "the old socket was not dropped"
    deal_id = app.data["scores"]["deal_id"].iloc[1]
    ack, url = slash(app, "/deal", deal_id)
    assert ack.connection == 2
    assert deal_id in json.dumps(app.slack.answer_at(url)["blocks"])
    ack, url = click(app, ACTION_WHY, f"1:{deal_id}")
    (call,) = app.slack.wait_for("views.open")
    assert ack.connection == 2 and deal_id in json.dumps(call.params["view"])


def test_while_warming_up_the_ack_itself_says_starting(small_crm, db_copy, monkeypatch):
    """Over HTTP the "starting" note is the ack's body; over the socket it must be the ack's
    payload, which Slack shows the user as it shows an HTTP body."""
    release = threading.Event()
    warm = serve_module._warm

    def slow_warm(services):
        release.wait(30)
        return warm(services)

    monkeypatch.setattr(serve_module, "_warm", slow_warm)
    with running_bot(small_crm, db_copy, warm=False) as running:
        try:
            assert readyz(running.root) == 503
            ack, url = slash(running, "/deal", "anything")
            assert ack.payload == {"response_type": "ephemeral", "text": STARTING}
            ack, url = click(running, ACTION_WHY, "1:anything")
            assert ack.payload is None and running.slack.answer_at(url)["text"] == STARTING
        finally:
            release.set()


def test_home_tab_over_the_socket(app):
    """Warm: every roster member's Home tab is published once; opening it publishes it again,
    and its Details button opens the deal's modal, over the socket as over HTTP."""
    from bot.listeners import ACTION_DETAILS
    from tests.bot.slackenv import MANAGER, REP

    warm = app.slack.wait_for("views.publish", 3, timeout=30)
    assert sorted(c.params["user_id"] for c in warm) == sorted([LEADER, MANAGER, REP])
    event = {"type": "app_home_opened", "user": REP, "tab": "home", "channel": "D0001",
             "event_ts": str(time.time())}  # fmt: skip
    ack = app.sock.wait_ack(app.sock.event(event))
    assert ack.payload is None and ack.after < ACK_DEADLINE
    (call,) = app.slack.wait_for("views.publish", 4, timeout=30)[3:]
    view = call.params["view"]
    assert call.params["user_id"] == REP and view["type"] == "home"
    rep, scores = app.data["who"]["rep"], app.data["scores"].set_index("deal_id")
    buttons = [b["accessory"] for b in view["blocks"]
               if b.get("accessory", {}).get("action_id") == ACTION_DETAILS]  # fmt: skip
    assert buttons and {scores.at[b["value"].split(":", 1)[1], "owner"] for b in buttons} == {rep}
    payload = {"type": "block_actions", "user": {"id": REP}, "trigger_id": "7.8.9",
               "team": {"id": "T0001"}, "container": {"type": "view", "view_id": "V1"},
               "view": view, "actions": [buttons[0] | {"block_id": "x", "action_ts": "1"}]}  # fmt: skip
    ack = app.sock.wait_ack(app.sock.interactive(payload))
    assert ack.after < ACK_DEADLINE
    (opened,) = app.slack.wait_for("views.open", timeout=30)
    assert buttons[0]["value"].split(":", 1)[1] in json.dumps(opened.params["view"])
