"""How long score runs keep their detail: every run for `daily_days` (default 90), then one run
a week (the last of each week), for `weekly_days` more (0, the default: for ever).

Why: each run keeps a row per open deal (its scores and reasons) and its forecasts; 100,000 deals
scored daily for a year is 36.5 million rows. What a pruned run keeps: its header (the day, the
model, the pipeline's value) and its forecast's quarters (the track record compares each quarter's
actual with every forecast made of it), so only the per-deal rows, the hygiene flags and the
forecast tables are removed, and the run is listed in `pruned_runs`. The newest run, and the run
each channel's last digest compared with, are never pruned. The ages are counted in data days
(the runs' as-of dates), not by the wall clock, like everything else. Called by the writer after
it saves a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import pandas as pd
import sqlite_utils

from dataset.database import read_frame

# the detail of a run, by table: what pruning removes (forecast_quarters and the header stay)
DETAIL_TABLES = ("deal_scores", "score_columns", "deal_flags", "run_forecasts")


@dataclass(frozen=True)
class Retention:
    daily_days: int = 90  # every run younger than this (data days) is kept whole
    weekly_days: int = 0  # after that, the last run of each week, for this many days (0: ever)


def to_prune(runs: pd.DataFrame, today: date, policy: Retention, keep: set[int] = frozenset()) -> list[int]:  # fmt: skip
    """The runs (run_id, as_of) whose detail the policy lets go, as of the data day `today`:
    older than `daily_days` and not the last run of their week, or older than `daily_days +
    weekly_days` (when that is set). The newest run and `keep` are never in it. Pure."""
    if runs.empty:
        return []
    days = pd.to_datetime(runs["as_of"])
    age = (pd.Timestamp(today) - days).dt.days
    iso = days.dt.isocalendar()
    week = iso["year"].astype(str) + "-" + iso["week"].astype(str)
    last_of_week = runs["run_id"] == runs.groupby(week.to_numpy())["run_id"].transform("max")
    old = age > policy.daily_days
    gone = old & ~last_of_week
    if policy.weekly_days:
        gone |= age > policy.daily_days + policy.weekly_days
    gone &= runs["run_id"] != runs["run_id"].max()
    return sorted(int(r) for r in runs.loc[gone, "run_id"] if int(r) not in keep)


def prune(db: sqlite_utils.Database, policy: Retention, keep: set[int] = frozenset()) -> list[int]:  # fmt: skip
    """Remove the detail of the runs the policy lets go (not pruned yet); returns their ids."""
    runs = read_frame(
        db,
        "SELECT run_id, as_of FROM score_runs WHERE run_id NOT IN (SELECT run_id FROM pruned_runs)",
    )
    latest = db.execute("SELECT MAX(as_of) FROM score_runs").fetchone()[0]
    if latest is None:
        return []
    ids = to_prune(runs, date.fromisoformat(latest[:10]), policy, set(keep))
    if not ids:
        return []
    rule = f"daily for {policy.daily_days} days, then weekly" + (
        f" for {policy.weekly_days} days" if policy.weekly_days else ""
    )
    now = datetime.now(UTC).isoformat(timespec="seconds")
    marks = ", ".join("?" * len(ids))
    with db.atomic():
        for table in DETAIL_TABLES:
            db.execute(f"DELETE FROM {table} WHERE run_id IN ({marks})", ids)
        db.conn.executemany(
            "INSERT INTO pruned_runs (run_id, pruned_at, rule) VALUES (?, ?, ?)",
            [(i, now, rule) for i in ids],
        )
    return ids


def pruned(db: sqlite_utils.Database, run_id: int) -> dict | None:
    """When and by which rule a run's detail was removed (None: it is whole). Reads only: a
    database opened read-only before the table existed simply has no pruned run."""
    if "pruned_runs" not in db.table_names():
        return None
    rows = list(db.query("SELECT * FROM pruned_runs WHERE run_id = ?", [run_id]))
    return rows[0] if rows else None
