"""The nudges' ledger: which deal and rule each person was told about, when, and what they said
back (snoozed, done, not useful), and each person's daily budget or opt-out.

Why a ledger: a nudge is never sent twice for the same deal and rule, across restarts and
processes. A nudge is claimed before it is sent: the (deal, rule) rows' primary key makes the
claim a lock; Slack refusing the message releases it (nothing was sent), any other failure keeps
it (it may have been sent: never risk a second one). Tables are created on first use, in the
same SQLite file as the rest, like `bot.ledger`'s.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import sqlite_utils

from dataset.database import read_frame, write_lock

FEEDBACK = ("snooze", "done", "not_useful")
RISK_RULE = "risk"  # the deal crossed the risk threshold: a rule like the hygiene ones
_TABLES = (
    """
CREATE TABLE IF NOT EXISTS nudges (
    id INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL,
    deal_id TEXT,
    rules TEXT NOT NULL,
    run_id INTEGER,
    local_day TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('deal', 'rolled')),
    status TEXT NOT NULL CHECK (status IN ('claimed', 'sent', 'failed')),
    channel_id TEXT,
    slack_ts TEXT,
    feedback TEXT CHECK (feedback IN ('snooze', 'done', 'not_useful')),
    until TEXT,
    feedback_at TEXT,
    error TEXT,
    created_at TEXT NOT NULL
)
""",
    "CREATE INDEX IF NOT EXISTS nudges_user_day ON nudges(user_id, local_day)",
    """
CREATE TABLE IF NOT EXISTS nudged (
    deal_id TEXT NOT NULL,
    rule TEXT NOT NULL,
    nudge_id INTEGER NOT NULL REFERENCES nudges(id),
    PRIMARY KEY (deal_id, rule)
)
""",
    # the deals that crossed the risk threshold and nobody was told of yet (from_risk NULL: the
    # deal was not in the run of `since`), and the runs a nudge pass saw
    """
CREATE TABLE IF NOT EXISTS nudge_crossings (
    deal_id TEXT PRIMARY KEY,
    from_risk REAL,
    since TEXT NOT NULL,
    run_id INTEGER NOT NULL
)
""",
    """
CREATE TABLE IF NOT EXISTS nudge_runs (
    run_id INTEGER PRIMARY KEY,
    seen_at TEXT NOT NULL
)
""",
    """
