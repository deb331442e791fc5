"""`revbot serve` as Slack meets it: a burst of commands answered without losing a connection."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.bot.slackenv import (
    LEADER,
    command_body,
    post,
)
from tests.fakeslack import FakeSlack

ROOT = Path(__file__).resolve().parents[2]
SLACK_LIMIT = 3.0  # seconds Slack waits for an ack


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def answers_at(slack: FakeSlack, url: str, timeout: float = 15) -> dict:
    """The first post to a response_url (listeners answer after the ack)."""
    path = "/" + url.split("/", 3)[3]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [c for c in slack.calls_to("response_url") if c.path == path and c.ok]
        if found:
            return found[0].params
        time.sleep(0.01)
    raise AssertionError(f"no answer at {path}")


def test_a_burst_of_commands_loses_no_connection(served):
    """100 signed /deal at once: every connection answered 200 in Slack's 3 s, every answer
    delivered. (The stdlib server before waitress listened with a backlog of 5.)"""
    ids = served.data["scores"]["deal_id"].tolist()[:100]
    urls = [served.slack.response_url("burst") for _ in ids]
    start = threading.Barrier(len(ids))

    def one(deal_id: str, url: str) -> tuple[int, float]:
        body = command_body("/deal", deal_id, LEADER, url)
        start.wait()
        t0 = time.perf_counter()
        reply = post(served.url, body)
        return reply.status, time.perf_counter() - t0

    with ThreadPoolExecutor(len(ids)) as pool:
        results = list(pool.map(one, ids, urls))
    assert [status for status, _ in results] == [200] * len(ids)
    slowest = max(took for _, took in results)
    assert slowest < SLACK_LIMIT, f"an ack took {slowest:.1f} s"
    for deal_id, url in zip(ids, urls, strict=True):
        assert deal_id in json.dumps(answers_at(served.slack, url, timeout=60)["blocks"])
