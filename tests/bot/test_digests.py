"""Morning digests posted to the loopback Slack: once per channel and day whatever happens
(retries, restarts, two processes), failures reported, buttons recorded and honoured."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import ledger
from bot.blocks import check_limits
from bot.listeners import ACTION_ACK, ACTION_SNOOZE, ACTION_WHY
from bot.morning import run_channel
from dataset import database, score_runs
from tests.bot.slackenv import (
    HOSTILE_OWNER,
    LEADER,
    SECRET,
    STRANGER,
    TOKEN,
    action_body,
    channel,
    post,
)
from tests.fakeslack import FakeSlack

DIGEST = channel("C0DIGEST", top=5)
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.bot(channels=[DIGEST])
def test_a_digest_is_posted_once_per_channel_and_day(served):
    first = run_channel(served.services, served.client, DIGEST, "2025-02-17")
    again = run_channel(served.services, served.client, DIGEST, "2025-02-17")
    assert (first.status, again.status) == ("posted", "skipped")
    (call,) = served.slack.calls_to("chat.postMessage")
    assert call.params["channel"] == "C0DIGEST" and call.ok
    message = {"text": call.params["text"], "blocks": call.params["blocks"]}
    assert check_limits(message) == [] and not call.warnings
    deals = [b for b in call.params["blocks"] if b["type"] == "actions"]
    assert len(deals) == 5
    record = ledger.digest_record(served.services.reader.db(), "C0DIGEST", "2025-02-17")
    assert record["status"] == "posted" and record["slack_ts"] == call.response["ts"]


@pytest.mark.bot(channels=[DIGEST])
def test_a_rate_limited_post_is_retried(served):
    served.slack.rate_limit("chat.postMessage", times=1, retry_after=1)
    outcome = run_channel(served.services, served.client, DIGEST, "2025-02-17")
    assert outcome.status == "posted"
    calls = served.slack.calls_to("chat.postMessage")
    assert [c.status for c in calls] == [429, 200]
    assert calls[1].at - calls[0].at >= 1.0  # Retry-After honoured


@pytest.mark.bot(channels=[DIGEST], admin="C0ADMIN")
def test_a_refused_digest_is_reported_and_posted_by_the_next_run(served):
    served.slack.fail("chat.postMessage", "channel_not_found", channel="C0DIGEST")
    outcome = run_channel(served.services, served.client, DIGEST, "2025-02-17")
    assert (outcome.status, outcome.detail) == ("failed", "channel_not_found")
    admin = [c for c in served.slack.calls_to("chat.postMessage") if c.params["channel"] == "C0ADMIN"]  # fmt: skip
    assert len(admin) == 1 and "channel_not_found" in admin[0].params["text"]
    assert "/invite @revbot" in admin[0].params["text"]
    record = ledger.digest_record(served.services.reader.db(), "C0DIGEST", "2025-02-17")
    assert record["status"] == "failed"
    retry = run_channel(served.services, served.client, DIGEST, "2025-02-17")
    assert retry.status == "posted"
    posted = [c for c in served.slack.calls_to("chat.postMessage") if c.params["channel"] == "C0DIGEST" and c.ok]  # fmt: skip
    assert len(posted) == 1
    assert (
        ledger.digest_record(served.services.reader.db(), "C0DIGEST", "2025-02-17")["attempts"] == 2
    )


@pytest.mark.bot(channels=[channel("C0EVE", scope=f"rep:{HOSTILE_OWNER}")])
def test_hostile_crm_text_cannot_ping_from_the_digest(served):
    ch = served.settings.channels[0]
    assert run_channel(served.services, served.client, ch, "2025-02-17").status == "posted"
    (call,) = served.slack.calls_to("chat.postMessage")
    dumped = json.dumps({"text": call.params["text"], "blocks": call.params["blocks"]})
    assert "&lt;!channel&gt;" in dumped and "&lt;!here&gt; Eve" in dumped
    for live in ("<!channel>", "<!here>", "<http"):
        assert live not in dumped, dumped[max(0, dumped.find(live) - 200) : dumped.find(live) + 50]


def _digest(served) -> dict:
    """Post the digest and return the message as Slack stores it (with its ts)."""
    assert run_channel(served.services, served.client, DIGEST, "2025-02-17").status == "posted"  # fmt: skip
    (call,) = served.slack.calls_to("chat.postMessage")
    return served.slack.messages[("C0DIGEST", call.response["ts"])]


def _buttons(message: dict) -> list[dict]:
    return [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


def _click(served, message, action_id: str, index: int = 0, user: str = LEADER):
    button = [e for e in _buttons(message) if e["action_id"] == action_id][index]
    url = served.slack.response_url("act")
    reply = post(served.url, action_body(action_id, button["value"], user, url, message))
    assert reply.status == 200
    return button["value"].split(":", 1)[1], url


@pytest.mark.bot(channels=[DIGEST])
def test_why_opens_the_deal_for_whoever_clicked(served):
    message = _digest(served)
    deal_id, url = _click(served, message, ACTION_WHY, 1)
    (call,) = served.slack.wait_for("views.open")
    modal = call.params["view"]
    assert call.params["trigger_id"] == "1.2.3" and modal["type"] == "modal"
    assert deal_id in json.dumps(modal) and "*Suggested next steps*" in json.dumps(modal["blocks"])
    assert served.slack.calls_to("response_url") == []  # the digest is left as it is


@pytest.mark.bot(channels=[DIGEST])
def test_snooze_and_acknowledge_keep_deals_out_of_the_next_digest(served):
    message = _digest(served)
    snoozed, _ = _click(served, message, ACTION_SNOOZE, 0)
    (update,) = served.slack.wait_for("chat.update")
    assert update.params["ts"] == message["ts"]
    notes = [b for b in update.params["blocks"] if b.get("block_id") == f"deal:{snoozed}"]
    assert notes[0]["type"] == "context" and f"Snoozed by <@{LEADER}> until" in json.dumps(notes)
    acked, _ = _click(served, message, ACTION_ACK, 1)
    served.slack.wait_for("chat.update", 2)
    db = served.services.reader.db()
    marks = ledger.marks(db, "C0DIGEST").set_index("deal_id")
    assert marks.loc[snoozed, "kind"] == "snooze" and marks.loc[acked, "kind"] == "ack"
    run = score_runs.latest_run(db)
    until = datetime.fromisoformat(run["as_of"]) + timedelta(days=7)
    assert marks.loc[snoozed, "until"] == until.date().isoformat()
    # the next morning: both handled deals are left out, and the footer says so
    served.slack.reset()
    assert run_channel(served.services, served.client, DIGEST, "2025-02-18").status == "posted"  # fmt: skip
    (call,) = served.slack.calls_to("chat.postMessage")
    listed = {e["value"].split(":", 1)[1] for e in _buttons(call.params)}
    assert snoozed not in listed and acked not in listed and len(listed) == 5
    assert "2 snoozed or acknowledged here" in json.dumps(call.params["blocks"])
    assert "Nothing new since the last digest" in json.dumps(call.params["blocks"])


@pytest.mark.bot(channels=[DIGEST])
def test_a_stranger_cannot_snooze(served):
    message = _digest(served)
    _click(served, message, ACTION_SNOOZE, 0, user=STRANGER)
    answer = served.slack.wait_for("response_url")[0].params
    assert "not in it yet" in answer["text"]
    assert ledger.marks(served.services.reader.db(), "C0DIGEST").empty
    assert served.slack.calls_to("chat.update") == []


# --- real processes: `revbot morning` twice at once, `revbot serve` stopped and restarted -------


def _config(folder: Path, when: datetime) -> Path:
    path = folder / "revbot.toml"
    path.write_text(
        f'[digest]\ntime = "{when:%H:%M}"\ndays = "*"\ntimezone = "UTC"\ntop = 5\n'
        'grace_minutes = 60\n\n[slack]\nadmin_channel = "C0ADMIN"\n\n'
        '[[channels]]\nid = "C0ONE"\nscope = "all"\n\n[[channels]]\nid = "C0TWO"\nscope = "all"\n',
        encoding="utf-8",
    )
    return path


def _env(slack: FakeSlack, db: Path, artifacts: Path, config: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REVBOT_"))}
    return env | {
        "SLACK_BOT_TOKEN": TOKEN, "SLACK_API_URL": slack.base_url, "REVBOT_DB": str(db),
        "REVBOT_ARTIFACTS": str(artifacts), "REVBOT_CONFIG": str(config), "PYTHONPATH": str(ROOT),
    } | extra  # fmt: skip


def _posts(slack: FakeSlack) -> list[str]:
    return sorted(c.params["channel"] for c in slack.calls_to("chat.postMessage") if c.ok)


def test_two_processes_post_each_digest_once(small_crm, db_copy, tmp_path):
    with FakeSlack() as slack:
        slack.delay("chat.postMessage", 0.3)  # widen the race window
        env = _env(slack, db_copy, small_crm["artifacts"], _config(tmp_path, datetime.now(UTC)))
        cmd = [sys.executable, "-m", "bot.cli", "morning"]
        procs = [subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]  # fmt: skip
        outs = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        assert _posts(slack) == ["C0ONE", "C0TWO"]
        lines = "".join(o for o, _ in outs)
        assert lines.count(": posted") == 2 and lines.count(": skipped") == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(env: dict, cwd: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--port", str(port)],
        env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.1)
        if proc.poll() is not None:
            raise AssertionError(proc.stdout.read())
    proc.kill()
    raise AssertionError("revbot serve did not come up")


def _stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    return out


def test_a_missed_run_is_caught_up_once_across_restarts(small_crm, db_copy, tmp_path):
    """The run was due 5 minutes ago, while the bot was down: it posts on start, and a restart
    (still within the grace window) does not post again. Secrets never reach the log."""
    with FakeSlack() as slack:
        due = datetime.now(UTC) - timedelta(minutes=5)
        env = _env(slack, db_copy, small_crm["artifacts"], _config(tmp_path, due),
                   SLACK_SIGNING_SECRET=SECRET)  # fmt: skip
        port = _free_port()
        proc = _serve(env, tmp_path, port)
        slack.wait_for("chat.postMessage", 2, timeout=60)
        log = _stop(proc)
        assert _posts(slack) == ["C0ONE", "C0TWO"]
        assert "catching up" in log
        proc = _serve(env, tmp_path, port)
        time.sleep(1.5)
        log += _stop(proc)
        assert _posts(slack) == ["C0ONE", "C0TWO"]
        assert TOKEN not in log and SECRET not in log
        db = database.connect(db_copy)
        day = due.date().isoformat()
        assert [r["status"] for r in ledger.digest_records(db) if r["digest_date"] == day] == ["posted", "posted"]  # fmt: skip


def test_a_stop_while_posting_waits_for_the_post_and_marks_it(small_crm, db_copy, tmp_path):
    """SIGTERM arrives while the caught-up digests are being posted (Slack is slow to answer):
    revbot stops only after both posts are answered and recorded, so no claim is left behind
    to be reported as "may or may not have been posted"."""
    with FakeSlack() as slack:
        # answered 3 s late: the stop arrives (milliseconds after both are sent) while both wait
        slack.delay("chat.postMessage", 3.0)
        due = datetime.now(UTC) - timedelta(minutes=5)
        env = _env(slack, db_copy, small_crm["artifacts"], _config(tmp_path, due),
                   SLACK_SIGNING_SECRET=SECRET)  # fmt: skip
        proc = _serve(env, tmp_path, _free_port())
        slack.wait_for("chat.postMessage", 2, timeout=60)  # both sent, neither answered yet
        _stop(proc)
        db = database.connect(db_copy)
        day = due.date().isoformat()
        records = [r for r in ledger.digest_records(db) if r["digest_date"] == day]
        assert [r["status"] for r in records] == ["posted", "posted"], records
        assert all(r["slack_ts"] for r in records)


def test_the_next_run_reports_what_changed(small_crm, db_copy, tmp_path):
    """Day 2 on a new export: a deal lost and a close date pushed show up as news."""
    from bot.services import build
    from bot.settings import Secrets, Settings
    from bot.slack_api import make_client
    from dataset.ingest import ingest_files

    with FakeSlack() as slack:
        settings = Settings(channels=(DIGEST,), secrets=Secrets(bot_token=TOKEN, api_url=slack.base_url))  # fmt: skip
        services = build(db_copy, small_crm["artifacts"], settings)
        client = make_client(settings.secrets)
        assert run_channel(services, client, DIGEST, "2025-02-17").status == "posted"
        db = services.reader.db()
        scores = score_runs.run_scores(db, score_runs.latest_run(db)["run_id"]).set_index("deal_id")
        newest = sorted((small_crm["crm"] / "exports").iterdir())[-1]
        rows = newest.read_text(encoding="utf-8").splitlines()
        open_ids = [r.split(",")[0] for r in rows[1:] if r.split(",")[0] in scores.index]
        lost, pushed = open_ids[0], open_ids[1]
        out = [rows[0]]
        for line in rows[1:]:
            cells = line.split(",")
            if cells[0] == lost:
                cells[4], cells[6] = "Lost", "2025-02-15"
            if cells[0] == pushed:
                cells[6] = (datetime.fromisoformat(cells[6]) + timedelta(days=30)).date().isoformat()  # fmt: skip
            out.append(",".join(cells))
        export = tmp_path / "sales_pipeline_2025-02-15.csv"
        export.write_text("\n".join(out) + "\n", encoding="utf-8")
        ingest_files(db, [export], as_of=datetime(2025, 2, 15).date())
        services.refresher.refresh(lambda _: None)
        assert run_channel(services, client, DIGEST, "2025-02-18").status == "posted"
        blocks = slack.calls_to("chat.postMessage")[-1].params["blocks"]
        news = next(
            b["text"]["text"] for b in blocks if "*Lost*" in b.get("text", {}).get("text", "")
        )
        name = lambda d: scores.loc[d, "account"] or d  # noqa: E731
        assert "*Lost*: " + name(lost) in news
        old = scores.loc[pushed, "expected_close"]
        assert "*Close date pushed*: " in news and f"{name(pushed)} ({old} → " in news


@pytest.mark.bot(channels=[DIGEST], admin="C0ADMIN")
def test_an_unclear_answer_is_never_reposted(served):
    """Slack (or a proxy) answers 502 after posting: the claim stays, the admin is asked to
    check, and neither a later run nor a restart's catch-up posts it again."""
    served.slack.server_error("chat.postMessage")
    outcome = run_channel(served.services, served.client, DIGEST, "2025-02-17")
    assert outcome.status == "failed" and outcome.detail.startswith("unknown outcome")
    digest_posts = [c for c in served.slack.calls_to("chat.postMessage") if c.params["channel"] == "C0DIGEST"]  # fmt: skip
    assert len(digest_posts) == 1 and len(served.slack.messages) >= 1  # no retry by the client
    admin = [c for c in served.slack.calls_to("chat.postMessage") if c.params["channel"] == "C0ADMIN"]  # fmt: skip
    assert "may or may not have been posted" in admin[0].params["text"]
    again = run_channel(served.services, served.client, DIGEST, "2025-02-17")
    assert again.status == "skipped"
    from bot.scheduler import missed

    assert (
        missed(served.services.reader.db(), (DIGEST,), datetime(2025, 2, 17, 8, 30, tzinfo=UTC))
        == []
    )


