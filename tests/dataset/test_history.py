"""Successive exports keep each deal's state over time, and only its changes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from dataset import database, deal_history
from dataset.demo import DemoConfig, write_demo
from dataset.ingest import ingest_files

CFG = DemoConfig(deals=1500, daily_exports=3, weekly_exports=False)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    write_demo(out, CFG)
    return out


def _daily(demo: Path) -> list[Path]:
    return sorted((demo / "exports").glob("pipeline_*.csv"))


def _history(db) -> list[tuple]:
    return db.execute("SELECT * FROM deal_history ORDER BY deal_id, as_of").fetchall()


def test_two_daily_exports_give_stage_history(db, demo):
    day1, day2 = _daily(demo)[-2:]
    ingest_files(db, [demo / "products.csv", day1])
    ingest_files(db, [day2])
    a = pd.read_csv(day1, dtype=str).set_index("opportunity_id")
    b = pd.read_csv(day2, dtype=str).set_index("opportunity_id")
    both = a.index.intersection(b.index)
    moved = [d for d in both if a.at[d, "deal_stage"] != b.at[d, "deal_stage"]]
    assert moved, "the generator should move some deals between two days"
    d1, d2 = day1.stem.split("_")[1], day2.stem.split("_")[1]
    for deal in moved:
        rows = deal_history.deal_history(db, deal)
        assert [(r["as_of"], r["stage"]) for r in rows] == [
            (d1, a.at[deal, "deal_stage"]),
            (d2, b.at[deal, "deal_stage"]),
        ]
    same = [d for d in both if a.loc[d].equals(b.loc[d])]
    assert same
    for deal in same[:50]:
        assert [r["as_of"] for r in deal_history.deal_history(db, deal)] == [d1]
    changed = db.execute("SELECT deals_changed FROM imports ORDER BY id DESC").fetchone()[0]
    differing = sum(
        1 for d in both if not a.drop(columns="last_activity").loc[d].equals(
            b.drop(columns="last_activity").loc[d])
    )  # fmt: skip
    assert changed == differing


def test_close_date_pushes_are_recorded(db, demo):
    ingest_files(db, [demo, demo / "exports"])
    pushes = db.execute(
        """
        SELECT COUNT(*) FROM deal_history h JOIN deal_history p
          ON p.deal_id = h.deal_id AND p.as_of = (
             SELECT MAX(as_of) FROM deal_history WHERE deal_id = h.deal_id AND as_of < h.as_of)
        WHERE h.status = 'open' AND p.status = 'open' AND h.close_date > p.close_date
        """
    ).fetchone()[0]
    truth = pd.read_csv(demo / "truth" / "deals.csv")
    assert pushes > 0
    assert pushes <= int(truth["pushes"].sum())


def test_back_filled_export_gives_the_same_history(tmp_path, demo):
    days = _daily(demo)
    forward = database.connect(tmp_path / "f.db")
    for day in days:
        ingest_files(forward, [day])
    backward = database.connect(tmp_path / "b.db")
    for day in reversed(days):
        ingest_files(backward, [day])
    strip = lambda rows: [r[:-1] for r in rows]  # noqa: E731 (import ids differ)
    assert strip(_history(forward)) == strip(_history(backward))
    cols = "deal_id, stage, close_date, last_activity, first_seen, last_seen"
    q = f"SELECT {cols} FROM deals ORDER BY deal_id"
    assert forward.execute(q).fetchall() == backward.execute(q).fetchall()


def test_same_file_twice_and_a_copy_change_nothing(db, demo, tmp_path):
    day = _daily(demo)[-1]
    ingest_files(db, [day])
    before = database.table_counts(db), _history(db)
    copy = tmp_path / "renamed.csv"
    shutil.copy(day, copy)
    (r1,) = ingest_files(db, [day])
    (r2,) = ingest_files(db, [copy])
    assert r1.status == r2.status == "already imported"
    assert (database.table_counts(db), _history(db)) == before


def test_activity_dates_are_kept_apart(db, demo):
    ingest_files(db, _daily(demo))
    n_days = len(_daily(demo))
    per_deal = db.execute(
        "SELECT MAX(c) FROM (SELECT COUNT(*) c FROM deal_activity GROUP BY deal_id)"
    ).fetchone()[0]
    assert 1 <= per_deal <= n_days
    last = db.execute(
        "SELECT COUNT(*) FROM deals d WHERE last_activity != "
        "(SELECT MAX(activity_date) FROM deal_activity a WHERE a.deal_id = d.deal_id)"
    ).fetchone()[0]
    assert last == 0
