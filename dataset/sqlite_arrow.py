"""Query results straight into Arrow, by Apache Arrow's own SQLite driver (ADBC), where that gives
exactly what building the columns from Python's rows gives (`deal_columns._arrow`); None where it
might not, and the caller reads the rows as before.

Why: the morning's refresh reads the day's changes (a million rows for a million-deal pipeline)
from SQLite; Python's sqlite3 makes a tuple of objects of every row and Arrow then makes columns
of them: 3.7 s, where the driver fills the columns in C in 1.1 s.

Why careful: the driver opens its own connection, so its reads are checked to be of the same
moment as the caller's read transaction (the newest import and the tables' row counts), and it
types columns its own way (a column with no value is a number; numbers among texts are written
in its own format). A column is kept only where its type is what the rows would have given:
numbers in a numeric column, texts in a column declared TEXT (where SQLite stores nothing else),
dates parsed as the rows' are; anything else and the whole read is left to the rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import sqlite_utils

log = logging.getLogger(__name__)

try:  # a dependency; without it (or on any trouble) the rows are read as before
    import adbc_driver_sqlite.dbapi as adbc
except ImportError:  # pragma: no cover - installed with revbot
    adbc = None

_NUMBERS = (pa.int64(), pa.float64())


def read(
    db: sqlite_utils.Database,
    queries: Mapping[str, tuple[str, Sequence]],
    moment: tuple[int | None, dict[str, int]],
    declared: Mapping[str, Mapping[str, str]],
    is_date: Callable[[str], bool],
) -> dict[str, pa.Table] | None:
    """Each query's rows as an Arrow table, or None. `moment`: the newest import's id and the
    row counts of tables, as the caller's transaction sees them; the driver's reads must see the
    same. `declared`: by query, the SQLite type each of its columns was declared with (by name);
    `is_date`: the columns whose texts are dates (YYYY-MM-DD), as the rows' reader parses them."""
    path = _file_of(db)
    if adbc is None or path is None:
        return None
    try:
        # read only, by URI (a path's odd characters escaped); not autocommit: one read
        # transaction, so the checks and the rows describe the same moment
        with adbc.connect(Path(path).as_uri() + "?mode=ro", autocommit=False) as conn:
            cur = conn.cursor()
            newest, counts = moment
            cur.execute("SELECT MAX(id) FROM imports")
            (seen,) = cur.fetchone()
            for table, rows in counts.items():
                cur.execute(f"SELECT COUNT(*) FROM {table}")
                if cur.fetchone()[0] != rows:
                    return _miss(f"{table} changed since the read began")
            if seen != newest:
                return _miss("an import was written since the read began")
            # one batch: the driver types a column by its first batch and refuses what follows
            # otherwise (a column empty in the first thousand rows, filled later)
            cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(1 << 30)})
            out = {}
            for name, (sql, params) in queries.items():
                cur.execute(sql, list(params))
                table = _exact(cur.fetch_arrow_table(), declared.get(name, {}), is_date)
                if table is None:
                    return _miss(f"{name}: a column the driver types otherwise")
                out[name] = table
            conn.rollback()
            return out
    except Exception as exc:  # noqa: BLE001 - any trouble of the driver: read the rows instead
        return _miss(f"{type(exc).__name__}: {exc}")


def _miss(why: str) -> None:
    log.info("rows read by Python instead of the Arrow driver: %s", why)
    return None


def _file_of(db: sqlite_utils.Database) -> str | None:
    """The main database's file, None for one in memory."""
    for _, name, file in db.conn.execute("PRAGMA database_list"):
        if name == "main":
            return file or None
    return None


def _text(declared: Mapping[str, str], name: str) -> bool:
    """Declared TEXT: SQLite stores only texts there (numbers become their text), no BLOB aside."""
    return declared.get(name, "").upper() == "TEXT"


def _exact(table: pa.Table, declared: Mapping[str, str], is_date: Callable[[str], bool]):
    """`table` with each column as Python's rows would have made it, or None where that is not
    certain."""
    columns = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        empty = column.null_count == len(column)
        if is_date(name):
            if not (empty or column.type == pa.string()):
                return None
            text = column.cast(pa.string()) if empty else column
            columns.append(pc.strptime(text, format="%Y-%m-%d", unit="us"))
        elif empty:
            columns.append(pa.nulls(len(column)))
        elif column.type in _NUMBERS or (column.type == pa.string() and _text(declared, name)):
            columns.append(column)
        else:
            return None
    return pa.table([c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c for c in columns],
                    names=table.column_names)  # fmt: skip
