"""The door before Bolt, over real HTTP: unreadable timestamps get 401, unparseable payloads 400,
and a signed request replayed (or retried by Slack) inside the 5-minute window runs once."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from urllib.parse import urlencode

from tests.bot.slackenv import LEADER, Reply, command_body, sign

SORRY = "something went wrong"


def send(url: str, body: bytes, ts: str, *, signature: str | None = None, **headers) -> Reply:
    """POST `body` signed over `ts` (or with the given signature) plus any extra headers."""
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature or sign(body, ts),
    } | headers)  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return Reply(r.status, r.read().decode())
    except urllib.error.HTTPError as e:
        return Reply(e.code, e.read().decode())


def _answers(served, url: str, settle: float = 1.0) -> list[dict]:
    """Every response_url post to `url`, after the listeners have had `settle` seconds."""
    time.sleep(settle)
    path = "/" + url.split("/", 3)[3]
    return [c.params for c in served.slack.calls_to("response_url") if c.path == path]


STAMPS = ["abc", "1e9", "", " 1700000000", "-1", "12ab", "0x10", "9" * 40]


def test_an_unreadable_timestamp_gets_401_and_nothing_runs(served):
    for stamp in STAMPS:
        url = served.slack.response_url("ts")
        body = command_body("/deal", "anything", LEADER, url)
        reply = send(served.url, body, stamp)
        assert reply.status == 401 and reply.json() == {"error": "invalid request"}, stamp
    assert _answers(served, url, 0.3) == []  # not even "something went wrong" to a response_url
    assert served.slack.calls_to("response_url") == []


BAD_PAYLOADS = [
    "not json",
    "{",
    "[1, 2]",
    '"a string"',
    "42",
    "{}",
    '{"type": 7}',
    '{"type": "block_actions"}',
    '{"type": "block_actions", "actions": []}',
    '{"type": "block_actions", "actions": ["revbot_why"]}',
    '{"type": "block_actions", "actions": [{"value": "1:D1"}]}',
]


def test_a_malformed_interactive_payload_gets_400(served):
    for payload in BAD_PAYLOADS:
        body = urlencode({"payload": payload}).encode()
        reply = send(served.url, body, str(int(time.time())))
        assert reply.status == 400 and reply.json()["error"], (payload, reply)
        unsigned = send(served.url, body, str(int(time.time())), signature="v0=" + "0" * 64)
        assert unsigned.status == 401  # the signature is checked before the payload is read


def test_a_body_that_is_not_utf8_gets_400(served):
    body = b"command=%2Fdeal&text=\xff\xfe"
    assert send(served.url, body, str(int(time.time()))).status == 400


def test_a_replayed_request_runs_once(served):
    url = served.slack.response_url("replay")
    body, ts = command_body("/deal", "   ", LEADER, url), str(int(time.time()))
    first, again = send(served.url, body, ts), send(served.url, body, ts)
    assert (first.status, again.status) == (200, 200) and again.body == ""
    answers = _answers(served, url)
    assert len(answers) == 1 and answers[0]["text"].startswith("*Usage:*")
    other = served.slack.response_url("fresh")  # a new request is not a replay
    assert send(served.url, command_body("/deal", "", LEADER, other), ts).status == 200
    assert len(_answers(served, other)) == 1


def test_a_slack_retry_is_acked_without_running_again(served):
    url = served.slack.response_url("retry")
    body = command_body("/forecast", "", LEADER, url)
    first = send(served.url, body, str(int(time.time())))
    assert first.status == 200
    served.slack.wait_for("files.completeUploadExternal", timeout=20)
    retry = send(served.url, body, str(int(time.time()) + 1),
                 **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})  # fmt: skip
    assert retry.status == 200 and retry.body == ""
    time.sleep(1.5)
    assert len(served.slack.calls_to("files.getUploadURLExternal")) == 1  # one chart, not two
    assert all(SORRY not in json.dumps(a) for a in _answers(served, url, 0))


def test_healthz_and_other_paths_pass_the_gate(served):
    with urllib.request.urlopen(served.root + "/healthz", timeout=5) as r:
        assert r.status == 200
    reply = send(served.root + "/elsewhere", b"x=1", "abc")
    assert reply.status == 404
