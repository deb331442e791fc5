"""The CRM as last read (issue 13): a mirror of its opportunities and their change history, its
stages, the log of syncs with each one's resume cursor, and the deals the CRM deleted or merged.

Why a mirror: the CRM's API gives only what changed since a moment, while an export of a day
needs every deal as it stood that day. Keeping what was read lets an incremental sync replay a
whole day (`dataset.crm_replay`) from a small read. Each page of a read is stored with its
cursor in one transaction, so a sync cut off half-way resumes after the last page it kept and
reading a page again replaces rows by id (nothing lost, nothing doubled).

Written only by the sync (the refresh's first step, or `revbot sync`), as is the `people` table
of the owners' e-mail addresses each page names (`dataset.people`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pandas as pd
import sqlite_utils

from dataset import people
from dataset.crm_reader import DELETED, MERGED_INTO, MODSTAMP, Page, StageInfo
from dataset.crm_replay import HEADER, TRACKED

# The tables are created with the others by `dataset.database.connect`.


def _now() -> str:
    """When a sync ran (a log timestamp, not the data's date)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _day(stamp: str | None) -> str | None:
    return None if not stamp else str(stamp)[:10]


@dataclass(frozen=True)
class Counted:
    """What a page brings compared with the mirror: records read, new deals, deals changed,
    deals newly removed (deleted or merged), history rows not read before."""

    records: int
    new: int
    changed: int
    removed: int
    changes: int = 0


def count(db: sqlite_utils.Database, crm: str, page: Page) -> Counted:
    """How many of a page's records are new to the mirror, changed since it, or newly removed
    (a record read again, or a merged-away deal HubSpot repeats, counts once)."""
    known: dict[str, tuple[str | None, int]] = {}
    for chunk in _chunks([r["Id"] for r in page.records], 500):
        marks = ", ".join("?" * len(chunk))
        for i, stamp, deleted in db.execute(
            f"SELECT id, modstamp, deleted FROM crm_records WHERE crm = ? AND id IN ({marks})",
            [crm, *chunk],
        ):
            known[i] = (stamp, deleted)
    new = changed = removed = 0
    for r in page.records:
        before, gone = known.get(r["Id"]), bool(r.get(DELETED))
        if before is None:
            new += not gone
        elif before[1] and gone:
            continue  # removed before: nothing new
        elif gone:
            removed += 1
        else:
            changed += before[0] != r[MODSTAMP] or bool(before[1])
    seen: set[str] = set()
    for chunk in _chunks([c["Id"] for c in page.changes], 500):
        marks = ", ".join("?" * len(chunk))
        seen.update(i for (i,) in db.execute(
            f"SELECT id FROM crm_changes WHERE crm = ? AND id IN ({marks})", [crm, *chunk]))  # fmt: skip
    fresh = sum(1 for c in page.changes if c["Id"] not in seen)
    return Counted(len(page.records), new, changed, removed, fresh)


def _chunks(items: list, size: int) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def start_run(db: sqlite_utils.Database, crm: str) -> tuple[int, str | None]:
    """Open a sync run; returns its id and the cursor to read from (where the last run of this
    CRM stopped, finished or not)."""
    cursor = resume_point(db, crm)
    with db.conn:
        db.execute(  # a run still 'running' was killed: its pages are kept, its days not imported
            "UPDATE sync_runs SET status = 'interrupted' WHERE crm = ? AND status = 'running'",
            [crm],
        )
        run_id = db.execute(
            "INSERT INTO sync_runs (crm, started_at, status, cursor_from, cursor) "
            "VALUES (?, ?, 'running', ?, ?)",
            [crm, _now(), cursor, cursor],
        ).lastrowid
    return int(run_id), cursor


def resume_point(db: sqlite_utils.Database, crm: str) -> str | None:
    """Where the last sync of this CRM stopped reading, finished or not (None: read it all)."""
    row = db.execute(
        "SELECT cursor FROM sync_runs WHERE crm = ? AND cursor IS NOT NULL ORDER BY id DESC LIMIT 1",
        [crm],
    ).fetchone()
    return row[0] if row else None


def first_created(db: sqlite_utils.Database, crm: str) -> date | None:
    """The day the oldest opportunity the CRM still has was created: where a backfill starts
    (a deal deleted years ago would only add empty weeks)."""
    row = db.execute(
        "SELECT MIN(SUBSTR(json_extract(record, '$.CreatedDate'), 1, 10)) FROM crm_records "
        "WHERE crm = ? AND deleted = 0",
        [crm],
    ).fetchone()
    return date.fromisoformat(row[0]) if row and row[0] else None


def keep_page(db: sqlite_utils.Database, crm: str, run_id: int, page: Page, seen: Counted) -> None:
    """Store one page and move the run's cursor past it, in one transaction."""
    with db.conn:
        gone = [r for r in page.records if r.get(DELETED)]
        db.conn.executemany(  # before the records: was this a deal revbot knew alive?
            "INSERT INTO removed_deals (deal_id, removed_on, how, merged_into, sync_id) "
            "SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM deals WHERE deal_id = ?) OR "
            "EXISTS (SELECT 1 FROM crm_records WHERE crm = ? AND id = ? AND deleted = 0) "
            "ON CONFLICT(deal_id) DO NOTHING",
            (
                (r["Id"], _day(r.get(MODSTAMP)), "merged" if r.get(MERGED_INTO) else "deleted",
                 r.get(MERGED_INTO), run_id, r["Id"], crm, r["Id"])
                for r in gone
            ),
        )  # fmt: skip
        db.conn.executemany(  # restored from the recycle bin: a deal again
            "DELETE FROM removed_deals WHERE deal_id = ?",
            ((r["Id"],) for r in page.records if not r.get(DELETED)),
        )
        db.conn.executemany(
            "INSERT INTO crm_records (crm, id, modstamp, deleted, merged_into, record, sync_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(crm, id) DO UPDATE SET "
            "modstamp = excluded.modstamp, deleted = excluded.deleted, "
            "merged_into = excluded.merged_into, record = excluded.record, "
            "sync_id = excluded.sync_id",
            (
                (crm, r["Id"], r.get(MODSTAMP), int(bool(r.get(DELETED))), r.get(MERGED_INTO),
                 json.dumps(r, default=str), run_id)
                for r in page.records
            ),
        )  # fmt: skip
        db.conn.executemany(
            "INSERT INTO crm_changes (crm, id, deal_id, at, change) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(crm, id) DO UPDATE SET deal_id = excluded.deal_id, at = excluded.at, "
            "change = excluded.change",
            (
                (
                    crm,
                    c["Id"],
                    c["OpportunityId"],
                    str(c["CreatedDate"]),
                    json.dumps(c, default=str),
                )
                for c in page.changes
            ),
        )
        db.conn.executemany(
            "INSERT INTO crm_field_changes VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(crm, id) DO "
            "UPDATE SET at = excluded.at, old_value = excluded.old_value, "
            "new_value = excluded.new_value",
            (
                (crm, c["Id"], c["OpportunityId"], str(c["CreatedDate"]), c["Field"],
                 c.get("OldValue"), c.get("NewValue"))
                for c in page.field_changes
            ),
        )  # fmt: skip
        people.keep(db, crm, page.people, _now())  # the owners' e-mail addresses
        db.execute(
            "UPDATE sync_runs SET cursor = ?, records = records + ?, new = new + ?, "
            "changes = changes + ?, removed = removed + ? WHERE id = ?",
            [page.cursor, seen.records, seen.new, seen.changes, seen.removed, run_id],
        )


def keep_stages(db: sqlite_utils.Database, crm: str, stages: list[StageInfo]) -> None:
    """The CRM's stages replace those read before (a stage removed in the CRM goes)."""
    with db.conn:
        db.execute("DELETE FROM crm_stages WHERE crm = ?", [crm])
        db.conn.executemany(
            "INSERT INTO crm_stages VALUES (?, ?, ?, ?, ?)",
            ((crm, s.label, s.status, s.probability, s.order) for s in stages),
        )


def stages(db: sqlite_utils.Database, crm: str) -> list[StageInfo]:
    return [
        StageInfo(label, status, probability, order)
        for label, status, probability, order in db.execute(
            "SELECT label, status, probability, sort_order FROM crm_stages WHERE crm = ? "
            "ORDER BY sort_order, label",
            [crm],
        )
    ]


def finish_run(
    db: sqlite_utils.Database, run_id: int, status: str, *, days: int = 0, as_of=None, note=None
) -> None:
    """Close a run: done (its days imported), stopped (the CRM refused; resumes next time) or
    failed."""
    with db.conn:
        db.execute(
            "UPDATE sync_runs SET status = ?, finished_at = ?, days = ?, as_of = ?, note = ? "
            "WHERE id = ?",
            [status, _now(), days, as_of.isoformat() if as_of else None, note, run_id],
        )


def last_synced_day(db: sqlite_utils.Database, crm: str) -> date | None:
    """The as-of day of this CRM's last finished sync (its export was imported)."""
    row = db.execute(
        "SELECT MAX(as_of) FROM sync_runs WHERE crm = ? AND status = 'done'", [crm]
    ).fetchone()
    return date.fromisoformat(row[0]) if row and row[0] else None


def runs(db: sqlite_utils.Database, limit: int = 20) -> list[dict]:
    """The latest syncs, newest first."""
    return list(db.query("SELECT * FROM sync_runs ORDER BY id DESC LIMIT ?", [limit]))


def _fields(column: str, names) -> str:
    return ", ".join(f"json_extract({column}, '$.{n}') AS \"{n}\"" for n in names)


def current(db: sqlite_utils.Database, crm: str) -> pd.DataFrame:
    """Every opportunity the CRM still has, as last read (the export's fields, read by SQLite
    out of the stored JSON: a hundred thousand records as Python dicts would be gigabytes)."""
    return pd.read_sql_query(
        f"SELECT {_fields('record', HEADER)} FROM crm_records WHERE crm = ? AND deleted = 0 "
        "ORDER BY id",
        db.conn,
        params=[crm],
    )


def history(db: sqlite_utils.Database, crm: str) -> pd.DataFrame:
    """Every change read, oldest first."""
    names = ("Id", "OpportunityId", "CreatedDate", *TRACKED)
    return pd.read_sql_query(
        f"SELECT {_fields('change', names)} FROM crm_changes WHERE crm = ? ORDER BY at, id",
        db.conn,
        params=[crm],
    )


def field_history(db: sqlite_utils.Database, crm: str) -> pd.DataFrame:
    """Every field change read (FIELD_TRACKED fields), oldest first."""
    return pd.read_sql_query(
        'SELECT id AS "Id", deal_id AS "OpportunityId", at AS "CreatedDate", field AS "Field", '
        'old_value AS "OldValue", new_value AS "NewValue" FROM crm_field_changes WHERE crm = ? '
        "ORDER BY at, id",
        db.conn,
        params=[crm],
    )


def removed(db: sqlite_utils.Database, since: str | None = None) -> pd.DataFrame:
    """Deals the CRM deleted or merged (removed on or after `since`)."""
    return pd.read_sql_query(
        "SELECT deal_id, removed_on, how, merged_into FROM removed_deals "
        "WHERE removed_on >= COALESCE(?, '')",
        db.conn,
        params=[since],
    )
