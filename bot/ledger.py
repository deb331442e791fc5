"""The bot's own state in the database: the digest ledger (which channel's digest of which day
was claimed, posted or failed, and with which score run) and the marks managers put on deals
(snoozed, acknowledged). Why here and not in `dataset/`: the data layer holds what was imported
and scored; this is what the Slack bot did with it. Its tables live in the same SQLite file and
are created here, on first use (`ensure_tables`), with the names and columns they always had."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import sqlite_utils

from dataset.database import read_frame

_TABLES = (
    """
CREATE TABLE IF NOT EXISTS digest_runs (
    channel_id TEXT NOT NULL,
    digest_date TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('claimed', 'posted', 'failed')),
    run_id INTEGER REFERENCES score_runs(run_id),
    slack_ts TEXT,
    claimed_by TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    error TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (channel_id, digest_date)
)
""",
    """
CREATE TABLE IF NOT EXISTS deal_marks (
    id INTEGER PRIMARY KEY,
    channel_id TEXT NOT NULL,
    deal_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('snooze', 'ack')),
    user_id TEXT NOT NULL,
    risk REAL,
    until TEXT,
    created_at TEXT NOT NULL
)
""",
    "CREATE INDEX IF NOT EXISTS deal_marks_channel ON deal_marks(channel_id, deal_id)",
)


def ensure_tables(db: sqlite_utils.Database) -> None:
    """Create the ledger's tables if the database lacks them (idempotent; each statement on its
    own, so that a transaction the caller has open is not committed as `executescript` would)."""
    for statement in _TABLES:
        db.execute(statement)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def claim_digest(
    db: sqlite_utils.Database, channel_id: str, digest_date: str, run_id: int, worker: str
) -> bool:
    """Claim a channel's digest for a day before posting it. True for exactly one caller, across
    threads and processes: the primary key makes the insert a lock. A failed attempt (nothing was
    posted) may be claimed again; a claim left without a posted `ts` is never retried."""
    ensure_tables(db)
    with db.atomic():
        cur = db.execute(
            "INSERT INTO digest_runs (channel_id, digest_date, status, run_id, claimed_by, "
            "updated_at) VALUES (?, ?, 'claimed', ?, ?, ?) ON CONFLICT DO NOTHING",
            [channel_id, digest_date, run_id, worker, _now()],
        )
        if cur.rowcount == 1:
            return True
        cur = db.execute(
            "UPDATE digest_runs SET status = 'claimed', run_id = ?, claimed_by = ?, "
            "attempts = attempts + 1, error = NULL, updated_at = ? "
            "WHERE channel_id = ? AND digest_date = ? AND status = 'failed'",
            [run_id, worker, _now(), channel_id, digest_date],
        )
        return cur.rowcount == 1


def finish_digest(
    db: sqlite_utils.Database,
    channel_id: str,
    digest_date: str,
    *,
    slack_ts: str | None = None,
    error: str | None = None,
) -> None:
    """Record the outcome of a claimed digest: posted (with its ts) or failed (with the error)."""
    ensure_tables(db)
    status = "failed" if error else "posted"
    with db.atomic():
        db.execute(
            "UPDATE digest_runs SET status = ?, slack_ts = ?, error = ?, updated_at = ? "
            "WHERE channel_id = ? AND digest_date = ?",
            [status, slack_ts, error, _now(), channel_id, digest_date],
        )


def note_digest_error(
    db: sqlite_utils.Database, channel_id: str, digest_date: str, error: str
) -> None:
    """Note an error on a claim without releasing it (the digest may have gone out)."""
    ensure_tables(db)
    with db.atomic():
        db.execute(
            "UPDATE digest_runs SET error = ?, updated_at = ? WHERE channel_id = ? AND digest_date = ?",
            [error, _now(), channel_id, digest_date],
        )


def stale_claims(db: sqlite_utils.Database, older_than_minutes: int) -> list[dict]:
    """Digests claimed more than that many minutes ago, never recorded as posted or failed, and
    not reported yet (a reported one carries its error)."""
    ensure_tables(db)
    cutoff = (datetime.now(UTC) - timedelta(minutes=older_than_minutes)).isoformat(
        timespec="seconds"
    )
    return list(
        db.query(
            "SELECT * FROM digest_runs WHERE status = 'claimed' AND error IS NULL AND updated_at < ? "
            "ORDER BY digest_date",
            [cutoff],
        )
    )


def digest_record(db: sqlite_utils.Database, channel_id: str, digest_date: str) -> dict | None:
    ensure_tables(db)
    rows = list(
        db.query(
            "SELECT * FROM digest_runs WHERE channel_id = ? AND digest_date = ?",
            [channel_id, digest_date],
        )
    )
    return rows[0] if rows else None


def digest_records(db: sqlite_utils.Database) -> list[dict]:
    ensure_tables(db)
    return list(db.query("SELECT * FROM digest_runs ORDER BY digest_date, channel_id"))


def last_posted_run(db: sqlite_utils.Database, channel_id: str, before_date: str) -> int | None:
    """The score run of the channel's last digest posted before a day: 'since the last digest'."""
    ensure_tables(db)
    row = db.execute(
        "SELECT run_id FROM digest_runs WHERE channel_id = ? AND status = 'posted' "
        "AND digest_date < ? ORDER BY digest_date DESC LIMIT 1",
        [channel_id, before_date],
    ).fetchone()
    return row[0] if row else None


def add_mark(
    db: sqlite_utils.Database,
    *,
    channel_id: str,
    deal_id: str,
    kind: str,
    user_id: str,
    risk: float | None,
    until: str | None,
) -> None:
    """A manager handled a deal in a digest: snoozed until a day, or acknowledged at a risk."""
    ensure_tables(db)
    with db.atomic():
        db.execute(
            "INSERT INTO deal_marks (channel_id, deal_id, kind, user_id, risk, until, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [channel_id, deal_id, kind, user_id, risk, until, _now()],
        )


def marks(db: sqlite_utils.Database, channel_id: str) -> pd.DataFrame:
    """The latest mark of each deal in a channel (kind, risk when acknowledged, snooze end)."""
    ensure_tables(db)
    return read_frame(
        db,
        "SELECT m.deal_id, m.kind, m.risk, m.until, m.user_id FROM deal_marks m JOIN "
        "(SELECT deal_id, MAX(id) AS id FROM deal_marks WHERE channel_id = ? GROUP BY deal_id) x "
        "ON m.id = x.id",
        [channel_id],
    )