def test_a_failure_before_posting_claims_nothing(tmp_path, small_crm):
    """No data yet: the run fails before its claim, says why, and leaves the day to a later run."""
    from bot.scheduler import missed
    from bot.services import build
    from bot.settings import Secrets, Settings
    from bot.slack_api import make_client

    with FakeSlack() as slack:
        settings = Settings(channels=(DIGEST,), admin_channel="C0ADMIN",
                            secrets=Secrets(bot_token=TOKEN, api_url=slack.base_url))  # fmt: skip
        services = build(tmp_path / "empty.db", small_crm["artifacts"], settings)
        outcome = run_channel(services, make_client(settings.secrets), DIGEST, "2025-02-17")
        assert outcome.status == "failed" and "no CRM data imported yet" in outcome.detail
        (admin,) = slack.calls_to("chat.postMessage")
        assert admin.params["channel"] == "C0ADMIN" and "was not posted" in admin.params["text"]
        db = services.reader.db()
        assert ledger.digest_record(db, "C0DIGEST", "2025-02-17") is None
        now = datetime(2025, 2, 17, 8, 30, tzinfo=UTC)
        assert missed(db, (DIGEST,), now) == [(DIGEST, "2025-02-17")]


@pytest.mark.bot(channels=[DIGEST])
def test_a_claim_left_by_a_crash_is_reported_once(served):
    from bot.morning import report_stale_claims

    db = served.services.reader.db()
    assert ledger.claim_digest(db, "C0DIGEST", "2025-02-16", 1, "crashed")
    db.execute("UPDATE digest_runs SET updated_at = '2025-02-16T08:00:00+00:00'")
    db.conn.commit()
    assert [r["digest_date"] for r in report_stale_claims(served.services, served.client)] == ["2025-02-16"]  # fmt: skip
    assert report_stale_claims(served.services, served.client) == []  # reported once
    (admin,) = served.slack.calls_to("chat.postMessage")
    assert "was being posted when revbot stopped" in admin.params["text"]


