"""The deals as imported: their history of states (changes only, see `dataset.database`), their
latest state, their activity dates, and the CRM read back whole for scoring and the forecast
(`load_crm`). Why apart: this is the data everything else is computed from; only an import
writes it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import pandas as pd
import sqlite_utils

from dataset.database import _iso, _records, read_frame
from dataset.import_log import exported_fields

IDS_PER_QUERY = 10_000  # deal ids looked up in one query (SQLite's limit: 32,766 parameters)
# The columns whose change makes a new history row (last activity is tracked apart).
STATE = (
    "name",
    "owner",
    "product",
    "account",
    "stage",
    "status",
    "engage_date",
    "close_date",
    "value",
    "probability",
    "forecast_category",
    "next_step",
    "stage_changed",
    "push_count",
    "deal_type",
    "lead_source",
)


def product_names(db: sqlite_utils.Database) -> list[str]:
    return [r[0] for r in db.execute("SELECT product FROM products")]


def rename_products(db: sqlite_utils.Database, aliases: dict[str, str]) -> None:
    """Apply spelling aliases found later (products imported after the deals that name them)."""
    for variant, canonical in aliases.items():
        for table in ("deal_history", "deals"):
            db.execute(f"UPDATE {table} SET product = ? WHERE product = ?", [canonical, variant])


def deal_ids(db: sqlite_utils.Database) -> list[str]:
    """Every deal id imported so far."""
    return [r[0] for r in db.execute("SELECT deal_id FROM deals")]


def distinct_deal_products(db: sqlite_utils.Database) -> list[str]:
    return [
        r[0] for r in db.execute("SELECT DISTINCT product FROM deals WHERE product IS NOT NULL")
    ]


def states_before(db: sqlite_utils.Database, as_of: date) -> pd.DataFrame:
    """Each deal's latest recorded state strictly before `as_of` (empty frame if none)."""
    return _nearest_states(db, as_of, "<", "MAX")


def states_after(db: sqlite_utils.Database, as_of: date) -> pd.DataFrame:
    """Each deal's first recorded state strictly after `as_of` (for back-filled imports)."""
    return _nearest_states(db, as_of, ">", "MIN")


def _nearest_states(db: sqlite_utils.Database, as_of: date, op: str, pick: str) -> pd.DataFrame:
    return pd.read_sql_query(
        f"SELECT h.deal_id, h.as_of, {', '.join('h.' + c for c in STATE)} FROM deal_history h "
        f"JOIN (SELECT deal_id, {pick}(as_of) AS m FROM deal_history WHERE as_of {op} ? "
        "GROUP BY deal_id) x ON h.deal_id = x.deal_id AND h.as_of = x.m",
        db.conn,
        params=[_iso(as_of)],
    )