CREATE TABLE IF NOT EXISTS nudge_prefs (
    user_id TEXT PRIMARY KEY,
    per_day INTEGER NOT NULL CHECK (per_day >= 0),
    updated_at TEXT NOT NULL
)
""",
)


def ensure_tables(db: sqlite_utils.Database) -> None:
    for statement in _TABLES:
        db.execute(statement)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def claim(db: sqlite_utils.Database, *, user_id: str, deal_id: str | None, rules: list[str],
          run_id: int, local_day: str, per_day: int, kind: str = "deal") -> tuple[int, list[str]] | None:  # fmt: skip
    """Claim a message to a person about these (deal, rule)s: (its id, the rules claimed), the
    rules someone already claimed left out; None when none is left, or when the person already
    had `per_day` messages on their `local_day`. The count and the claim are one transaction
    holding the write lock, so two processes sending at once cannot exceed the budget either. A
    rolled-up line claims every (deal, rule) it names, `rules` as "deal\x1frule"."""
    ensure_tables(db)
    with write_lock(db):
        (had,) = db.execute(
            "SELECT COUNT(*) FROM nudges WHERE user_id = ? AND local_day = ? "
            "AND status != 'failed'",
            [user_id, local_day],
        ).fetchone()
        if had >= per_day:
            return None
        cur = db.execute(
            "INSERT INTO nudges (user_id, deal_id, rules, run_id, local_day, kind, status, "
            "created_at) VALUES (?, ?, '[]', ?, ?, ?, 'claimed', ?)",
            [user_id, deal_id, run_id, local_day, kind, _now()],
        )
        nudge_id = int(cur.lastrowid)
        claimed = []
        for rule in rules:
            deal, _, name = rule.partition("\x1f") if kind == "rolled" else (deal_id, "", rule)
            done = db.execute(
                "INSERT INTO nudged (deal_id, rule, nudge_id) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [deal, name, nudge_id],
            )
            if done.rowcount == 1:
                claimed.append(rule)
        if not claimed:
            db.execute("DELETE FROM nudges WHERE id = ?", [nudge_id])
            return None
        db.execute("UPDATE nudges SET rules = ? WHERE id = ?", [json.dumps(claimed), nudge_id])
    return nudge_id, claimed


def sent(db: sqlite_utils.Database, nudge_id: int, channel_id: str, ts: str) -> None:
    with db.atomic():
        db.execute("UPDATE nudges SET status = 'sent', channel_id = ?, slack_ts = ? WHERE id = ?",
                   [channel_id, ts, nudge_id])  # fmt: skip


def release(db: sqlite_utils.Database, nudge_id: int, error: str) -> None:
    """Slack refused the message: nothing was sent, so its (deal, rule)s may be claimed again."""
    with db.atomic():
        db.execute("DELETE FROM nudged WHERE nudge_id = ?", [nudge_id])
        db.execute("UPDATE nudges SET status = 'failed', error = ? WHERE id = ?", [error, nudge_id])


def note_error(db: sqlite_utils.Database, nudge_id: int, error: str) -> None:
    """An unknown outcome (a timeout): the claim stays, so the nudge is not sent again."""
    with db.atomic():
        db.execute("UPDATE nudges SET error = ? WHERE id = ?", [error, nudge_id])


def told(db: sqlite_utils.Database) -> set[tuple[str, str]]:
    """Every (deal, rule) anyone was nudged about (or is being nudged about now)."""
    ensure_tables(db)
    return {(d, r) for d, r in db.execute("SELECT deal_id, rule FROM nudged")}


def base_run(db: sqlite_utils.Database, run_id: int) -> int | None:
    """The latest run before `run_id` that a nudge pass saw: risk crossings are news against it,
    so a run no pass saw (the bot was down all its day) hides none."""
    ensure_tables(db)
    (found,) = db.execute(
        "SELECT MAX(run_id) FROM nudge_runs WHERE run_id < ?", [run_id]
    ).fetchone()
    return None if found is None else int(found)


def seen(db: sqlite_utils.Database, run_id: int) -> bool:
    """Did a nudge pass see this run (and keep its crossings)?"""
    ensure_tables(db)
    return db.execute("SELECT 1 FROM nudge_runs WHERE run_id = ?", [run_id]).fetchone() is not None


def crossings(db: sqlite_utils.Database) -> pd.DataFrame:
    """The deals that crossed the risk threshold and that nobody was told of yet: deal_id,
    from_risk, since (the day of the run they were below it, or not in it), run_id (where the
    crossing was seen)."""
    ensure_tables(db)
    return read_frame(
        db,
        "SELECT deal_id, from_risk, since, run_id FROM nudge_crossings WHERE deal_id NOT IN "
        "(SELECT deal_id FROM nudged WHERE rule = ?)",
        [RISK_RULE],
    )


def note_crossings(db: sqlite_utils.Database, run_id: int, crossed: pd.DataFrame, since: str) -> None:  # fmt: skip
    """Keep what crossed the risk threshold at run `run_id` against the run of `since` (deal_id,
    from_risk), and that a pass saw the run. Why: a crossing is news until its owner is told,
    and the owner may be over their day's budget, or have snoozed the deal, until after the next
    run, against which it is no longer a crossing. A deal that crossed again keeps the latest."""
    ensure_tables(db)
    rows = [(d, None if pd.isna(r) else float(r), since, run_id)
            for d, r in zip(crossed["deal_id"], crossed["from_risk"], strict=True)]  # fmt: skip
    with write_lock(db):
        db.conn.executemany(
            "INSERT INTO nudge_crossings (deal_id, from_risk, since, run_id) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (deal_id) DO UPDATE SET from_risk = excluded.from_risk, "
            "since = excluded.since, run_id = excluded.run_id "
            "WHERE excluded.run_id > nudge_crossings.run_id",
            rows,
        )
        db.execute("DELETE FROM nudge_crossings WHERE deal_id IN "
                   "(SELECT deal_id FROM nudged WHERE rule = ?)", [RISK_RULE])  # fmt: skip
        # a deal no longer open (not in this run) will not be told: the table stays small
        db.execute("DELETE FROM nudge_crossings WHERE NOT EXISTS (SELECT 1 FROM deal_scores s "
                   "WHERE s.run_id = ? AND s.deal_id = nudge_crossings.deal_id)", [run_id])  # fmt: skip
        db.execute("INSERT INTO nudge_runs (run_id, seen_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                   [run_id, _now()])  # fmt: skip


def sent_on(db: sqlite_utils.Database, user_id: str, local_day: str) -> int:
    """How many messages a person got on a day of theirs (a rolled-up line counts as one)."""
    ensure_tables(db)
    row = db.execute(
        "SELECT COUNT(*) FROM nudges WHERE user_id = ? AND local_day = ? AND status != 'failed'",
        [user_id, local_day],
    ).fetchone()
    return int(row[0])


def snoozed(db: sqlite_utils.Database, user_id: str, today: str) -> set[str]:
    """The deals a person snoozed until after `today` (their local day)."""
    ensure_tables(db)
    rows = db.execute(
        "SELECT deal_id FROM nudges WHERE user_id = ? AND feedback = 'snooze' AND until > ?",
        [user_id, today],
    )
    return {d for (d,) in rows}


def nudge(db: sqlite_utils.Database, nudge_id: int) -> dict | None:
    ensure_tables(db)
    rows = list(db.query("SELECT * FROM nudges WHERE id = ?", [nudge_id]))
    return rows[0] if rows else None


def answer(db: sqlite_utils.Database, nudge_id: int, feedback: str, until: str | None = None) -> None:  # fmt: skip
    """What the person said about a nudge (the latest answer counts)."""
    if feedback not in FEEDBACK:
        raise ValueError(f"feedback {feedback!r}: one of {FEEDBACK}")
    with db.atomic():
        db.execute("UPDATE nudges SET feedback = ?, until = ?, feedback_at = ? WHERE id = ?",
                   [feedback, until, _now(), nudge_id])  # fmt: skip


def budget(db: sqlite_utils.Database, user_id: str, default: int) -> int:
    """A person's nudges a day: their own choice, else the configured default (0: opted out)."""
    ensure_tables(db)
    row = db.execute("SELECT per_day FROM nudge_prefs WHERE user_id = ?", [user_id]).fetchone()
    return int(row[0]) if row else default


def set_budget(db: sqlite_utils.Database, user_id: str, per_day: int) -> None:
    ensure_tables(db)
    with db.atomic():
        db.execute(
            "INSERT INTO nudge_prefs (user_id, per_day, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (user_id) DO UPDATE SET per_day = excluded.per_day, "
            "updated_at = excluded.updated_at",
            [user_id, per_day, _now()],
        )


def history(db: sqlite_utils.Database) -> pd.DataFrame:
    """Every deal nudge sent, one row per rule it named: for each rule's not-useful rate."""
    ensure_tables(db)
    return read_frame(
        db,
        "SELECT n.id, n.user_id, d.deal_id, d.rule, n.local_day, n.feedback FROM nudged d "
        "JOIN nudges n ON n.id = d.nudge_id WHERE n.kind = 'deal' AND n.status = 'sent'",
    )