@pytest.mark.bot(channels=[DIGEST])
def test_a_rep_cannot_snooze_even_their_own_deal_out_of_the_digest(served):
    from tests.bot.slackenv import REP

    message = _digest(served)
    scores = served.data["scores"]
    own = scores.loc[scores["owner"] == served.data["who"]["rep"], "deal_id"].iloc[0]
    run_id = score_runs.latest_run(served.services.reader.db())["run_id"]
    url = served.slack.response_url("act")
    post(served.url, action_body(ACTION_SNOOZE, f"{run_id}:{own}", REP, url, message))
    answer = served.slack.wait_for("response_url")[0].params
    assert answer["text"].startswith("Only managers and leaders can snooze or acknowledge")
    assert ledger.marks(served.services.reader.db(), "C0DIGEST").empty
    assert served.slack.calls_to("chat.update") == []


def test_a_bad_or_missing_export_is_said_in_the_digest(small_crm, db_copy, tmp_path):
    """The morning refresh cannot load today's export: the digest still goes out, on the last
    good data, and says why; a file read once is not read again for the next channel."""
    from bot.services import build
    from bot.settings import Secrets, Settings
    from bot.slack_api import make_client

    exports = tmp_path / "exports"
    exports.mkdir()
    second = channel("C0SECOND", top=5)
    with FakeSlack() as slack:
        settings = Settings(channels=(DIGEST, second), exports_folder=exports,
                            secrets=Secrets(bot_token=TOKEN, api_url=slack.base_url))  # fmt: skip
        services = build(db_copy, small_crm["artifacts"], settings)
        client = make_client(settings.secrets)
        assert run_channel(services, client, DIGEST, "2025-02-17").status == "posted"
        note = json.dumps(slack.calls_to("chat.postMessage")[-1].params["blocks"])
        assert f"no CRM export found in {exports}" in note
        (exports / "export.csv").write_text("id,colour\n1,red\n", encoding="utf-8")
        assert run_channel(services, client, DIGEST, "2025-02-18").status == "posted"
        note = json.dumps(slack.calls_to("chat.postMessage")[-1].params["blocks"])
        assert "today's CRM export could not be loaded" in note
        assert run_channel(services, client, second, "2025-02-18").status == "posted"
        note = json.dumps(slack.calls_to("chat.postMessage")[-1].params["blocks"])
        assert "today's CRM export could not be loaded" in note  # every channel is told
