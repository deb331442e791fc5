"""The deal tables as the scoring reads them (latest states, history, activity dates), kept column
by column inside the database file (Parquet, in `deal_columns`), so that the morning's refresh
reads yesterday's million deals in under a second and only the day's changes from SQLite's rows,
instead of building all of them from those rows (26 s for the benchmark's 5 million rows).

Why apart: the copy is derived, never the truth, and this module alone decides when it may be
used. It records the imports it holds (their ids and hashes); a refresh reads it and adds, from
SQLite, exactly what the deals imports after it wrote, which is only possible where those imports
are of later days than any in the copy (an import then adds history rows and activity dates and
rewrites the deals it changed, nothing else; see `dataset.deal_history.write_deal_snapshot`).
Anything else (an import of an earlier or the same day, a products file, which renames products
everywhere, a restored database, a schema upgrade, row counts that do not add up) reads the three
tables whole again. Only the writer (the refresh) saves a new copy; deals the CRM deleted or
merged are left out when it is read, so the copy keeps them.

The latest-state table is kept as the deal's state (deal id and `STATE`): when it was first or
last seen changes every morning for every deal and is not needed to score. The deals whose state
an import changed are those it marked (`deals.state_import`): an export rewrites every deal's row,
and a change the import does not count as one (a value beyond 6 decimals) is still a change here.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import sqlite3
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlite_utils

from dataset.database import _DATE_COLUMNS
from dataset.deal_history import STATE, removed_ids

log = logging.getLogger(__name__)

VERSION = 2  # 2: the deals to read again are those `deals.state_import` marks
# the database schema of the deal tables the copy mirrors: schema 5 changed only the score runs,
# so a copy saved under schema 4 still holds (raise it with a schema that changes these tables)
TABLES_SCHEMA = 4
KEY = "deal_columns"  # its row in `meta`: what the copy holds
_CHUNK = 64 << 20  # bytes per row of `deal_columns` (SQLite's default limit is 1 GB a value)
_BLOCK = 100_000  # rows turned into columns at a time (a million rows' cells at once is memory)

_HISTORY_COLUMNS = (
    "deal_id, h.as_of, owner, product, account, stage, status, engage_date, close_date, value, "
    "probability, forecast_category, "
    # a next step is known missing only where the row's export had the column
    "CASE WHEN ',' || i.fields || ',' LIKE '%,next_step,%' THEN next_step IS NOT NULL "
    "AND TRIM(next_step) != '' END AS has_next_step, stage_changed, push_count, deal_type, "
    "lead_source"
)
# part -> (its whole query, its query for what the imports after `?` added, the order the copy
# keeps it in after adding those: its key's, as the whole query's. Sorted here by Arrow, the
# history is not sorted again, nor copied, by `scoring.crm.prepare`.)
PARTS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "deals": (
        f"SELECT deal_id, {', '.join(STATE)} FROM deals ORDER BY deal_id",
        f"SELECT deal_id, {', '.join(STATE)} FROM deals WHERE state_import > ?",
        ("deal_id",),
    ),
    "history": (
        f"SELECT {_HISTORY_COLUMNS} FROM deal_history h LEFT JOIN imports i ON i.id = h.import_id "
        "ORDER BY deal_id, h.as_of",
        f"SELECT {_HISTORY_COLUMNS} FROM deal_history h LEFT JOIN imports i ON i.id = h.import_id "
        "WHERE h.import_id > ?",
        ("deal_id", "as_of"),
    ),
    "activity": (
        "SELECT deal_id, activity_date FROM deal_activity ORDER BY deal_id, activity_date",
        "SELECT deal_id, activity_date FROM deal_activity WHERE import_id > ?",
        ("deal_id", "activity_date"),
    ),
}
_TABLES = {"deals": "deals", "history": "deal_history", "activity": "deal_activity"}
# the history's columns that are a deal's state as recorded, which a reader may ask for (the copy
# keeps whether a next step was given, not its text, and no names)
HISTORY_STATE = tuple(c for c in STATE if c not in ("name", "next_step"))


def load(db: sqlite_utils.Database, keep: bool = False) -> dict[str, pd.DataFrame]:
    """The deals (latest state), their history and activity dates, in their keys' order, without
    the deals the CRM deleted or merged. From the copy plus what came after it where that is
    exact, else from the tables; `keep` (the writer only): save what was read as the new copy."""
    with _one_snapshot(db):
        imports = db.execute("SELECT id, sha256, table_name, as_of FROM imports ORDER BY id")
        imports = imports.fetchall()
        saved = _saved_key(db)
        whole = False
        try:
            tables = _from_copy(db, saved, imports)
        except _ReadWhole as why:
            log.info("the deal tables read whole: %s", why)
            tables = {part: _arrow(db.conn.execute(sql)) for part, (sql, _, _) in PARTS.items()}
            whole = True
        removed = list(removed_ids(db))
    key = _key(imports, tables)
    if keep and (whole or key != saved):
        save(db, tables, key)
    return {part: (_without(t, removed) if part != "activity" else t).to_pandas()
            for part, t in tables.items()}  # fmt: skip


def states_on(db: sqlite_utils.Database, days: Sequence, columns: Sequence[str]) -> list[pd.DataFrame]:  # fmt: skip
    """Each deal's latest recorded state on or before each of `days` (deal_id, as_of and `columns`
    of `HISTORY_STATE`; the deals the CRM removed included), as `deal_history.states_before` gives
    it for the day after each, from one pass over the history: the copy's and the imports' after
    it where that is exact, else the table's. A block of rows at a time, so that memory grows
    with the deals, not with the history. Why: a day's states from SQLite's rows took 6.5 s for a
    million deals, and a quarter's movement wants three days."""
    unknown = [c for c in columns if c not in HISTORY_STATE]
    if unknown:
        raise ValueError(f"not history columns: {unknown}")
    names = ["deal_id", "as_of", *columns]
    # the day as written (a time zone's day is that day, not UTC's)
    ends = [pd.Timestamp(pd.Timestamp(d).date()) + pd.Timedelta(days=1) for d in days]
    with _one_snapshot(db):
        imports = db.execute("SELECT id, sha256, table_name, as_of FROM imports ORDER BY id")
        try:
            states = _from_copy_states(db, _saved_key(db), imports.fetchall(), names, ends)
        except _ReadWhole as why:
            log.info("the deal history read from its table: %s", why)
            sql = f"SELECT {', '.join(names)} FROM deal_history ORDER BY deal_id, as_of"
            states = _latest(_blocks(db.conn.execute(sql)), ends)
    return [_frame(t, names) for t in states]


