"""The real-world case: the MavenTech files exactly as published, quirks included."""

from __future__ import annotations

import hashlib

from bot.cli import main
from dataset import database, deal_history


def _dump(db) -> str:
    """A digest of every row of every table except the import log's timestamps."""
    h = hashlib.sha256()
    for table in sorted(db.table_names()):
        cols = [c for c in db[table].columns_dict if c != "imported_at"]
        for row in db.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY 1, 2"):
            h.update(repr(row).encode())
    return h.hexdigest()


def test_import_prints_and_keeps_the_balance(maventech, tmp_path, capsys):
    path = tmp_path / "m.db"
    assert main(["ingest", str(maventech), "--db", str(path)]) == 0
    out = capsys.readouterr().out
    assert (
        "sales_pipeline.csv: deals via preset maventech: 8800 read = 8800 accepted + 0 set aside"
        in out
    )
    assert "as of 2017-12-31" in out
    assert "data_dictionary.csv: skipped" in out
    db = database.connect(path)
    log = {r["file_name"]: r for r in db.query("SELECT * FROM imports")}
    assert log["sales_pipeline.csv"]["rows_read"] == 8800
    assert all(r["rows_read"] == r["rows_accepted"] + r["rows_set_aside"] for r in log.values())
    assert log["sales_pipeline.csv"]["as_of"] == "2017-12-31"
    assert db["deals"].count == 8800
    assert db["accounts"].count == 85 and db["sales_teams"].count == 35
    assert db["products"].count == 7


def test_gtxpro_resolves_to_gtx_pro_and_quirks_load(maventech, db):
    from dataset.ingest import ingest_files

    ingest_files(db, [maventech])
    products = dict(db.execute("SELECT product, COUNT(*) FROM deals GROUP BY product").fetchall())
    assert "GTXPro" not in products
    assert products["GTX Pro"] == 1480  # every GTX Pro deal is spelt GTXPro in the export
    assert set(products) == {r[0] for r in db.execute("SELECT product FROM products")}
    # open deals without an account, prospecting deals without an engage date: kept, as NULL
    assert (
        db.execute(
            "SELECT COUNT(*) FROM deals WHERE status = 'open' AND account IS NULL"
        ).fetchone()[0]
        == 1425
    )
    assert (
        db.execute(
            "SELECT COUNT(*) FROM deals WHERE stage = 'Prospecting' AND engage_date IS NULL"
        ).fetchone()[0]
        == 500
    )
    sectors = {r[0] for r in db.execute("SELECT DISTINCT sector FROM accounts")}
    assert "technology" in sectors and "technolgy" not in sectors
    summary = deal_history.pipeline_summary(db)
    assert (summary.open_deals, summary.won, summary.lost) == (2089, 4238, 2473)


def test_second_import_changes_no_row(maventech, tmp_path, capsys):
    path = tmp_path / "m.db"
    main(["ingest", str(maventech), "--db", str(path)])
    before = _dump(database.connect(path))
    capsys.readouterr()
    assert main(["ingest", str(maventech), "--db", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.count("already imported") == 4
    assert _dump(database.connect(path)) == before
