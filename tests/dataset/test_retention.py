"""Retention: which runs keep their per-deal rows (pure), and pruning a real SQLite file the way
the writer does, keeping each pruned run's header and forecast quarters (the track record)."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from bot.config import ConfigError
from bot.settings import retention_of
from dataset import database, retention
from dataset.retention import Retention, to_prune

TODAY = date(2025, 6, 30)


def daily(days: int) -> pd.DataFrame:
    """One run a day for `days` days up to TODAY, numbered from 1."""
    return pd.DataFrame({"run_id": range(1, days + 1),
                         "as_of": [(TODAY - timedelta(days=days - i)).isoformat() for i in range(1, days + 1)]})  # fmt: skip


def test_daily_runs_are_kept_then_the_last_of_each_week():
    runs = daily(365)
    gone = set(to_prune(runs, TODAY, Retention(daily_days=90)))
    kept = runs[~runs["run_id"].isin(gone)]
    age = (pd.Timestamp(TODAY) - pd.to_datetime(kept["as_of"])).dt.days
    assert (age <= 90).sum() == 91  # every run of the last 90 days (and today's)
    old = pd.to_datetime(kept.loc[age > 90, "as_of"])
    weeks = old.dt.isocalendar()
    assert not weeks.duplicated(subset=["year", "week"]).any()  # one a week
    assert (old.dt.day_of_week == 6).mean() > 0.9  # the last of its week: a Sunday, but at the edge
    assert len(kept) < 91 + 40
    assert 365 not in gone  # the newest run, always


def test_weekly_runs_go_too_after_weekly_days_and_kept_runs_stay():
    runs = daily(365)
    gone = set(to_prune(runs, TODAY, Retention(daily_days=30, weekly_days=60), keep={5}))
    kept = runs[~runs["run_id"].isin(gone)]
    age = (pd.Timestamp(TODAY) - pd.to_datetime(kept["as_of"])).dt.days
    assert age[kept["run_id"] != 5].max() <= 90 and 5 in set(kept["run_id"])


def test_pruning_a_database_removes_the_rows_and_keeps_the_track_record(tmp_path):
    db = database.connect(tmp_path / "r.db")
    runs = daily(120)
    for r in runs.itertuples():
        db.execute("INSERT INTO score_runs (run_id, as_of, created_at, deals) VALUES (?, ?, ?, 2)",
                   [r.run_id, r.as_of, r.as_of])  # fmt: skip
        for d in ("A", "B"):
            db.execute("INSERT INTO deal_scores (run_id, deal_id, rank, win_prob, risk) VALUES (?, ?, 1, .5, 50)",
                       [r.run_id, d])  # fmt: skip
        db.execute("INSERT INTO forecast_quarters (run_id, scope, quarter, as_of, p10, p50, p90) "
                   "VALUES (?, 'all', '2025-Q2', ?, 1, 2, 3)", [r.run_id, r.as_of])  # fmt: skip
    db.conn.commit()
    gone = retention.prune(db, Retention(daily_days=30))
    assert gone == to_prune(runs, TODAY, Retention(daily_days=30))
    left = {r for (r,) in db.execute("SELECT DISTINCT run_id FROM deal_scores")}
    assert left == set(runs["run_id"]) - set(gone)
    assert db.execute("SELECT COUNT(*) FROM forecast_quarters").fetchone()[0] == 120
    assert db.execute("SELECT COUNT(*) FROM score_runs").fetchone()[0] == 120
    assert retention.pruned(db, gone[0])["rule"] == "daily for 30 days, then weekly"
    assert retention.pruned(db, 120) is None
    assert retention.prune(db, Retention(daily_days=30)) == []  # done once


@pytest.mark.parametrize("raw", [{"daily_days": 3}, {"weekly_days": -1}, {"daily": 90},
                                 {"daily_days": "90"}])  # fmt: skip
def test_bad_retention_settings_say_what_to_write(raw):
    with pytest.raises(ConfigError, match=r"\[retention\]"):
        retention_of({"retention": raw})