def _from_copy_states(db: sqlite_utils.Database, key: dict | None, imports: list[tuple],
                      names: list[str], ends: list[pd.Timestamp]) -> list[pa.Table]:  # fmt: skip
    """`states_on` from the copy (a block at a time) and the rows of the imports after it (all
    of later days, so theirs are the later states); `_ReadWhole` where that is not exact."""
    last, later = _later(key, imports)
    try:
        data = db.execute("SELECT data FROM deal_columns WHERE part = 'history' ORDER BY chunk")
        copy = pq.ParquetFile(io.BytesIO(b"".join(d for (d,) in data)))
        if copy.metadata.num_rows != key["rows"].get("history"):
            raise _ReadWhole("the copy's rows are not those its key lists")
        added = _arrow(db.conn.execute(f"SELECT {', '.join(names)} FROM deal_history "
                                       "WHERE import_id > ? ORDER BY deal_id, as_of", [last]))  # fmt: skip
        (rows,) = db.execute("SELECT COUNT(*) FROM deal_history").fetchone()
        if rows != copy.metadata.num_rows + added.num_rows:  # a write this module does not know of
            raise _ReadWhole("the copy of deal_history does not add up")
        blocks = (pa.Table.from_batches([b]) for b in copy.iter_batches(_BLOCK, columns=names))
        states = _latest(blocks, ends)
    except (pa.ArrowException, OSError, ValueError) as exc:
        log.warning("the columnar copy of the deal history could not be read (%s)", exc)
        raise _ReadWhole("the copy could not be read") from exc
    log.info("the deal history read from its columnar copy and %d later imports", len(later))
    newer = _latest([added], ends)
    return [
        new if old is None else old if new is None else
        pa.concat_tables([old.filter(pc.invert(pc.is_in(old["deal_id"], new["deal_id"]))), new],
                         promote_options="permissive")
        for old, new in zip(states, newer, strict=True)
    ]  # fmt: skip


def _blocks(cursor: sqlite3.Cursor) -> Iterator[pa.Table]:
    """A query's rows as Arrow tables of `_BLOCK` rows, dates as timestamps."""
    names = [d[0] for d in cursor.description]
    while rows := cursor.fetchmany(_BLOCK):
        columns = zip(*rows, strict=True)
        yield pa.table([_column(n, c) for n, c in zip(names, columns, strict=True)], names=names)