def write_deal_snapshot(
    db: sqlite_utils.Database,
    import_id: int,
    as_of: date,
    snapshot: pd.DataFrame,
    changed: pd.DataFrame,
    redundant_next: pd.DataFrame,
) -> None:
    """Record one export: its changed states (`changed`: rows of `snapshot`), activity dates, and
    the latest-state table.

    The export's rows cross from Python to SQLite once, into a temporary table; the history, the
    activity dates and the latest states are then copied from it inside SQLite. Binding the same
    million rows three times over was most of a big import's time."""
    day = _iso(as_of)
    cols = ["deal_id", *STATE, "last_activity"]
    if not snapshot.index.is_unique or not changed.index.isin(snapshot.index).all():
        raise ValueError("`changed` must be rows of `snapshot`, found by its (unique) index")
    flags = snapshot.assign(changed=snapshot.index.isin(changed.index).astype("int64"))
    db.execute("DROP TABLE IF EXISTS temp.incoming")
    db.execute(f"CREATE TEMP TABLE incoming ({', '.join(cols)}, changed)")
    # a column blank in the whole export is not bound row by row: it stays NULL
    given = [c for c in cols if flags[c].notna().any()] + ["changed"]
    db.conn.executemany(
        f"INSERT INTO temp.incoming ({', '.join(given)}) VALUES ({', '.join('?' * len(given))})",
        _records(flags, given),
    )
    if db.execute("SELECT 1 FROM deal_history WHERE as_of = ? LIMIT 1", [day]).fetchone():
        # another export of the same day was imported before: this one replaces its states
        db.execute(
            "DELETE FROM deal_history WHERE as_of = ? AND deal_id IN "
            "(SELECT deal_id FROM temp.incoming)",
            [day],
        )
    state = ", ".join(STATE)
    db.execute(
        f"INSERT INTO deal_history (deal_id, as_of, {state}, import_id) "
        f"SELECT deal_id, ?, {state}, ? FROM temp.incoming WHERE changed ORDER BY rowid",
        [day, int(import_id)],
    )
    db.conn.executemany(
        "DELETE FROM deal_history WHERE deal_id = ? AND as_of = ?",
        _records(redundant_next, ["deal_id", "as_of"]),
    )
    db.execute(
        "INSERT OR IGNORE INTO deal_activity (deal_id, activity_date, import_id) SELECT deal_id, "
        "last_activity, ? FROM temp.incoming WHERE last_activity IS NOT NULL ORDER BY rowid",
        [int(import_id)],
    )
    updates = ", ".join(f"{c} = excluded.{c}" for c in cols[1:])
    # exactly (NULLs alike, no rounding): did this import change the state the deal had here?
    differs = " OR ".join(f"deals.{c} IS NOT excluded.{c}" for c in STATE)
    db.execute(
        f"INSERT INTO deals ({', '.join(cols)}, first_seen, last_seen, import_id, state_import) "
        f"SELECT {', '.join(cols)}, ?, ?, ?, ? FROM temp.incoming WHERE true ORDER BY rowid "
        f"ON CONFLICT(deal_id) DO UPDATE SET {updates}, last_seen = excluded.last_seen, "
        "import_id = excluded.import_id, first_seen = MIN(deals.first_seen, excluded.first_seen), "
        f"state_import = CASE WHEN {differs} THEN excluded.state_import ELSE deals.state_import "
        "END WHERE excluded.last_seen >= deals.last_seen",
        [day, day, int(import_id), int(import_id)],
    )
    db.execute("DROP TABLE temp.incoming")
    db.execute(
        "UPDATE deals SET first_seen = ? WHERE first_seen > ? AND deal_id IN "
        "(SELECT deal_id FROM deal_history WHERE as_of = ?)",
        [day, day, day],
    )


def deal_history(db: sqlite_utils.Database, deal_id: str) -> list[dict]:
    return list(db.query("SELECT * FROM deal_history WHERE deal_id = ? ORDER BY as_of", [deal_id]))


def latest_as_of(db: sqlite_utils.Database) -> str | None:
    """The as-of date of the newest deals export imported: the pipeline's 'today'."""
    return db.execute("SELECT MAX(as_of) FROM imports WHERE table_name = 'deals'").fetchone()[0]


@dataclass(frozen=True)
class PipelineSummary:
    as_of: str
    open_deals: int
    open_value: float
    open_without_value: int
    won: int
    lost: int


def pipeline_summary(db: sqlite_utils.Database, as_of: str | None = None) -> PipelineSummary | None:
    """Open deals and their value as of a date (default: the latest import).

    Open deals without an amount (MavenTech leaves it blank until close) are valued at their
    product's list price; how many were is reported alongside. Deals deleted or merged in the
    CRM are left out, as the scoring leaves them out.
    """
    as_of = as_of or latest_as_of(db)
    if as_of is None:
        return None
    row = db.execute(
        """
        WITH state AS (
            SELECT h.* FROM deal_history h
            JOIN (SELECT deal_id, MAX(as_of) AS m FROM deal_history WHERE as_of <= ?
                  AND deal_id NOT IN (SELECT deal_id FROM removed_deals)
                  GROUP BY deal_id) x ON h.deal_id = x.deal_id AND h.as_of = x.m
        )
        SELECT
            SUM(status = 'open'),
            SUM(CASE WHEN status = 'open' THEN COALESCE(s.value, p.sales_price, 0) END),
            SUM(status = 'open' AND s.value IS NULL AND p.sales_price IS NULL),
            SUM(status = 'won'), SUM(status = 'lost')
        FROM state s LEFT JOIN products p ON p.product = s.product
        """,
        [as_of],
    ).fetchone()
    return PipelineSummary(as_of, row[0] or 0, row[1] or 0.0, row[2] or 0, row[3] or 0, row[4] or 0)


# Deals the CRM deleted or merged (a live sync notices): their outcome will never be known, so
# they are neither scored nor learned from; `closed_since` reports them gone.
_KEPT = "deal_id NOT IN (SELECT deal_id FROM removed_deals)"


def removed_ids(db: sqlite_utils.Database) -> set[str]:
    """Deals the CRM deleted or merged (see `_KEPT`)."""
    return {r[0] for r in db.execute("SELECT deal_id FROM removed_deals")}


