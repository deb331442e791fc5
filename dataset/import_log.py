"""The import log and what an import writes beside the deals: one row per file imported (its
hash makes a re-import a no-op), the rows it set aside (quarantine), the fields it had, the
pipeline's stages and the reference tables (accounts, products, sales teams). Why apart: this is
the record of what came in and what was refused, read by `revbot imports` and `revbot
quarantine` and written by `dataset.ingest` only."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pandas as pd
import sqlite_utils

from dataset.database import _iso, _records


@dataclass(frozen=True)
class ImportRecord:
    """A row of the import log."""

    id: int
    file_name: str
    sha256: str
    table_name: str
    preset: str
    rows_read: int
    rows_accepted: int
    rows_set_aside: int
    as_of: str | None
    deals_new: int | None
    deals_changed: int | None
    imported_at: str


def find_import(db: sqlite_utils.Database, sha256: str) -> ImportRecord | None:
    row = db.execute(
        "SELECT id, file_name, sha256, table_name, preset, rows_read, rows_accepted, "
        "rows_set_aside, as_of, deals_new, deals_changed, imported_at FROM imports WHERE sha256 = ?",
        [sha256],
    ).fetchone()
    return ImportRecord(*row) if row else None


def add_import(
    db: sqlite_utils.Database,
    *,
    file_name: str,
    path: str,
    sha256: str,
    table_name: str,
    preset: str,
    encoding: str,
    rows_read: int,
    rows_accepted: int,
    rows_set_aside: int,
    as_of: date | None,
    notes: str,
) -> int:
    cur = db.execute(
        "INSERT INTO imports (file_name, path, sha256, table_name, preset, encoding, rows_read, "
        "rows_accepted, rows_set_aside, as_of, notes, imported_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            file_name,
            path,
            sha256,
            table_name,
            preset,
            encoding,
            rows_read,
            rows_accepted,
            rows_set_aside,
            _iso(as_of),
            notes,
            datetime.now(UTC).isoformat(timespec="seconds"),
        ],
    )
    return int(cur.lastrowid)


def import_log(db: sqlite_utils.Database) -> list[dict]:
    return list(db.query("SELECT * FROM imports ORDER BY id"))


def quarantined(db: sqlite_utils.Database, import_id: int | None, limit: int) -> list[dict]:
    """Rows set aside (all imports, or one), oldest first, with their file's name."""
    where, params = ("WHERE q.import_id = ?", [import_id]) if import_id else ("", [])
    return list(
        db.query(
            "SELECT q.import_id, i.file_name, q.line, q.reason, q.raw FROM quarantine q "
            f"JOIN imports i ON i.id = q.import_id {where} ORDER BY q.id LIMIT ?",
            [*params, limit],
        )
    )


def add_quarantine(db: sqlite_utils.Database, import_id: int, rejected: Iterable) -> None:
    db.conn.executemany(
        "INSERT INTO quarantine (import_id, line, reason, raw) VALUES (?, ?, ?, ?)",
        ((import_id, r.line, r.reason, r.raw) for r in rejected),
    )


def upsert_reference(
    db: sqlite_utils.Database, table: str, key: str, frame: pd.DataFrame, import_id: int
) -> None:
    """Accounts, products, sales teams: the latest import of a key wins."""
    columns = [c for c in db[table].columns_dict if c != "import_id"]
    data = frame.reindex(columns=columns).assign(import_id=import_id)
    cols = [*columns, "import_id"]
    sets = ", ".join(f"{c} = excluded.{c}" for c in cols if c != key)
    db.conn.executemany(
        f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
        f"ON CONFLICT({key}) DO UPDATE SET {sets}",
        _records(data, cols),
    )


def set_import_fields(db: sqlite_utils.Database, import_id: int, fields: Iterable[str]) -> None:
    """The canonical fields a deals export had (a column never exported is unknown, which is
    not the same as empty: no Next Step column is not "no next step")."""
    db.execute("UPDATE imports SET fields = ? WHERE id = ?", [",".join(sorted(fields)), import_id])


def exported_fields(db: sqlite_utils.Database) -> set[str]:
    """The fields of the newest deals export (by as-of date)."""
    row = db.execute(
        "SELECT fields FROM imports WHERE table_name = 'deals' ORDER BY as_of DESC, id DESC LIMIT 1"
    ).fetchone()
    return set(row[0].split(",")) if row and row[0] else set()


def upsert_stages(db: sqlite_utils.Database, stages: list[dict], preset: str, import_id: int):
    """The pipeline's stages as the latest deals import described them (order, probability)."""
    db.conn.executemany(
        "INSERT INTO stages (stage, status, rank, probability, preset, import_id) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(stage) DO UPDATE SET status = excluded.status, "
        "rank = excluded.rank, probability = excluded.probability, preset = excluded.preset, "
        "import_id = excluded.import_id",
        [(s["stage"], s["status"], s["rank"], s["probability"], preset, import_id) for s in stages],
    )


def set_import_counts(db: sqlite_utils.Database, import_id: int, new: int, changed: int) -> None:
    db.execute(
        "UPDATE imports SET deals_new = ?, deals_changed = ? WHERE id = ?",
        [new, changed, import_id],
    )