def _latest(blocks: Iterable[pa.Table], ends: list[pd.Timestamp]) -> list[pa.Table]:
    """Each deal's last row before each of `ends`, from `blocks` in (deal, day) order (a deal's
    rows may straddle two blocks)."""
    found: list[list[pa.Table]] = [[] for _ in ends]
    for block in blocks:
        for parts, end in zip(found, ends, strict=True):
            rows = _last_of_each(block.filter(pc.less(block["as_of"], end.to_datetime64())))
            if not rows.num_rows:
                continue
            # a deal whose rows straddle two blocks: its row in the earlier one is not its last
            while parts and parts[-1]["deal_id"][-1] == rows["deal_id"][0]:
                parts[-1] = parts[-1].slice(0, parts[-1].num_rows - 1)
                if not parts[-1].num_rows:
                    parts.pop()
            parts.append(rows)
    return [pa.concat_tables(parts, promote_options="permissive") if parts else None
            for parts in found]  # fmt: skip


def _last_of_each(rows: pa.Table) -> pa.Table:
    """The last row of each run of the same deal id (rows in deal order)."""
    if rows.num_rows < 2:
        return rows
    ids = rows["deal_id"].combine_chunks()
    change = pc.not_equal(ids.slice(1), ids.slice(0, len(ids) - 1)).to_numpy(zero_copy_only=False)
    return rows.filter(np.append(change, True))


