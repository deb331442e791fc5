"""The deal tables' columnar copy (`dataset.deal_columns`): read with the imports after it added,
it gives exactly what reading the tables whole gives; where adding them would not be exact (an
earlier day, a products file, a restored database, rows written behind its back) the tables are
read whole again. The reference is a copy of the same file with the columnar copy dropped."""

from __future__ import annotations

import logging
import shutil
import sqlite3
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from dataset import database, deal_columns, deal_history
from dataset.database import read_frame
from dataset.demo import DemoConfig, write_demo
from dataset.ingest import ingest_files
from scoring.crm import prepare


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("columns")
    cfg = DemoConfig(deals=500, weekly_exports=False, daily_exports=4)
    write_demo(out, cfg)
    return out


def _files(world: Path) -> tuple[list[Path], list[Path]]:
    """The reference files, then the deal exports oldest first (today's last)."""
    refs = [world / n for n in ("accounts.csv", "products.csv", "sales_teams.csv")]
    return refs, [*sorted((world / "exports").glob("*.csv")), world / "sales_pipeline.csv"]


def _whole(path: Path, tmp: Path) -> dict[str, pd.DataFrame]:
    """The tables read whole: the same file without its columnar copy."""
    twin = tmp / f"whole-{path.stem}.db"
    db = database.connect(path)
    db.conn.execute("PRAGMA wal_checkpoint(FULL)")
    shutil.copy(path, twin)
    other = database.connect(twin)
    with other.atomic():
        other.execute("DELETE FROM meta WHERE key = ?", [deal_columns.KEY])
        other.execute("DELETE FROM deal_columns")
    out = deal_columns.load(other)
    other.close()
    return out


KEYS = {
    "deals": ["deal_id"],
    "history": ["deal_id", "as_of"],
    "activity": ["deal_id", "activity_date"],
}


