"""Score runs: each scoring of the open pipeline, kept (a header row and a row per open deal) so
that a digest can say what changed since the last one and `/deal` can show a deal's risk over
time. Why apart: scoring writes these, the bot and the export read them; the deals they score
live in `dataset.deal_history`."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import sqlite_utils

from dataset.database import SCORE_PARTS, _iso, _records, read_frame

SCORE_COLUMNS = (
    "deal_id", "rank", "owner", "manager", "region", "product", "account", "stage", "value",
    "win_prob", "risk", "value_at_risk", "expected_close", "drivers", "actions",
    *(name for name, _ in SCORE_PARTS),
)  # fmt: skip


def write_score_run(
    db: sqlite_utils.Database,
    *,
    as_of: date,
    scores: pd.DataFrame,
    model_hash: str,
    confidence: str,
    base_rate: float,
    notes: str = "",
) -> int:
    """One run, atomically: its header row and a row per open deal. Earlier runs are kept."""
    # in key order: the B-trees then grow at their end instead of being split all over
    frame = scores.reset_index().rename(columns={"index": "deal_id"}).sort_values("deal_id")
    value = frame["value"].fillna(0)
    with db.atomic():
        cur = db.execute(
            "INSERT INTO score_runs (as_of, created_at, model_hash, confidence, base_rate, deals, "
            "pipeline_value, expected_value, notes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                _iso(as_of),
                datetime.now(UTC).isoformat(timespec="seconds"),
                model_hash,
                confidence,
                base_rate,
                len(frame),
                float(value.sum()),
                float((value * frame["win_prob"]).sum()),
                notes,
            ],
        )
        run_id = int(cur.lastrowid)
        db.conn.executemany(
            f"INSERT INTO deal_scores (run_id, {', '.join(SCORE_COLUMNS)}) "
            f"VALUES ({run_id}, {', '.join('?' * len(SCORE_COLUMNS))})",
            _records(frame, SCORE_COLUMNS),
        )
    return run_id


def latest_run(db: sqlite_utils.Database, before: int | None = None) -> dict | None:
    """The newest score run (or the newest one before run `before`)."""
    where, params = ("WHERE run_id < ?", [before]) if before else ("", [])
    rows = list(db.query(f"SELECT * FROM score_runs {where} ORDER BY run_id DESC LIMIT 1", params))
    return rows[0] if rows else None


def run_of(db: sqlite_utils.Database, run_id: int) -> dict | None:
    rows = list(db.query("SELECT * FROM score_runs WHERE run_id = ?", [run_id]))
    return rows[0] if rows else None


def run_scores(db: sqlite_utils.Database, run_id: int) -> pd.DataFrame:
    return read_frame(db, "SELECT * FROM deal_scores WHERE run_id = ? ORDER BY rank", [run_id])


def risk_changes(db: sqlite_utils.Database, run_id: int) -> pd.DataFrame:
    """Each deal of a run beside its previous run's risk (NaN where it was not scored then)."""
    previous = latest_run(db, before=run_id)
    return read_frame(
        db,
        "SELECT s.deal_id, s.rank, s.risk, s.value_at_risk, s.win_prob, p.risk AS previous_risk, "
        "p.win_prob AS previous_win_prob FROM deal_scores s LEFT JOIN deal_scores p "
        "ON p.deal_id = s.deal_id AND p.run_id = ? WHERE s.run_id = ? ORDER BY s.rank",
        [previous["run_id"] if previous else -1, run_id],
    )


def deal_risk_history(db: sqlite_utils.Database, deal_id: str, runs: int = 10) -> pd.DataFrame:
    """A deal's risk and win probability over its last `runs` score runs, oldest first."""
    frame = read_frame(
        db,
        "SELECT r.run_id, r.as_of, s.risk, s.win_prob FROM deal_scores s "
        "JOIN score_runs r ON r.run_id = s.run_id WHERE s.deal_id = ? "
        "ORDER BY s.run_id DESC LIMIT ?",
        [deal_id, runs],
    )
    return frame.iloc[::-1].reset_index(drop=True)


def run_deal(db: sqlite_utils.Database, run_id: int, deal_id: str) -> dict | None:
    """One deal's row in a score run (None if it was not open then)."""
    rows = list(
        db.query("SELECT * FROM deal_scores WHERE run_id = ? AND deal_id = ?", [run_id, deal_id])
    )
    return rows[0] if rows else None
