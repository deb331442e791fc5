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