def _same(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    """The same rows in the same order (each table's key's, which is unique)."""
    assert set(a) == set(b) == set(KEYS)
    for part, keys in KEYS.items():
        assert not a[part].duplicated(keys).any()
        in_order = a[part].sort_values(keys).reset_index(drop=True)
        pd.testing.assert_frame_equal(a[part], in_order, check_exact=True, obj=part)
        pd.testing.assert_frame_equal(a[part], b[part], check_exact=True, obj=part)


def _load(db, caplog, keep: bool = False) -> tuple[dict[str, pd.DataFrame], str]:
    """What `load` gives, and how it read it (its log line)."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=deal_columns.__name__):
        got = deal_columns.load(db, keep)
    (how,) = [r.getMessage() for r in caplog.records if r.name == deal_columns.__name__][-1:]
    return got, how


FROM_COPY = "the deal tables read from their columnar copy and"


def _saved(db) -> bool:
    return db.execute("SELECT value FROM meta WHERE key = ?", [deal_columns.KEY]).fetchone()


def test_each_morning_s_copy_plus_the_new_export_is_the_tables_read_whole(world, tmp_path, caplog):
    path = tmp_path / "crm.db"
    db = database.connect(path)
    refs, exports = _files(world)
    ingest_files(db, refs)
    ingest_files(db, exports[:2])
    deal_columns.load(db, keep=True)
    assert _saved(db)
    for export in exports[2:]:
        ingest_files(db, [export])
        got, how = _load(db, caplog, keep=True)  # the copy, then this export's rows
        assert how == f"{FROM_COPY} 1 later imports"
        _same(got, _whole(path, tmp_path))
    assert len(got["history"]) > len(got["deals"]) > 400
    # nothing new: the copy alone, unchanged
    got, how = _load(db, caplog)
    assert how == f"{FROM_COPY} 0 later imports"
    _same(got, _whole(path, tmp_path))
    # and what the scoring is given from it is the same to the row and the bit
    whole = _whole(path, tmp_path)  # leaves the twin file without a copy: read whole below
    twin = database.connect(tmp_path / f"whole-{path.stem}.db")
    a, b = prepare(deal_history.load_crm(db)), prepare(deal_history.load_crm(twin))
    assert len(whole["history"]) == len(a.history)
    for name in ("deals", "history", "activity", "spells"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)


def test_the_copy_is_what_is_read_where_it_can_be(world, tmp_path):
    """A write behind the copy's back that keeps the row counts (no revbot writer does this) is
    not seen: proof the copy was read, not the tables."""
    db = database.connect(tmp_path / "crm.db")
    refs, exports = _files(world)
    ingest_files(db, [*refs, *exports[:-1]])
    deal_columns.load(db, keep=True)
    ingest_files(db, exports[-1:])
    some = db.execute("SELECT deal_id, owner FROM deals ORDER BY deal_id LIMIT 1").fetchone()
    untouched = db.execute(
        "SELECT deal_id FROM deals WHERE deal_id NOT IN (SELECT deal_id FROM deal_history "
        "WHERE import_id = (SELECT MAX(id) FROM imports)) ORDER BY deal_id LIMIT 1"
    ).fetchone()[0]
    with db.atomic():
        db.execute("UPDATE deals SET owner = 'Someone Else' WHERE deal_id = ?", [untouched])
    deals = deal_columns.load(db)["deals"].set_index("deal_id")
    assert deals.loc[untouched, "owner"] != "Someone Else"
    assert some[0] in deals.index


@pytest.mark.parametrize("late", ["earlier day", "same day again", "products file"])
def test_an_import_the_copy_cannot_follow_reads_the_tables_whole(world, tmp_path, late, caplog):
    path = tmp_path / "crm.db"
    db = database.connect(path)
    refs, exports = _files(world)
    first = [exports[0], *exports[2:]] if late == "earlier day" else exports
    ingest_files(db, [*refs, *first])
    deal_columns.load(db, keep=True)
    if late == "earlier day":
        ingest_files(db, [exports[1]])  # a day between two already held
    elif late == "same day again":  # today's export again, some deals moved on
        again = pd.read_csv(exports[-1])
        again.loc[:20, "deal_stage"] = "Lost"
        again.to_csv(tmp_path / "sales_pipeline.csv", index=False)
        (day,) = db.execute("SELECT MAX(as_of) FROM imports").fetchone()
        ingest_files(db, [tmp_path / "sales_pipeline.csv"], as_of=date.fromisoformat(day))
    else:  # the products file again, one product renamed: every table's rows change
        products = pd.read_csv(refs[1])
        old = products.loc[0, "product"]
        products.loc[0, "product"] = old.upper() + " Pro"
        products.to_csv(tmp_path / "products.csv", index=False)
        ingest_files(db, [tmp_path / "products.csv"])
    got, how = _load(db, caplog, keep=True)
    assert how.startswith("the deal tables read whole: ") and (
        "products file" in how if late == "products file" else "not later than" in how
    )
    _same(got, _whole(path, tmp_path))
    assert _load(db, caplog)[1] == f"{FROM_COPY} 0 later imports"  # saved again, whole
    if late == "same day again":
        assert (got["history"]["stage"] == "Lost").sum() >= 21


def test_deals_the_crm_removed_are_left_out_but_kept_in_the_copy(world, tmp_path):
    path = tmp_path / "crm.db"
    db = database.connect(path)
    refs, exports = _files(world)
    ingest_files(db, [*refs, *exports])
    gone = [r[0] for r in db.execute("SELECT deal_id FROM deals ORDER BY deal_id LIMIT 3")]
    deal_columns.load(db, keep=True)
    with db.atomic():
        db.conn.executemany(
            "INSERT INTO removed_deals (deal_id, removed_on, how) VALUES (?, '2024-01-01', "
            "'deleted')",
            [(g,) for g in gone],
        )
    got = deal_columns.load(db, keep=True)
    assert not got["deals"]["deal_id"].isin(gone).any()
    assert not got["history"]["deal_id"].isin(gone).any()
    assert got["activity"]["deal_id"].isin(gone).any()  # activity is not filtered (as before)
    kept = read_frame(db, "SELECT COUNT(*) n FROM deals WHERE deal_id NOT IN "
                      "(SELECT deal_id FROM removed_deals)")["n"][0]  # fmt: skip
    assert len(got["deals"]) == kept
    with db.atomic():
        db.execute("DELETE FROM removed_deals")  # restored in the CRM: back from the copy
    assert deal_columns.load(db)["deals"]["deal_id"].isin(gone).sum() == 3


def test_a_copy_from_another_state_of_the_file_is_not_used(world, tmp_path, caplog):
    """A database restored from a backup older than its copy: the copy holds an import the
    database does not have, and rows it does not have."""
    path = tmp_path / "crm.db"
    db = database.connect(path)
    refs, exports = _files(world)
    ingest_files(db, [*refs, *exports[:-1]])
    db.conn.execute("PRAGMA wal_checkpoint(FULL)")
    shutil.copy(path, tmp_path / "older.db")
    ingest_files(db, exports[-1:])
    deal_columns.load(db, keep=True)
    older = database.connect(tmp_path / "older.db")
    with older.atomic():  # the newer file's copy carried into the older one
        older.execute("ATTACH DATABASE ? AS newer", [str(path)])
        older.execute("DELETE FROM deal_columns")
        older.execute("INSERT INTO deal_columns SELECT * FROM newer.deal_columns")
        older.execute("INSERT OR REPLACE INTO meta SELECT * FROM newer.meta WHERE key = ?",
                      [deal_columns.KEY])  # fmt: skip
    older.execute("DETACH DATABASE newer")
    got, how = _load(older, caplog)
    assert "made of other imports" in how
    _same(got, _whole(tmp_path / "older.db", tmp_path))


@pytest.mark.parametrize("damage", ["bytes", "activity row behind its back", "key"])
def test_a_damaged_or_outrun_copy_is_read_past(world, tmp_path, damage, caplog):
    path = tmp_path / "crm.db"
    db = database.connect(path)
    refs, exports = _files(world)
    ingest_files(db, [*refs, *exports])
    deal_columns.load(db, keep=True)
    with db.atomic():
        if damage == "bytes":
            db.execute("UPDATE deal_columns SET data = X'00112233' WHERE part = 'history'")
        elif damage == "key":
            db.execute("UPDATE meta SET value = '{not json' WHERE key = ?", [deal_columns.KEY])
        else:  # as a revbot before the copy would write it: no import recorded
            db.execute("INSERT INTO deal_activity VALUES ('ZZ-1', '2024-01-01', NULL)")
    got, how = _load(db, caplog)
    assert how.startswith("the deal tables read whole: ")
    _same(got, _whole(path, tmp_path))


def test_the_tables_read_whole_hold_what_sqlite_holds(world, tmp_path):
    db = database.connect(tmp_path / "crm.db")
    refs, exports = _files(world)
    ingest_files(db, [*refs, *exports])
    got = deal_history.load_crm(db)
    sql = read_frame(db, "SELECT deal_id, stage, close_date, value FROM deals ORDER BY deal_id")
    pd.testing.assert_frame_equal(got["deals"][sql.columns], sql, check_dtype=False)
    rows = read_frame(db, "SELECT deal_id, as_of, owner FROM deal_history ORDER BY 1, 2")
    pd.testing.assert_frame_equal(got["history"][rows.columns], rows, check_dtype=False)
    assert got["history"]["as_of"].dtype.kind == "M"
    assert got["history"]["has_next_step"].isna().all()  # the demo exports no next step


def test_a_copy_that_cannot_be_saved_now_waits_for_the_next_refresh(world, tmp_path):
    path = tmp_path / "crm.db"
    db = database.connect(path)
    refs, exports = _files(world)
    ingest_files(db, [*refs, *exports])
    other = sqlite3.connect(path)
    other.execute("BEGIN IMMEDIATE")  # another process's import holds the write lock
    try:
        db.execute("PRAGMA busy_timeout = 50")
        got = deal_columns.load(db, keep=True)
        assert not _saved(db)
    finally:
        other.rollback()
        other.close()
    _same(got, _whole(path, tmp_path))
    deal_columns.load(db, keep=True)
    assert _saved(db)


def _later(world: Path, tmp: Path, name: str, deal: int, **changes) -> Path:
    """Today's export with one deal's row changed (`changes`: column -> text), as a new file."""
    frame = pd.read_csv(world / "sales_pipeline.csv", dtype=str, keep_default_na=False)
    for column, text in changes.items():
        frame.loc[deal, column] = text
    frame.to_csv(tmp / name, index=False)
    return tmp / name


def _all_with_copy(world: Path, tmp: Path):
    """Every file imported and the copy saved: (path, database, the day after the last export,
    today's export)."""
    path = tmp / "crm.db"
    db = database.connect(path)
    refs, exports = _files(world)
    ingest_files(db, [*refs, *exports])
    deal_columns.load(db, keep=True)
    (day,) = db.execute("SELECT MAX(as_of) FROM imports").fetchone()
    return path, db, date.fromisoformat(day) + timedelta(days=1), pd.read_csv(exports[-1])


def test_a_change_the_import_does_not_count_is_still_read(world, tmp_path, caplog):
    """An amount changed beyond the 6 decimals the import compares: no history row is written,
    but the deal's latest state changed, and the copy follows it."""
    path, db, next_day, today = _all_with_copy(world, tmp_path)
    value = today.loc[1, "close_value"]
    later = _later(world, tmp_path, "later.csv", 1, close_value=f"{value}.0000001")
    ingest_files(db, [later], as_of=next_day)
    got, how = _load(db, caplog)
    assert how == f"{FROM_COPY} 1 later imports"
    _same(got, _whole(path, tmp_path))
    assert got["deals"]["value"].iloc[1] == value + 1e-7


def test_later_days_imported_out_of_order_after_the_copy(world, tmp_path, caplog):
    """Days 1, 2 and a corrected day 1 after the copy, all later than its days: the corrected
    export removes the history row of day 1 and leaves the deal's latest state at day 2's."""
    path, db, first, today = _all_with_copy(world, tmp_path)
    stage = today.loc[1, "deal_stage"]
    other = "Prospecting" if stage != "Prospecting" else "Engaging"
    for n, (text, at) in enumerate(((other, first), (other, first + timedelta(1)), (stage, first))):
        later = _later(world, tmp_path, f"d{n}.csv", 1, deal_stage=text)
        frame = pd.read_csv(later, dtype=str, keep_default_na=False)
        frame.loc[3, "close_value"] = str(1000 + n)  # files of different content
        frame.to_csv(later, index=False)
        ingest_files(db, [later], as_of=at)
    got, how = _load(db, caplog)
    assert how == f"{FROM_COPY} 3 later imports"
    _same(got, _whole(path, tmp_path))


def test_a_copy_of_no_deals_then_deals(world, tmp_path, caplog):
    path = tmp_path / "crm.db"
    db = database.connect(path)
    refs, exports = _files(world)
    ingest_files(db, refs)
    with db.atomic():  # a deal the CRM removed, before any deal was imported
        db.execute("INSERT INTO removed_deals (deal_id, removed_on, how) VALUES "
                   "('D070000001', '2024-01-01', 'deleted')")  # fmt: skip
    empty, how = _load(db, caplog, keep=True)
    assert how.startswith("the deal tables read whole") and all(len(f) == 0 for f in empty.values())
    ingest_files(db, exports)
    got, how = _load(db, caplog, keep=True)
    assert how == f"{FROM_COPY} {len(exports)} later imports"
    _same(got, _whole(path, tmp_path))
    assert "D070000001" not in set(got["deals"]["deal_id"])


def test_a_copy_read_past_is_saved_again(world, tmp_path, caplog):
    db = database.connect(tmp_path / "crm.db")
    refs, exports = _files(world)
    ingest_files(db, [*refs, *exports])
    deal_columns.load(db, keep=True)
    with db.atomic():  # the same tables, the copy's bytes damaged: its key still matches
        db.execute("UPDATE deal_columns SET data = X'00112233' WHERE part = 'history'")
    assert _load(db, caplog, keep=True)[1].startswith("the deal tables read whole")
    assert _load(db, caplog)[1] == f"{FROM_COPY} 0 later imports"


def _cells(frame: pd.DataFrame) -> list[tuple]:
    """Rows as plain values in deal order, dates as ISO text and missing as None: what
    `deal_history.states_before` (text from SQLite) and the history's Arrow types share."""
    out = frame.sort_values("deal_id").reset_index(drop=True)
    for name in ("as_of", "close_date"):
        out[name] = pd.to_datetime(out[name]).dt.strftime("%Y-%m-%d")
    return [tuple(None if pd.isna(v) else v for v in row) for row in out.itertuples(index=False)]


STATE_COLUMNS = ("owner", "product", "status", "close_date", "value", "stage")


@pytest.mark.parametrize("block", [100_000, 7], ids=["one block", "deals across blocks"])
@pytest.mark.parametrize("copy", ["saved", "saved, then an export", "none", "products file since"])
def test_each_day_s_states_in_one_pass_are_sqlite_s(world, tmp_path, copy, block, caplog, monkeypatch):  # fmt: skip
    """Many days' states from one pass over the history (the quarter's movement's): the same as
    asking SQLite for each day's, from the copy (with the exports after it) or not, whether a
    deal's rows come in one block or straddle two."""
    monkeypatch.setattr(deal_columns, "_BLOCK", block)
    db = database.connect(tmp_path / "crm.db")
    refs, exports = _files(world)
    ingest_files(db, [*refs, *exports[:-1]])
    if copy != "none":
        deal_columns.load(db, keep=True)
    if copy == "saved, then an export":
        ingest_files(db, exports[-1:])
    elif copy == "products file since":  # products renamed everywhere: the copy is not exact
        ingest_files(db, exports[-1:])
        products = pd.read_csv(refs[1])
        products.loc[0, "product"] = products.loc[0, "product"].upper() + " Pro"
        products.to_csv(tmp_path / "products.csv", index=False)
        ingest_files(db, [tmp_path / "products.csv"])
    days = sorted(pd.Timestamp(r[0]) for r in db.execute("SELECT DISTINCT as_of FROM deal_history"))
    assert len(days) >= 4
    asked = [*days, days[0] - timedelta(days=1), days[-1] + timedelta(days=3)]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=deal_columns.__name__):
        got = deal_columns.states_on(db, asked, STATE_COLUMNS)
    (how,) = [r.getMessage() for r in caplog.records if r.name == deal_columns.__name__]
    from_copy = copy in ("saved", "saved, then an export")
    assert how.startswith(
        "the deal history read from " + ("its columnar copy" if from_copy else "its table")
    )
    for day, states in zip(asked, got, strict=True):
        want = deal_history.states_before(db, (day + timedelta(days=1)).date())
        assert len(states) == len(want) and (len(states) > 400 or day < days[0])
        assert _cells(states) == _cells(want[["deal_id", "as_of", *STATE_COLUMNS]]), day
    assert _cells(got[0]) != _cells(got[len(days) - 1])  # the days differ: the test can tell
    (west,) = deal_columns.states_on(db, [days[1].tz_localize("America/New_York")], STATE_COLUMNS)
    assert _cells(west) == _cells(got[1])  # a day in a time zone is that day
    with pytest.raises(ValueError, match="not history columns"):
        deal_columns.states_on(db, asked, ["name"])
