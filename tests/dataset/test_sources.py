"""Exports held in memory (what a CRM sync will hand over, one snapshot per day) go through the
same import as files: same history, same balance, same set-aside rules, same "already imported".
Real demo exports, real SQLite files, the real import."""

from __future__ import annotations

from datetime import date

import pytest

from dataset import database
from dataset.demo import DemoConfig, write_demo
from dataset.ingest import IngestError, Source, ingest_files, ingest_sources
from tests.dataset.test_bad_cells import GOOD, MAVENTECH

TABLES = ("deals", "deal_history", "deal_activity", "products", "accounts", "sales_teams", "stages")


def _rows(db, table: str) -> list[tuple]:
    cols = [c for c in db[table].columns_dict if c not in ("import_id",)]
    return sorted(db.execute(f"SELECT {', '.join(cols)} FROM {table}").fetchall(), key=repr)


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    write_demo(out, DemoConfig(deals=200, daily_exports=3, seed=11))
    return [*sorted(out.glob("*.csv")), *sorted((out / "exports").glob("*.csv"))]


def test_sources_give_the_same_history_as_the_files(demo_files, tmp_path):
    by_file = database.connect(tmp_path / "files.db")
    by_source = database.connect(tmp_path / "sources.db")
    files = ingest_files(by_file, demo_files)
    # shuffled: the import orders them (reference tables first, deals by as-of date) itself
    sources = [Source(p.name, p.read_bytes()) for p in reversed(demo_files)]
    got = ingest_sources(by_source, sources)
    assert len(files) == len(got) > 10
    assert sorted(r.summary() for r in got) == sorted(r.summary() for r in files)
    for table in TABLES:
        assert _rows(by_source, table) == _rows(by_file, table), table
    assert by_source["deal_history"].count > by_source["deals"].count  # history, not one state
    again = ingest_sources(by_source, sources[:3])
    assert [r.status for r in again] == ["already imported"] * 3


def test_a_sources_own_date_is_its_as_of_and_bad_rows_are_set_aside(db):
    rows = [GOOD, "B1,Ann Lee,GTX Pro,Acme,Won,2017-01-05,not a date,100"]
    data = ("\n".join([MAVENTECH, *rows]) + "\n").encode()
    (result,) = ingest_sources(db, [Source("crm.csv", data, as_of=date(2017, 3, 1))])
    assert result.summary().startswith(
        "crm.csv: deals via preset maventech: 2 read = 1 accepted + 1 set aside; as of 2017-03-01"
    ), result.summary()
    (aside,) = result.set_aside
    assert aside.line == 3 and "not a date" in aside.raw
    assert db.execute("SELECT COUNT(*) FROM quarantine").fetchone() == (1,)


def test_a_source_dated_after_today_is_refused(db):
    data = ("\n".join([MAVENTECH, GOOD]) + "\n").encode()
    with pytest.raises(IngestError, match="crm.csv: its date 2030-01-01 is not between"):
        ingest_sources(
            db, [Source("crm.csv", data, as_of=date(2030, 1, 1))], today=date(2026, 1, 1)
        )
    assert db["imports"].count == 0
