"""Buttons and commands Slack delivers in a shape the listener does not expect (a digest posted by
an older version, a payload edited in transit) are acked at once and answered clearly, through
Bolt's real request handling on the served app."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qsl, urlencode

import pytest

from bot import ledger
from bot.listeners import ACTION_ACK, ACTION_IDS, ACTION_SNOOZE
from bot.listeners.payload import UNKNOWN_USER, UNREADABLE_BUTTON
from dataset import score_runs
from tests.bot.slackenv import HOSTILE_ID, LEADER, command_body, post

BAD_VALUES = [
    "",
    "garbage",
    "7",
    "7:",
    f":{HOSTILE_ID}",
    f"x:{HOSTILE_ID}",
    f"-1:{HOSTILE_ID}",
    f"1.0:{HOSTILE_ID}",
    f"١:{HOSTILE_ID}",  # an Arabic-Indic digit: str.isdigit says yes, int() would take it
    f"99999999999999999999999:{HOSTILE_ID}",  # beyond SQLite's integers
    "1:" + "A" * 300,
    "1:\x00\x01",
    None,  # no value at all
    7,  # a number, not a string
    ["1:D1"],
]
WRONG_SHAPES = [
    {"user": None},
    {"user": {"id": 42}},
    {"channel": "C0DIGEST"},  # snooze and acknowledge need the channel's id
]
SORRY = "something went wrong"


def _press(action_id: str, value, url: str, **override) -> bytes:
    payload = {
        "type": "block_actions", "user": {"id": LEADER, "team_id": "T0001"},
        "api_app_id": "A0001", "token": "unused", "trigger_id": "1.2.3",
        "team": {"id": "T0001", "domain": "acme"},
        "container": {"type": "message", "message_ts": "1.2", "channel_id": "C0DIGEST"},
        "channel": {"id": "C0DIGEST", "name": "digest"},
        "message": {"ts": "1700000000.000100", "text": "Pipeline digest", "blocks": []},
        "response_url": url,
        "actions": [{"action_id": action_id, "block_id": "deal:x", "type": "button",
                     "action_ts": str(time.time())} | ({} if value is None else {"value": value})],
    } | override  # fmt: skip
    return urlencode({"payload": json.dumps(payload)}).encode()


def _answer(served, url: str) -> dict:
    path = "/" + url.split("/", 3)[3]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        answers = [c for c in served.slack.calls_to("response_url") if c.path == path and c.ok]
        if answers:
            assert len(answers) == 1
            return answers[0].params
        time.sleep(0.01)
    raise AssertionError(f"no answer at {path}")


def _acked(served, body: bytes) -> None:
    started = time.monotonic()
    reply = post(served.url, body)
    assert reply.status == 200 and time.monotonic() - started < 2.5, reply


@pytest.mark.parametrize("action_id", ACTION_IDS)
def test_a_button_value_it_cannot_read_gets_a_clear_answer(served, action_id):
    for value in BAD_VALUES:
        url = served.slack.response_url("bad")
        _acked(served, _press(action_id, value, url))
        answer = _answer(served, url)
        assert answer["text"] == UNREADABLE_BUTTON, (value, answer)
        assert answer["response_type"] == "ephemeral" and answer["replace_original"] is False
    assert ledger.marks(served.services.reader.db(), "C0DIGEST").empty
    assert served.slack.calls_to("chat.update") == []


@pytest.mark.parametrize("action_id", [ACTION_SNOOZE, ACTION_ACK])
def test_a_press_of_the_wrong_shape_gets_a_clear_answer(served, action_id):
    value = f"{score_runs.latest_run(served.services.reader.db())['run_id']}:{HOSTILE_ID}"
    for override in WRONG_SHAPES:
        url = served.slack.response_url("shape")
        _acked(served, _press(action_id, value, url, **override))
        assert _answer(served, url)["text"] == UNREADABLE_BUTTON, override
    assert ledger.marks(served.services.reader.db(), "C0DIGEST").empty
    # a message Slack sent in an odd shape: the decision is kept, only the digest is not edited
    url = served.slack.response_url("shape")
    _acked(served, _press(action_id, value, url, message={"ts": 5, "blocks": "not a list"}))
    deadline = time.monotonic() + 10
    while (
        ledger.marks(served.services.reader.db(), "C0DIGEST").empty and time.monotonic() < deadline
    ):
        time.sleep(0.02)
    assert ledger.marks(served.services.reader.db(), "C0DIGEST")["deal_id"].tolist() == [HOSTILE_ID]
    time.sleep(0.3)
    assert served.slack.calls_to("chat.update") == []


def test_a_well_formed_value_for_no_such_deal_says_so(served):
    url = served.slack.response_url("gone")
    _acked(served, _press(ACTION_IDS[0], "1:NO-SUCH-DEAL", url))
    assert _answer(served, url)["text"] == "That deal is not one you can see."
    url = served.slack.response_url("gone")
    _acked(served, _press(ACTION_IDS[0], "999:" + HOSTILE_ID, url))  # a run that never was
    assert _answer(served, url)["text"] == "That deal is not one you can see."


ODD_TEXTS = ["share", "   share   ", "x" * 4000, "&lt;!nobody&gt;", "q9", "2025-Q", "next next next",
             "\x00Atlantis\x01"]  # fmt: skip


@pytest.mark.parametrize("command", ["/deal", "/forecast"])
def test_odd_command_text_gets_a_helpful_answer(served, command):
    for text in ODD_TEXTS + (["\x00\x01\x02"] if command == "/deal" else []):
        url = served.slack.response_url("odd")
        _acked(served, command_body(command, text, LEADER, url))
        answer = _answer(served, url)
        assert answer["response_type"] == "ephemeral", (text, answer)
        assert SORRY not in answer["text"] and "Traceback" not in answer["text"]
        assert "*Usage:*" in answer["text"] or "I found no open deal" in answer["text"], answer
    assert served.slack.calls_to("files.completeUploadExternal") == []


@pytest.mark.parametrize("command", ["/deal", "/forecast"])
@pytest.mark.parametrize("missing", ["user_id", "channel_id"])
def test_a_command_without_who_or_where_is_answered(served, command, missing):
    url = served.slack.response_url("who")
    form = parse_qsl(command_body(command, HOSTILE_ID, LEADER, url).decode())
    _acked(served, urlencode([(k, v) for k, v in form if k != missing]).encode())
    answer = _answer(served, url)
    if command == "/deal" and missing == "channel_id":  # /deal needs no channel
        assert "*Win probability*" in json.dumps(answer["blocks"])
    else:
        assert answer["text"] == UNKNOWN_USER
