"""Bulk reads through ADBC's Arrow reader give the frame sqlite3 gives (`database.read_frame`,
`bulk=True`), and fall back to sqlite3 where the driver cannot read: mixed SQLite types in a
column, a column NULL for its first rows, a read inside an open write transaction."""

from __future__ import annotations

import pandas as pd
import pytest

from dataset import database, deal_history, score_runs
from dataset.database import _arrow_frame, read_frame
from dataset.demo import DemoConfig, write_demo
from dataset.ingest import ingest_files


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("arrow")
    write_demo(tmp / "demo", DemoConfig(deals=600, daily_exports=2, seed=5))
    db = database.connect(tmp / "revbot.db")
    ingest_files(db, [tmp / "demo", tmp / "demo" / "exports"])
    return db


def _queries(db) -> list[tuple[str, list]]:
    """The queries `load_crm` makes, as it makes them."""
    seen = []
    real = deal_history.read_frame

    def spy(db_, sql, params=(), bulk=False):
        seen.append((sql, list(params), bulk))
        return real(db_, sql, params, bulk)

    deal_history.read_frame = spy
    try:
        deal_history.load_crm(db)
    finally:
        deal_history.read_frame = real
    return seen


def test_the_crms_tables_read_the_same_through_arrow(demo_db):
    bulk = [(sql, params) for sql, params, big in _queries(demo_db) if big]
    assert len(bulk) == 3  # deals, history, activity
    for sql, params in bulk:
        assert _arrow_frame(demo_db, sql, params) is not None  # the Arrow reader read it
        fast = read_frame(demo_db, sql, params, bulk=True)
        pd.testing.assert_frame_equal(fast, read_frame(demo_db, sql, params))
        assert len(fast) > 0


def test_a_score_run_reads_the_same_through_arrow(demo_db, tmp_path):
    scores = pd.DataFrame(
        {"owner": ["A", None, "C"], "manager": None, "region": "East", "product": "GTX",
         "account": ["x", "y", None], "stage": "Engaging", "value": [10.0, None, 30.0],
         "win_prob": [0.2, 0.5, 0.9], "risk": [50.0, 40.0, 5.0], "value_at_risk": [8.0, 0, 3],
         "expected_close": [pd.Timestamp("2024-05-01"), pd.NaT, pd.Timestamp("2024-06-01")],
         "rank": [1, 2, 3], "drivers": ['[{"key": "a"}]', None, None], "actions": None},
        index=pd.Index(["d1", "d2", "d3"], name="deal_id"),
    )  # fmt: skip
    for name, _ in score_runs.SCORE_PARTS:
        scores[name] = 1.0
    db = database.connect(tmp_path / "runs.db")
    run_id = score_runs.write_score_run(db, as_of=pd.Timestamp("2024-04-01").date(), scores=scores,
                                        model_hash="m", confidence="high", base_rate=0.4)  # fmt: skip
    sql = "SELECT * FROM deal_scores WHERE run_id = ? ORDER BY rank"
    assert _arrow_frame(db, sql, [run_id]) is not None
    pd.testing.assert_frame_equal(score_runs.run_scores(db, run_id), read_frame(db, sql, [run_id]))


@pytest.mark.parametrize(
    "rows",
    [
        [(i, None) for i in range(5)] + [(12.5, "x")],  # an integer column holding a real
        [(1, None)] * 5 + [(2, "late text")],  # text after a run of NULLs
        [(1, "a"), (2, 7)],  # text and a number in one column
    ],
)
def test_what_the_arrow_reader_refuses_is_read_by_sqlite3(tmp_path, monkeypatch, rows):
    monkeypatch.setattr(database, "ARROW_BATCH_ROWS", 2)  # its type is read off the first rows
    db = database.connect(tmp_path / "mixed.db")
    db.execute("CREATE TABLE t (p INTEGER, s TEXT)")
    with db.atomic():
        db.conn.executemany("INSERT INTO t VALUES (?, ?)", rows)
    frame = read_frame(db, "SELECT * FROM t", bulk=True)
    pd.testing.assert_frame_equal(frame, read_frame(db, "SELECT * FROM t"))
    assert len(frame) == len(rows)


def test_a_read_inside_a_write_sees_the_writes(tmp_path):
    db = database.connect(tmp_path / "open.db")
    db.execute("CREATE TABLE t (p INTEGER)")
    with db.atomic():
        db.execute("INSERT INTO t VALUES (1)")
        # another connection would not see the uncommitted row: sqlite3 reads it
        assert read_frame(db, "SELECT * FROM t", bulk=True)["p"].tolist() == [1]