def _frame(states: pa.Table | None, names: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(columns=names) if states is None else states.to_pandas()
    # plain Python ids: a movement indexes by them, and pandas' index on Arrow strings makes
    # Python objects of them again at every lookup (3 s a movement for a million deals)
    frame["deal_id"] = frame["deal_id"].astype(object)
    return frame


def save(db: sqlite_utils.Database, tables: dict[str, pa.Table], key: dict) -> bool:
    """Replace the copy, in one transaction. Another process's long write (an import) only
    postpones it to the next refresh: the copy is never worth stopping a morning for."""
    blobs = {part: _parquet(t) for part, t in tables.items()}
    try:
        with db.atomic():
            db.execute("DELETE FROM deal_columns")
            db.conn.executemany(
                "INSERT INTO deal_columns (part, chunk, data) VALUES (?, ?, ?)",
                [
                    (part, n, blob[start : start + _CHUNK])
                    for part, blob in blobs.items()
                    for n, start in enumerate(range(0, max(len(blob), 1), _CHUNK))
                ],
            )
            db.execute(
                "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = "
                "excluded.value",
                [KEY, json.dumps(key)],
            )
    except sqlite3.OperationalError as exc:
        log.warning("the columnar copy of the deal tables was not saved (%s): next time", exc)
        return False
    return True


@contextlib.contextmanager
def _one_snapshot(db: sqlite_utils.Database) -> Iterator[None]:
    """Every read in one read transaction: the copy's key, the later rows and the row counts
    then describe the same moment, whatever another process writes meanwhile."""
    if db.conn.in_transaction:
        yield
        return
    db.conn.execute("BEGIN")
    try:
        yield
    finally:
        db.conn.execute("COMMIT")


def _saved_key(db: sqlite_utils.Database) -> dict | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", [KEY]).fetchone()
    try:
        key = json.loads(row[0]) if row else None
    except ValueError:
        return None
    ok = isinstance(key, dict) and key.get("version") == VERSION
    return key if ok and key.get("schema") == TABLES_SCHEMA else None


def _key(imports: list[tuple], tables: dict[str, pa.Table]) -> dict:
    """What a copy of `tables` holds: the imports up to the last one read, and its row counts."""
    deal_days = [day for _, _, table, day in imports if table == "deals" and day]
    return {
        "version": VERSION,
        "schema": TABLES_SCHEMA,
        "last_import": imports[-1][0] if imports else 0,
        "imports": _digest(imports),
        "last_day": max(deal_days, default=None),
        "rows": {part: t.num_rows for part, t in tables.items()},
    }


def _digest(imports: list[tuple]) -> str:
    h = hashlib.sha256()
    for row in imports:
        h.update(repr(row).encode())
    return h.hexdigest()


class _ReadWhole(Exception):
    """Why the copy cannot be used this time."""


def _from_copy(db: sqlite_utils.Database, key: dict | None, imports: list[tuple]) -> dict:
    """The copy with the later imports' rows added; `_ReadWhole` where that would not be
    exact."""
    last, later = _later(key, imports)
    try:
        copy = _read_copy(db)
    except (pa.ArrowException, OSError, ValueError) as exc:
        log.warning("the columnar copy of the deal tables could not be read (%s)", exc)
        raise _ReadWhole("the copy could not be read") from exc
    if {p: t.num_rows for p, t in copy.items()} != key["rows"]:
        raise _ReadWhole("the copy's rows are not those its key lists")
    out = {}
    for part, (_, sql, order) in PARTS.items():
        added = _arrow(db.conn.execute(sql, [last]))
        if added.column_names != copy[part].column_names:
            raise _ReadWhole(f"the columns of {_TABLES[part]} changed")
        out[part] = _merge(part, copy[part], added, order) if added.num_rows else copy[part]
    for part, t in out.items():
        (rows,) = db.execute(f"SELECT COUNT(*) FROM {_TABLES[part]}").fetchone()
        if rows != t.num_rows:  # a write this module does not know of
            log.warning("the columnar copy of %s does not add up (%d rows, %d in the table)",
                        _TABLES[part], t.num_rows, rows)  # fmt: skip
            raise _ReadWhole(f"the copy of {_TABLES[part]} does not add up")
    log.info("the deal tables read from their columnar copy and %d later imports", len(later))
    return out


def _later(key: dict | None, imports: list[tuple]) -> tuple[int, list[tuple]]:
    """The copy's last import and the imports after it; `_ReadWhole` where adding those to the
    copy would not be exact."""
    if key is None:
        raise _ReadWhole("no columnar copy saved (yet)")
    last = key.get("last_import")
    held = [row for row in imports if row[0] <= last] if isinstance(last, int) else None
    if held is None or _digest(held) != key.get("imports"):
        raise _ReadWhole("the copy was made of other imports (a database restored?)")
    later = [row for row in imports if row[0] > last]
    for _, _, table, day in later:
        if table == "products":
            raise _ReadWhole("a products file was imported since (products may be renamed)")
        if table == "deals" and not (day and day > (key.get("last_day") or "")):
            raise _ReadWhole(f"an export of {day}, not later than the copy's, was imported")
    return last, later


def _merge(part: str, old: pa.Table, added: pa.Table, order: tuple[str, ...]) -> pa.Table:
    """The copy's rows, the deals' latest states replaced where rewritten, plus the added rows,
    in `order`."""
    if part == "deals":
        old = _without(old, added["deal_id"].combine_chunks())
    both = pa.concat_tables([old, added], promote_options="permissive").combine_chunks()
    return both.take(pc.sort_indices(both, sort_keys=[(c, "ascending") for c in order]))


def _read_copy(db: sqlite_utils.Database) -> dict[str, pa.Table]:
    chunks: dict[str, list[bytes]] = {}
    for part, data in db.execute("SELECT part, data FROM deal_columns ORDER BY part, chunk"):
        chunks.setdefault(part, []).append(data)
    if set(chunks) != set(PARTS):
        raise ValueError(f"parts {sorted(chunks)}")
    return {part: pq.read_table(io.BytesIO(b"".join(chunks[part]))) for part in PARTS}


def _parquet(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out, compression="snappy")  # read 3x faster than zstd, 2x the size
    return out.getvalue()


def _arrow(cursor: sqlite3.Cursor) -> pa.Table:
    """A query's rows as an Arrow table, a block of rows at a time; dates as timestamps."""
    batches = list(_blocks(cursor))
    if not batches:
        return pa.table([_column(d[0], ()) for d in cursor.description],
                        names=[d[0] for d in cursor.description])  # fmt: skip
    return pa.concat_tables(batches, promote_options="permissive")


def _column(name: str, values) -> pa.Array:
    if name.endswith("_date") or name in _DATE_COLUMNS:
        text = pa.array(values, type=pa.string())
        return pc.strptime(text, format="%Y-%m-%d", unit="us")
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # SQLite's types mixed in one column
        return pa.array([v if v is None else str(v) for v in values], type=pa.string())


def _without(table: pa.Table, deal_ids) -> pa.Table:
    """The rows of other deals than `deal_ids` (a table without rows has no id type to match:
    its deal_id column is of Arrow's null type)."""
    if not len(deal_ids) or not table.num_rows:
        return table
    ids = table["deal_id"]
    drop = pc.is_in(ids, value_set=pa.array(deal_ids).cast(ids.type))
    return table.filter(pc.invert(drop))
