"""What became of the deals of the run a digest compares with, asked for more deals than SQLite takes
parameters in one query: a company of 40,000 deals compared with its previous run. SQLite's
default limit is 32,766 (some builds raise it, as Debian's does to 250,000): the test sets it."""

from __future__ import annotations

import sqlite3

from dataset import database, deal_history
from dataset.ingest import ingest_files

HEADER = "opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value"


def test_more_deals_than_one_query_takes(tmp_path):
    n, stages = 40_000, ("Won", "Lost", "Engaging")
    lines = [HEADER]
    for i in range(n):
        stage = stages[i % 3]
        closed = stage != "Engaging"
        lines.append(f"D{i:06d},Ann Lee,GTX Pro,Acme {i % 50},{stage},2017-01-02,"
                     f"{'2017-03-01' if closed else ''},{1000 + i if closed else ''}")  # fmt: skip
    export = tmp_path / "sales_pipeline.csv"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    db = database.connect(tmp_path / "revbot.db")
    ingest_files(db, [export])
    db.conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32_766)
    ids = [f"D{i:06d}" for i in range(n)] + ["never seen"]
    closed = deal_history.closed_since(db, ids)
    assert len(ids) > 32_766
    assert len(closed) == closed["deal_id"].nunique() == 2 * n // 3 + 1  # won and lost, once each
    by_id = closed.set_index("deal_id")
    assert by_id.loc["D000000", "status"] == "won" and by_id.loc["D039997", "status"] == "lost"
    assert by_id.loc["D039997", "value"] == 1000 + 39_997
    assert "D000002" not in by_id.index and "D039998" not in by_id.index  # still open


def test_chunks_add_up_to_one_answer(tmp_path, monkeypatch):
    """Chunked, the answer is the one a single query gives: each deal once, values numbers
    even where a chunk's deals all lack one."""
    lines = [HEADER, "A1,Ann,GTX,Acme,Lost,2017-01-02,2017-02-01,", "A2,Ann,GTX,Acme,Lost,2017-01-02,2017-02-01,",
             "A3,Ann,GTX,Acme,Won,2017-01-02,2017-02-01,500", "A4,Ann,GTX,Acme,Engaging,2017-01-02,,",
             "A5,Ann,GTX,Acme,Won,2017-01-02,2017-02-01,700"]  # fmt: skip
    export = tmp_path / "sales_pipeline.csv"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    db = database.connect(tmp_path / "revbot.db")
    ingest_files(db, [export])
    whole = deal_history.closed_since(db, ["A1", "A2", "A3", "A4", "A5"])
    monkeypatch.setattr(deal_history, "IDS_PER_QUERY", 2)
    chunked = deal_history.closed_since(db, ["A1", "A2", "A3", "A4", "A5", "A3"])
    assert chunked["value"].dtype == whole["value"].dtype == float
    key = ["deal_id"]
    assert (
        chunked.sort_values(key)
        .reset_index(drop=True)
        .equals(whole.sort_values(key).reset_index(drop=True))
    )
    assert sorted(chunked["deal_id"]) == ["A1", "A2", "A3", "A5"]