def load_crm(db: sqlite_utils.Database, keep: bool = False) -> dict[str, pd.DataFrame]:
    """Everything the scoring and forecast need, read once: latest deal states, their history,
    activity dates (`dataset.deal_columns`, which `keep` tells to save its columnar copy: the
    refresh only) and the reference tables; deals deleted or merged in the CRM left out."""
    from dataset import deal_columns  # not at the top: it imports STATE from here

    deals = deal_columns.load(db, keep)
    return {
        **deals,
        "stages": read_frame(db, "SELECT stage, status, rank, probability FROM stages"),
        "fields": pd.DataFrame({"field": sorted(exported_fields(db))}),
        "products": read_frame(db, "SELECT product, series, sales_price FROM products"),
        "teams": read_frame(db, "SELECT sales_agent, manager, regional_office FROM sales_teams"),
        "accounts": read_frame(db, "SELECT account, sector, revenue, employees FROM accounts"),
    }


def teams(db: sqlite_utils.Database) -> pd.DataFrame:
    """The sales team table: each rep's manager and regional office."""
    return read_frame(db, "SELECT sales_agent, manager, regional_office FROM sales_teams")


def owners(db: sqlite_utils.Database) -> list[str]:
    """Every deal owner named by the latest deal states."""
    return [r[0] for r in db.execute("SELECT DISTINCT owner FROM deals WHERE owner IS NOT NULL")]


def deal_state(db: sqlite_utils.Database, deal_id: str) -> dict | None:
    """A deal's latest known state (open, won or lost; deleted or merged when the CRM removed
    it, with the day that was noticed) from the deals table, with its owner's manager and
    region."""
    rows = list(
        db.query(
            "SELECT d.*, COALESCE(r.how, d.status) AS status, r.removed_on, r.merged_into, "
            "t.manager, t.regional_office AS region FROM deals d "
            "LEFT JOIN removed_deals r USING (deal_id) "
            "LEFT JOIN sales_teams t ON t.sales_agent = d.owner WHERE d.deal_id = ?",
            [deal_id],
        )
    )
    return rows[0] if rows else None


def closed_since(db: sqlite_utils.Database, deal_ids: Sequence[str]) -> pd.DataFrame:
    """The latest state of those deals that are no longer open: won, lost, or removed from the
    CRM (status 'deleted' or 'merged', with the day it was noticed and the surviving deal)."""
    if not deal_ids:
        return pd.DataFrame(columns=["deal_id", "status", "account", "value", "close_date",
                                     "removed_on", "merged_into"])  # fmt: skip
    ids = list(dict.fromkeys(deal_ids))  # once each, whichever chunk they fall in
    parts = []
    for i in range(0, len(ids), IDS_PER_QUERY):  # SQLite takes at most 32,766 parameters
        chunk = ids[i : i + IDS_PER_QUERY]
        parts.append(read_frame(
            db,
            "SELECT d.deal_id, COALESCE(r.how, d.status) AS status, account, owner, value, "
            "close_date, r.removed_on, r.merged_into FROM deals d LEFT JOIN removed_deals r "
            "USING (deal_id) WHERE (d.status != 'open' OR r.deal_id IS NOT NULL) "
            f"AND d.deal_id IN ({', '.join('?' * len(chunk))})",
            chunk,
        ))  # fmt: skip
    found = [p for p in parts if len(p)]
    out = pd.concat(found, ignore_index=True) if found else parts[0]
    # a chunk whose deals all lack a value reads the column as objects (None): keep it numeric
    return out.assign(value=pd.to_numeric(out["value"], errors="coerce"))


def won_between(db: sqlite_utils.Database, start: str, end: str) -> pd.DataFrame:
    """Deals won with a close date from `start` to `end` (ISO days, both included), as the
    latest states have them, with each owner's manager and region: a closed quarter's actual
    (deals deleted or merged in the CRM left out, as the forecast leaves them out)."""
    return read_frame(
        db,
        "SELECT d.deal_id, d.owner, d.close_date, COALESCE(d.value, 0) AS value, t.manager, "
        "t.regional_office AS region FROM deals d LEFT JOIN sales_teams t "
        f"ON t.sales_agent = d.owner WHERE d.status = 'won' AND d.close_date BETWEEN ? AND ? "
        f"AND {_KEPT.replace('deal_id', 'd.deal_id', 1)}",
        [start, end],
    )
