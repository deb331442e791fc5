"""`revbot serve` as a monitor and Slack meet it: it listens at once and warms up behind /readyz,
answers a burst of commands without losing a connection, and stops at start with one clear line
when Slack cannot be reached or refuses the token."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bot import ledger
from bot.cli import main
from bot.listeners import ACTION_WHY
from bot.readiness import STARTING
from bot.serve import serve
from dataset import database
from tests.bot.slackenv import (
    LEADER,
    SECRET,
    TOKEN,
    action_body,
    command_body,
    post,
    settings_for,
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


def test_listens_at_once_and_says_starting_until_warm(small_crm, db_copy, tmp_path):
    # A real slow warm-up: the saved run does not say what data it was made of (as one saved by
    # an older revbot), so the warm-up scores again, and another writer (an import in another
    # process, say) holds the database's write lock until the checks are done.
    db = database.connect(db_copy)
    db.execute("UPDATE score_runs SET data_fingerprint = NULL")
    db.conn.commit()
    ledger.ensure_tables(db)  # a bot ran on this database before
    (runs,) = db.execute("SELECT COUNT(*) FROM score_runs").fetchone()
    db.close()
    deal_id = small_crm["scores"]["deal_id"].iloc[0]
    other = database.connect(db_copy)
    with FakeSlack() as slack, database.write_lock(other):
        settings = settings_for(slack.base_url, small_crm["who"])
        port, listening, stop = free_port(), threading.Event(), threading.Event()
        worker = threading.Thread(
            target=serve, args=(settings, {}), daemon=True,
            kwargs=dict(db_path=db_copy, artifacts=small_crm["artifacts"], host="127.0.0.1",
                        port=port, scheduler=False, ready=listening, stop=stop),
        )  # fmt: skip
        worker.start()
        root = f"http://127.0.0.1:{port}"
        try:
            assert listening.wait(30)
            status, health = get(root + "/healthz")
            assert (status, health["status"], health["ok"]) == (200, "starting", True)
            assert get(root + "/readyz")[0] == 503
            assert get(root + "/readyz")[1]["status"] == "starting"
            url = slack.response_url("early")
            early = post(root + "/slack/events", command_body("/deal", deal_id, LEADER, url))
            assert early.status == 200
            assert early.json() == {"response_type": "ephemeral", "text": STARTING}
            button = slack.response_url("button")
            message = {"ts": "1700000000.000100", "text": "digest", "blocks": []}
            click = action_body(ACTION_WHY, f"1:{deal_id}", LEADER, button, message)
            assert post(root + "/slack/events", click).status == 200
            assert slack.answer_at(button)["text"] == STARTING
            other.conn.commit()  # the other writer is done: the warm-up goes on
            deadline = time.monotonic() + 180
            while get(root + "/readyz")[0] != 200:
                assert time.monotonic() < deadline, "never ready"
                time.sleep(0.1)
            check = database.connect(db_copy)
            assert check.execute("SELECT COUNT(*) FROM score_runs").fetchone()[0] == runs + 1
            check.close()
            assert get(root + "/readyz")[1] == {"status": "ready"}
            assert get(root + "/healthz")[1]["status"] == "ready"
            url = slack.response_url("warm")
            reply = post(root + "/slack/events", command_body("/deal", deal_id, LEADER, url))
            assert (reply.status, reply.body) == (200, "")  # acked; the answer follows
            answer = slack.answer_at(url)
            assert deal_id in json.dumps(answer["blocks"]) and STARTING not in answer["text"]
        finally:
            stop.set()
            worker.join(timeout=15)
        assert not worker.is_alive()


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
        assert deal_id in json.dumps(served.slack.answer_at(url, timeout=60)["blocks"])


def _serve_cli(tmp_path: Path, api_url: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REVBOT_"))}
    env |= {"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": api_url,
            "PYTHONPATH": str(ROOT)}  # fmt: skip
    argv = [sys.executable, "-m", "bot.cli", "serve", "--db", str(tmp_path / "x.db"),
            "--port", str(free_port()), "--no-scheduler"]  # fmt: skip
    return subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_serve_without_slack_says_so_in_one_line(tmp_path):
    api_url = f"http://127.0.0.1:{free_port()}/api/"  # nothing listens there: refused
    done = _serve_cli(tmp_path, api_url)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    # the client's retries are logged; then one line says what failed and what to check
    assert done.stderr.strip().splitlines()[-1] == (
        f"revbot serve: error: cannot reach Slack at {api_url} to check the bot token: "
        "[Errno 111] Connection refused. Check the network, any proxy, and SLACK_API_URL if set"
    )
    assert done.stderr.count("revbot serve: error:") == 1


def test_serve_with_a_refused_token_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with FakeSlack() as slack:
        slack.fail("auth.test", "invalid_auth")
        monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
        monkeypatch.setenv("SLACK_API_URL", slack.base_url)
        monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
        monkeypatch.delenv("REVBOT_CONFIG", raising=False)
        code = main(["serve", "--db", str(tmp_path / "x.db"), "--port", "0", "--no-scheduler"])
    err = capsys.readouterr().err
    assert code == 2
    assert "revbot serve: error: Slack refused the bot token" in err and "invalid_auth" in err
    assert "Traceback" not in err


def test_shutdown_stops_the_server_even_with_its_wake_up_pipe_closed():
    """A server whose I/O thread can no longer be woken (its trigger closed underneath, as
    seen once in CI) still stops: no error, the thread ends, the port refuses."""
    from bot.wsgi import serve_background

    server, thread = serve_background(lambda environ, start: [b""], "127.0.0.1", 0)
    port = server.server_port
    socket.create_connection(("127.0.0.1", port), timeout=2).close()  # it serves
    server._server.trigger.close()
    server.shutdown(timeout=5)
    thread.join(5)
    assert not thread.is_alive()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
