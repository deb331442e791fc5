"""A score run's rows kept column by column: Parquet files inside the database, one per part of
the run's deals in id order.

Why: a row per open deal with every column in `deal_scores` made a million-deal run 6 s to write
(and its index by deal was rewritten all over by every run) and 7 s to read back for the bot; a
columnar file is written and read in about a second. `deal_scores` now keeps of each deal only
what is looked up deal by deal (`score_runs.KEYED`), on its key alone. Parts of `PART_ROWS` deals,
each with its first id, let one deal be read from one part (a `/deal` on an older run, a flag's
deal) without the rest. Values are stored as SQLite gives them back (dates as ISO text, a
missing number as null, a column's declared type), so a run reads the same whichever way it was
saved. Runs saved before schema 5 have every column in `deal_scores`; `dataset.score_runs`
chooses.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlite_utils

from dataset.database import _cells

# deals per part: a million-deal run is read from 245 parts as fast as from 62, and one deal
# from a small one faster (`lookup`)
PART_ROWS = 4_096
GROUP_ROWS = 1_024  # rows per Parquet row group in a part: one deal is read from one of them


def save(db: sqlite_utils.Database, run_id: int, frame: pd.DataFrame, types: dict[str, str]) -> None:  # fmt: skip
    """Store `frame` (one row per deal, sorted by deal_id; `types`: each column's SQLite type)
    as run `run_id`'s parts, within the caller's transaction. A run with no deals still gets one
    (empty) part: that is what says it was saved column-wise."""
    table = pa.table({c: _as_stored(frame[c], types[c]) for c in frame.columns})
    rows = []
    for part, start in enumerate(range(0, max(len(frame), 1), PART_ROWS)):
        piece = table.slice(start, PART_ROWS)
        first = piece.column("deal_id")[0].as_py() if piece.num_rows else None
        rows.append((run_id, part, first, _parquet(piece)))
    db.conn.executemany(
        "INSERT INTO score_columns (run_id, part, first_deal, data) VALUES (?, ?, ?, ?)", rows
    )


def stored(db: sqlite_utils.Database, run_id: int) -> bool:
    """Was run `run_id` saved column-wise?"""
    found = db.execute("SELECT 1 FROM score_columns WHERE run_id = ? LIMIT 1", [run_id]).fetchone()
    return found is not None


def read(db: sqlite_utils.Database, run_id: int, columns: Sequence[str] | None = None) -> pa.Table:
    """The run's rows in deal_id order (only `columns`, if given)."""
    parts = [
        _read(data, None if columns is None else list(columns))
        for (data,) in db.execute(
            "SELECT data FROM score_columns WHERE run_id = ? ORDER BY part", [run_id]
        )
    ]
    return pa.concat_tables(parts) if len(parts) > 1 else parts[0]


def read_deals(db: sqlite_utils.Database, run_id: int, deal_ids: Iterable[str],
               columns: Sequence[str] | None = None) -> pa.Table:  # fmt: skip
    """The rows of `deal_ids` in the run (those it holds), reading only the parts that may hold
    them; `columns` as in `read` (deal_id is always read)."""
    wanted = sorted({str(d) for d in deal_ids})
    firsts = [f for (f,) in db.execute(
        "SELECT first_deal FROM score_columns WHERE run_id = ? AND first_deal IS NOT NULL "
        "ORDER BY part", [run_id],
    )]  # fmt: skip
    # a deal can be only in the last part whose first id is not after it
    where = np.searchsorted(np.array(firsts, dtype=object), np.array(wanted, dtype=object),
                            side="right") - 1  # fmt: skip
    parts = sorted({int(p) for p in where if p >= 0}) or [0]  # none: the first, for the columns
    names = None if columns is None else list(dict.fromkeys(["deal_id", *columns]))
    marks = ", ".join("?" * len(parts))
    tables = [
        _read(data, names)
        for (data,) in db.execute(
            f"SELECT data FROM score_columns WHERE run_id = ? AND part IN ({marks}) ORDER BY part",
            [run_id, *parts],
        )
    ]
    if not tables:
        return pa.table({})
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    return table.filter(pc.is_in(table.column("deal_id"), value_set=pa.array(wanted, pa.string())))


def lookup(db: sqlite_utils.Database, run_id: int, deal_id: str,
           columns: Sequence[str] | None = None) -> dict | None:  # fmt: skip
    """One deal's row in the run (None if the run does not hold it), as Python values; reads
    one part, and of it only the row group whose ids span the deal's (what `/deal` waits for)."""
    row = db.execute(
        "SELECT data FROM score_columns WHERE run_id = ?1 AND part = (SELECT part FROM "
        "score_columns WHERE run_id = ?1 AND first_deal <= ?2 ORDER BY part DESC LIMIT 1)",
        [run_id, str(deal_id)],
    ).fetchone()
    if row is None:
        return None
    file = pq.ParquetFile(io.BytesIO(row[0]))
    meta, key = file.metadata, str(deal_id)
    groups = []
    for i in range(meta.num_row_groups):
        stats = meta.row_group(i).column(0).statistics  # deal_id is the first column
        if stats is None or not stats.has_min_max or stats.min <= key <= stats.max:
            groups.append(i)
    names = None if columns is None else list(dict.fromkeys(["deal_id", *columns]))
    table = file.read_row_groups(groups, columns=names)
    found = table.filter(pc.equal(table.column("deal_id"), key)).to_pylist()
    return found[0] if found else None


def frame(table: pa.Table) -> pd.DataFrame:
    """As pandas reads the same rows from SQLite: a column with no value at all (and every column
    of no rows) holds None, of dtype object, as a query's would."""
    out = table.to_pandas()
    for c in table.column_names:
        if table.column(c).null_count == table.num_rows:  # every column of no rows, too
            out[c] = pd.Series([None] * table.num_rows, dtype=object, index=out.index)
    return out


def _as_stored(s: pd.Series, kind: str) -> pa.Array:
    """The values as SQLite would store them in a column of type `kind`: text for TEXT (a date
    as YYYY-MM-DD), floats for REAL, integers for INTEGER; NaN, NaT and None as null."""
    if pd.api.types.is_datetime64_any_dtype(s):
        return pa.array(_cells(s), type=pa.string())
    if kind == "TEXT":
        if pd.api.types.is_string_dtype(s) or s.dtype == object:
            try:
                return pa.array(s, type=pa.string(), from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError):  # numbers among the names
                pass
        return pa.array([None if pd.isna(v) else str(v) for v in s], type=pa.string())
    values = pd.to_numeric(s, errors="coerce").astype(float).to_numpy()
    if kind == "INTEGER" and np.all(np.isnan(values) | (values == np.round(values))):
        return pa.array(values, from_pandas=True).cast(pa.int64())
    return pa.array(values, type=pa.float64(), from_pandas=True)


def _parquet(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out, compression="snappy", row_group_size=GROUP_ROWS)
    return out.getvalue()


def _read(data: bytes, columns: list[str] | None) -> pa.Table:
    # the file's own reader: `pq.read_table` builds a dataset first, most of a small part's time
    return pq.ParquetFile(io.BytesIO(data)).read(columns=columns)
