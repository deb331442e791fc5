"""The writer applies the retention policy when it saves a run (the small real pipeline)."""

from __future__ import annotations

from datetime import date, timedelta

from bot.refresh import Refresher
from bot.settings import Settings
from dataset import database, retention, score_runs
from dataset.retention import Retention


def test_the_refresh_prunes_old_runs_detail_and_keeps_the_newest(small_crm, db_copy):
    refresher = Refresher(db_copy, small_crm["artifacts"], Settings(retention=Retention(daily_days=7)))  # fmt: skip
    db = refresher.db()
    end = date.fromisoformat(score_runs.latest_run(db)["as_of"][:10])
    monday = end - timedelta(days=end.weekday() + 28)  # a week four weeks back: both days in it
    said = []
    first = refresher.refresh(said.append, as_of=monday, explain_top=10).run_id
    second = refresher.refresh(said.append, as_of=monday + timedelta(days=1), explain_top=10).run_id
    db = database.connect(db_copy)  # the refresher's own connection is gone with it
    refresher.close()
    assert retention.pruned(db, first) is not None  # older than 7 days, not the last of its week
    assert retention.pruned(db, second) is None  # the last of its week
    assert score_runs.run_scores(db, first).empty and not score_runs.run_scores(db, second).empty
    assert any("retention: the per-deal rows of 1 older run removed" in s for s in said)
