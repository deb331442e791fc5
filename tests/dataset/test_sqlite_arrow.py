"""Arrow's SQLite driver (`dataset.sqlite_arrow`) gives exactly the table that building the columns
from Python's rows gives (`deal_columns._arrow`), or nothing, and only of the moment the caller's
read transaction sees. Real SQLite files, the real driver."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pyarrow as pa
import pytest
import sqlite_utils

from dataset import database, sqlite_arrow
from dataset.deal_columns import _arrow, _declared, _is_date

pytest.importorskip("adbc_driver_sqlite")

# (declared type, values): what a CRM's columns hold, and what SQLite lets a column hold
PLAIN = {
    "texts": ("TEXT", ["a", "b", None, "c"]),
    "numbers in a text column": ("TEXT", [1, 2.5, "x", None]),
    "reals": ("REAL", [1.5, 2, None, 3.25]),
    "integers": ("INTEGER", [1, 2, None, 4]),
    "no value at all": ("TEXT", [None, None, None, None]),
    "dates": ("TEXT", ["2024-01-02", None, "2024-02-29", "2023-12-31"]),
    # a column empty in the first thousands of rows (the driver's own batches would refuse it)
    "filled late": ("TEXT", [None] * 5000 + ["late", None]),
    "numbers filled late": ("REAL", [None] * 5000 + [2.5, 3.0]),
}
HOSTILE = {
    "a text in a real column": ("REAL", [1.5, "n/a", 2.0, None]),
    "integers and reals": ("", [1, 2.5, 3, None]),
    "numbers and texts": ("", [1, "two", 3.5, None]),
    "bytes in a text column": ("TEXT", ["a", b"\x00\x01", None, "b"]),
    "bytes alone": ("", [b"x", b"y", None, b"z"]),
}


def _table(path: Path, declared: str, values: list, date: bool) -> tuple:
    name = "close_date" if date else "value"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE imports (id INTEGER PRIMARY KEY)")
    conn.execute(f"CREATE TABLE t (k INTEGER, {name} {declared})")
    conn.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(values)))
    conn.commit()
    conn.close()
    db = database.connect(path)
    return db, f"SELECT k, {name} FROM t ORDER BY k", {"t": len(values)}


def _both(db, sql: str, counts: dict, params=()):
    rows = _arrow(db.conn.execute(sql, list(params)))
    fast = sqlite_arrow.read(db, {"q": (sql, params)}, (None, counts),
                             {"q": _declared(db, "t")}, _is_date)  # fmt: skip
    return rows, None if fast is None else fast["q"]


@pytest.mark.parametrize("case", list(PLAIN))
def test_plain_columns_come_from_the_driver_exactly_as_from_the_rows(case, tmp_path):
    declared, values = PLAIN[case]
    folder = tmp_path / "a folder with 100% odd # names?"  # the driver opens the file by URI
    folder.mkdir()
    db, sql, counts = _table(folder / "t.db", declared, values, date=case == "dates")
    rows, fast = _both(db, sql, counts)
    assert fast is not None, "the driver should read these"
    assert fast.schema == rows.schema
    assert fast.equals(rows.combine_chunks())
    # no row at all: the types the rows' reader gives an empty result
    rows, fast = _both(db, sql.replace("ORDER BY", "WHERE k < ? ORDER BY"), counts, [0])
    assert fast is not None and fast.num_rows == 0
    assert fast.schema == rows.schema


@pytest.mark.parametrize("case", list(HOSTILE))
def test_columns_the_driver_types_otherwise_are_left_to_the_rows(case, tmp_path):
    declared, values = HOSTILE[case]
    db, sql, counts = _table(tmp_path / "t.db", declared, values, date=False)
    rows, fast = _both(db, sql, counts)
    assert fast is None or fast.equals(rows.combine_chunks()), (fast, rows)


def test_a_write_after_the_read_began_sends_the_read_back_to_the_rows(tmp_path):
    path = tmp_path / "t.db"
    db, sql, counts = _table(path, "TEXT", ["a", "b"], date=False)
    db.conn.execute("PRAGMA journal_mode=WAL")
    db.conn.execute("BEGIN")
    seen = db.conn.execute("SELECT COUNT(*) FROM t").fetchone()[0]
    other = sqlite3.connect(path)
    other.execute("INSERT INTO t VALUES (9, 'late')")
    other.commit()
    rows, fast = _both(db, sql, {"t": seen})
    assert fast is None
    assert rows.num_rows == seen == 2  # the caller's own moment
    db.conn.execute("COMMIT")
    # and an import written since, with the same row counts
    other.execute("INSERT INTO imports (id) VALUES (7)")
    other.commit()
    declared = {"q": _declared(db, "t")}
    assert sqlite_arrow.read(db, {"q": (sql, ())}, (None, {"t": 3}), declared, _is_date) is None
    assert sqlite_arrow.read(db, {"q": (sql, ())}, (7, {"t": 3}), declared, _is_date)


def test_a_database_in_memory_is_read_by_rows():
    db = sqlite_utils.Database(memory=True)
    fast = sqlite_arrow.read(db, {"q": ("SELECT 1 AS k", ())}, (None, {}), {"q": {}}, _is_date)
    assert fast is None
    assert _arrow(db.conn.execute("SELECT 1 AS k")).to_pydict() == {"k": [1]}


def test_types_of_a_whole_read_are_those_of_the_rows(tmp_path):
    """A guard on the driver itself: if a release changes how it types a column of texts or
    numbers, the fast path must still agree with the rows (or step aside)."""
    db, sql, counts = _table(tmp_path / "t.db", "REAL", [0.1, 1e300, -0.0, None], date=False)
    rows, fast = _both(db, sql, counts)
    assert fast is not None and fast.equals(rows.combine_chunks())
    assert fast.schema.field("value").type == pa.float64()
