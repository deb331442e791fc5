"""The one module that holds SQL: the SQLite schema, its migrations, and every read and write.

Dates are stored as ISO `YYYY-MM-DD` text. Deal history is stored as changes only: a row in
`deal_history` is the state a deal was seen in from `as_of` on, until its next row. `deals` holds
each deal's latest known state, `deal_activity` each distinct last-activity date seen.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import sqlite_utils

SCHEMA_VERSION = 2
DEFAULT_DB = "revbot.db"
# How long an import waits for another process's write (another import of a big export) to
# finish, rather than fail: two morning runs sharing an exports folder take turns.
WRITE_WAIT_SECONDS = 600

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
# What the CRM says about a deal beyond the MavenTech columns (schema 2): added to databases of
# schema 1 by `_migrate`.
CRM_COLUMNS = (
    ("probability", "REAL"),
    ("forecast_category", "TEXT"),
    ("next_step", "TEXT"),
    ("stage_changed", "TEXT"),
    ("push_count", "REAL"),
    ("deal_type", "TEXT"),
    ("lead_source", "TEXT"),
)
_CRM_DDL = ", ".join(f"{name} {kind}" for name, kind in CRM_COLUMNS)
# The risk score's parts and whether the value is the CRM's amount (schema 2).
SCORE_PARTS = (
    ("risk_loss", "REAL"),
    ("risk_velocity", "REAL"),
    ("risk_stagnation", "REAL"),
    ("risk_size", "REAL"),
    ("value_known", "INTEGER"),
)
_PARTS_DDL = ", ".join(f"{name} {kind}" for name, kind in SCORE_PARTS)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS imports (
    id INTEGER PRIMARY KEY,
    file_name TEXT NOT NULL,
    path TEXT,
    sha256 TEXT NOT NULL UNIQUE,
    table_name TEXT NOT NULL,
    preset TEXT NOT NULL,
    encoding TEXT NOT NULL,
    rows_read INTEGER NOT NULL,
    rows_accepted INTEGER NOT NULL,
    rows_set_aside INTEGER NOT NULL,
    as_of TEXT,
    deals_new INTEGER,
    deals_changed INTEGER,
    fields TEXT,
    notes TEXT,
    imported_at TEXT NOT NULL,
    CHECK (rows_read = rows_accepted + rows_set_aside)
);
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY,
    import_id INTEGER NOT NULL REFERENCES imports(id),
    line INTEGER NOT NULL,
    reason TEXT NOT NULL,
    raw TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS quarantine_import ON quarantine(import_id);
CREATE TABLE IF NOT EXISTS accounts (
    account TEXT PRIMARY KEY,
    sector TEXT,
    year_established INTEGER,
    revenue REAL,
    employees INTEGER,
    office_location TEXT,
    subsidiary_of TEXT,
    import_id INTEGER REFERENCES imports(id)
);
CREATE TABLE IF NOT EXISTS products (
    product TEXT PRIMARY KEY,
    series TEXT,
    sales_price REAL,
    import_id INTEGER REFERENCES imports(id)
);
CREATE TABLE IF NOT EXISTS sales_teams (
    sales_agent TEXT PRIMARY KEY,
    manager TEXT,
    regional_office TEXT,
    import_id INTEGER REFERENCES imports(id)
);
CREATE TABLE IF NOT EXISTS deal_history (
    deal_id TEXT NOT NULL,
    as_of TEXT NOT NULL,
    name TEXT, owner TEXT, product TEXT, account TEXT,
    stage TEXT NOT NULL, status TEXT NOT NULL,
    engage_date TEXT, close_date TEXT, value REAL,
    {crm},
    import_id INTEGER NOT NULL REFERENCES imports(id),
    PRIMARY KEY (deal_id, as_of)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deal_history_as_of ON deal_history(as_of);
CREATE TABLE IF NOT EXISTS deal_activity (
    deal_id TEXT NOT NULL,
    activity_date TEXT NOT NULL,
    PRIMARY KEY (deal_id, activity_date)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS deals (
    deal_id TEXT PRIMARY KEY,
    name TEXT, owner TEXT, product TEXT, account TEXT,
    stage TEXT NOT NULL, status TEXT NOT NULL,
    engage_date TEXT, close_date TEXT, value REAL,
    {crm},
    last_activity TEXT,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    import_id INTEGER NOT NULL REFERENCES imports(id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stages (
    stage TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    rank INTEGER,
    probability REAL,
    preset TEXT,
    import_id INTEGER REFERENCES imports(id)
);
CREATE TABLE IF NOT EXISTS score_runs (
    run_id INTEGER PRIMARY KEY,
    as_of TEXT NOT NULL,
    created_at TEXT NOT NULL,
    model_hash TEXT,
    confidence TEXT,
    base_rate REAL,
    deals INTEGER NOT NULL,
    pipeline_value REAL,
    expected_value REAL,
    notes TEXT
);
CREATE TABLE IF NOT EXISTS deal_scores (
    run_id INTEGER NOT NULL REFERENCES score_runs(run_id),
    deal_id TEXT NOT NULL,
    rank INTEGER NOT NULL,
    owner TEXT, manager TEXT, region TEXT, product TEXT, account TEXT, stage TEXT,
    value REAL, win_prob REAL NOT NULL, risk REAL NOT NULL, value_at_risk REAL,
    expected_close TEXT,
    {score_parts},
    drivers TEXT,
    actions TEXT,
    PRIMARY KEY (run_id, deal_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deal_scores_deal ON deal_scores(deal_id, run_id);
CREATE TABLE IF NOT EXISTS digest_runs (
    channel_id TEXT NOT NULL,
    digest_date TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('claimed', 'posted', 'failed')),
    run_id INTEGER REFERENCES score_runs(run_id),
    slack_ts TEXT,
    claimed_by TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    error TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (channel_id, digest_date)
);
CREATE TABLE IF NOT EXISTS deal_marks (
    id INTEGER PRIMARY KEY,
    channel_id TEXT NOT NULL,
    deal_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('snooze', 'ack')),
    user_id TEXT NOT NULL,
    risk REAL,
    until TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deal_marks_channel ON deal_marks(channel_id, deal_id);
""".replace("{crm}", _CRM_DDL).replace("{score_parts}", _PARTS_DDL)


def default_db_path() -> Path:
    """`REVBOT_DB` if set, else revbot.db in the working folder."""
    return Path(os.environ.get("REVBOT_DB") or DEFAULT_DB)


def connect(path: str | os.PathLike) -> sqlite_utils.Database:
    """Open (creating if needed) the database and bring its schema up to date."""
    db = sqlite_utils.Database(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    version = None
    if "meta" in db.table_names():
        version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if version is not None and int(version[0]) > SCHEMA_VERSION:
        raise RuntimeError(
            f"{path} was written by a newer revbot (schema {version[0]} > {SCHEMA_VERSION}); "
            "upgrade revbot"
        )
    if version is not None:
        _migrate(db)  # idempotent: adds only the columns a table lacks
    db.conn.executescript(_SCHEMA)
    if version is None or int(version[0]) < SCHEMA_VERSION:
        with db.atomic():
            db.execute(
                "INSERT INTO meta VALUES ('schema_version', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [str(SCHEMA_VERSION)],
            )
    return db


@contextlib.contextmanager
def write_lock(
    db: sqlite_utils.Database, wait_seconds: float = WRITE_WAIT_SECONDS
) -> Iterator[None]:
    """One transaction that holds SQLite's write lock from its start (BEGIN IMMEDIATE), so what
    is read in it (is this file imported yet?) stays true until it commits, whatever another
    process does. Waits up to `wait_seconds` for another writer, then raises
    sqlite3.OperationalError ('database is locked')."""
    (before,) = db.execute("PRAGMA busy_timeout").fetchone()
    db.execute(f"PRAGMA busy_timeout = {int(wait_seconds * 1000)}")
    try:
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            db.conn.rollback()
            raise
        db.conn.commit()
    finally:
        db.execute(f"PRAGMA busy_timeout = {int(before)}")


def _migrate(db: sqlite_utils.Database) -> None:
    """Schema 1 -> 2: the CRM's own columns (probability, forecast category...) on deal history
    and the deals table (their values stay empty for what was imported before), the risk parts
    on deal scores, the fields of each import. Adds only what is missing, so it is safe to run
    on every connection."""
    with db.atomic():
        for table in ("deal_history", "deals"):
            have = set(db[table].columns_dict)
            for name, kind in CRM_COLUMNS:
                if name not in have:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
        have = set(db["deal_scores"].columns_dict)
        for name, kind in SCORE_PARTS:
            if name not in have:
                db.execute(f"ALTER TABLE deal_scores ADD COLUMN {name} {kind}")
        if "fields" not in db["imports"].columns_dict:
            db.execute("ALTER TABLE imports ADD COLUMN fields TEXT")


def _iso(value) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, str):
        return value
    return value.strftime("%Y-%m-%d")


def _records(frame: pd.DataFrame, columns: Iterable[str]) -> Iterator[tuple]:
    """Rows as tuples with SQLite-ready values (ISO dates, None for missing)."""
    cols = []
    for c in columns:
        s = frame[c]
        if pd.api.types.is_datetime64_any_dtype(s):
            s = s.dt.strftime("%Y-%m-%d")
        s = s.astype("object").where(s.notna(), None)
        cols.append(s.to_list())
    return zip(*cols, strict=True)


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
    """Record one export: its changed states, activity dates, and the latest-state table."""
    day = _iso(as_of)
    if db.execute("SELECT 1 FROM deal_history WHERE as_of = ? LIMIT 1", [day]).fetchone():
        # another export of the same day was imported before: this one replaces its states
        db.conn.executemany(
            "DELETE FROM deal_history WHERE deal_id = ? AND as_of = ?",
            ((d, day) for d in snapshot["deal_id"]),
        )
    cols = ["deal_id", *STATE]
    db.conn.executemany(
        f"INSERT INTO deal_history (deal_id, as_of, {', '.join(STATE)}, import_id) "
        f"VALUES (?, '{day}', {', '.join('?' * len(STATE))}, {int(import_id)})",
        _records(changed, cols),
    )
    db.conn.executemany(
        "DELETE FROM deal_history WHERE deal_id = ? AND as_of = ?",
        _records(redundant_next, ["deal_id", "as_of"]),
    )
    activity = snapshot.loc[snapshot["last_activity"].notna(), ["deal_id", "last_activity"]]
    db.conn.executemany(
        "INSERT OR IGNORE INTO deal_activity (deal_id, activity_date) VALUES (?, ?)",
        _records(activity, ["deal_id", "last_activity"]),
    )
    latest = [*cols, "last_activity"]
    updates = ", ".join(f"{c} = excluded.{c}" for c in latest[1:])
    db.conn.executemany(
        f"INSERT INTO deals ({', '.join(latest)}, first_seen, last_seen, import_id) "
        f"VALUES ({', '.join('?' * len(latest))}, '{day}', '{day}', {int(import_id)}) "
        f"ON CONFLICT(deal_id) DO UPDATE SET {updates}, last_seen = excluded.last_seen, "
        "import_id = excluded.import_id, first_seen = MIN(deals.first_seen, excluded.first_seen) "
        "WHERE excluded.last_seen >= deals.last_seen",
        _records(snapshot, latest),
    )
    db.execute(
        "UPDATE deals SET first_seen = ? WHERE first_seen > ? AND deal_id IN "
        "(SELECT deal_id FROM deal_history WHERE as_of = ?)",
        [day, day, day],
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


def table_counts(db: sqlite_utils.Database) -> dict[str, int]:
    """Row count of every table: what a re-import must leave unchanged."""
    return {t: db[t].count for t in db.table_names()}


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
    product's list price; how many were is reported alongside.
    """
    as_of = as_of or latest_as_of(db)
    if as_of is None:
        return None
    row = db.execute(
        """
        WITH state AS (
            SELECT h.* FROM deal_history h
            JOIN (SELECT deal_id, MAX(as_of) AS m FROM deal_history WHERE as_of <= ?
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


_DATE_COLUMNS = ("as_of", "first_seen", "last_seen", "last_activity", "stage_changed")


def read_frame(db: sqlite_utils.Database, sql: str, params: Sequence = ()) -> pd.DataFrame:
    """A query's rows as a DataFrame; columns named *_date, as_of, first_seen, last_seen and
    last_activity come back as datetimes."""
    frame = pd.read_sql_query(sql, db.conn, params=list(params))
    for c in frame.columns:
        if c.endswith("_date") or c in _DATE_COLUMNS:
            frame[c] = pd.to_datetime(frame[c], format="%Y-%m-%d")
    return frame


def load_crm(db: sqlite_utils.Database) -> dict[str, pd.DataFrame]:
    """Everything the scoring and forecast need, read once: latest deal states, their history,
    activity dates and the reference tables."""
    return {
        "deals": read_frame(db, "SELECT * FROM deals"),
        "history": read_frame(
            db,
            "SELECT deal_id, h.as_of, owner, product, account, stage, status, engage_date, "
            "close_date, value, probability, forecast_category, "
            # a next step is known missing only where the row's export had the column
            "CASE WHEN ',' || i.fields || ',' LIKE '%,next_step,%' THEN next_step IS NOT NULL "
            "AND TRIM(next_step) != '' END AS has_next_step, stage_changed, push_count, "
            "deal_type, lead_source FROM deal_history h LEFT JOIN imports i ON i.id = h.import_id "
            "ORDER BY deal_id, h.as_of",
        ),
        "stages": read_frame(db, "SELECT stage, status, rank, probability FROM stages"),
        "fields": pd.DataFrame({"field": sorted(exported_fields(db))}),
        "activity": read_frame(db, "SELECT deal_id, activity_date FROM deal_activity"),
        "products": read_frame(db, "SELECT product, series, sales_price FROM products"),
        "teams": read_frame(db, "SELECT sales_agent, manager, regional_office FROM sales_teams"),
        "accounts": read_frame(db, "SELECT account, sector, revenue, employees FROM accounts"),
    }


def fingerprint(db: sqlite_utils.Database) -> str:
    """Identifies the data imported so far (the content hashes of the files imported)."""
    h = hashlib.sha256()
    for (sha,) in db.execute("SELECT sha256 FROM imports ORDER BY id"):
        h.update(sha.encode())
    return h.hexdigest()


SCORE_COLUMNS = (
    "deal_id", "rank", "owner", "manager", "region", "product", "account", "stage", "value",
    "win_prob", "risk", "value_at_risk", "expected_close", "drivers", "actions",
    *(name for name, _ in SCORE_PARTS),
)  # fmt: skip


def write_score_run(
    db: sqlite_utils.Database,
    *,
    as_of: date,
    scores: pd.DataFrame,
    model_hash: str,
    confidence: str,
    base_rate: float,
    notes: str = "",
) -> int:
    """One run, atomically: its header row and a row per open deal. Earlier runs are kept."""
    # in key order: the B-trees then grow at their end instead of being split all over
    frame = scores.reset_index().rename(columns={"index": "deal_id"}).sort_values("deal_id")
    value = frame["value"].fillna(0)
    with db.atomic():
        cur = db.execute(
            "INSERT INTO score_runs (as_of, created_at, model_hash, confidence, base_rate, deals, "
            "pipeline_value, expected_value, notes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                _iso(as_of),
                datetime.now(UTC).isoformat(timespec="seconds"),
                model_hash,
                confidence,
                base_rate,
                len(frame),
                float(value.sum()),
                float((value * frame["win_prob"]).sum()),
                notes,
            ],
        )
        run_id = int(cur.lastrowid)
        db.conn.executemany(
            f"INSERT INTO deal_scores (run_id, {', '.join(SCORE_COLUMNS)}) "
            f"VALUES ({run_id}, {', '.join('?' * len(SCORE_COLUMNS))})",
            _records(frame, SCORE_COLUMNS),
        )
    return run_id


def latest_run(db: sqlite_utils.Database, before: int | None = None) -> dict | None:
    """The newest score run (or the newest one before run `before`)."""
    where, params = ("WHERE run_id < ?", [before]) if before else ("", [])
    rows = list(db.query(f"SELECT * FROM score_runs {where} ORDER BY run_id DESC LIMIT 1", params))
    return rows[0] if rows else None


def run_of(db: sqlite_utils.Database, run_id: int) -> dict | None:
    rows = list(db.query("SELECT * FROM score_runs WHERE run_id = ?", [run_id]))
    return rows[0] if rows else None


def run_scores(db: sqlite_utils.Database, run_id: int) -> pd.DataFrame:
    return read_frame(db, "SELECT * FROM deal_scores WHERE run_id = ? ORDER BY rank", [run_id])


def risk_changes(db: sqlite_utils.Database, run_id: int) -> pd.DataFrame:
    """Each deal of a run beside its previous run's risk (NaN where it was not scored then)."""
    previous = latest_run(db, before=run_id)
    return read_frame(
        db,
        "SELECT s.deal_id, s.rank, s.risk, s.value_at_risk, s.win_prob, p.risk AS previous_risk, "
        "p.win_prob AS previous_win_prob FROM deal_scores s LEFT JOIN deal_scores p "
        "ON p.deal_id = s.deal_id AND p.run_id = ? WHERE s.run_id = ? ORDER BY s.rank",
        [previous["run_id"] if previous else -1, run_id],
    )


def deal_risk_history(db: sqlite_utils.Database, deal_id: str, runs: int = 10) -> pd.DataFrame:
    """A deal's risk and win probability over its last `runs` score runs, oldest first."""
    frame = read_frame(
        db,
        "SELECT r.run_id, r.as_of, s.risk, s.win_prob FROM deal_scores s "
        "JOIN score_runs r ON r.run_id = s.run_id WHERE s.deal_id = ? "
        "ORDER BY s.run_id DESC LIMIT ?",
        [deal_id, runs],
    )
    return frame.iloc[::-1].reset_index(drop=True)


def run_deal(db: sqlite_utils.Database, run_id: int, deal_id: str) -> dict | None:
    """One deal's row in a score run (None if it was not open then)."""
    rows = list(
        db.query("SELECT * FROM deal_scores WHERE run_id = ? AND deal_id = ?", [run_id, deal_id])
    )
    return rows[0] if rows else None


def deal_state(db: sqlite_utils.Database, deal_id: str) -> dict | None:
    """A deal's latest known state (open, won or lost) from the deals table, with its owner's
    manager and region."""
    rows = list(
        db.query(
            "SELECT d.*, t.manager, t.regional_office AS region FROM deals d "
            "LEFT JOIN sales_teams t ON t.sales_agent = d.owner WHERE d.deal_id = ?",
            [deal_id],
        )
    )
    return rows[0] if rows else None


def closed_since(db: sqlite_utils.Database, deal_ids: Sequence[str]) -> pd.DataFrame:
    """The latest state of those deals that are no longer open (won or lost)."""
    if not deal_ids:
        return pd.DataFrame(columns=["deal_id", "status", "account", "value", "close_date"])
    marks = ", ".join("?" * len(deal_ids))
    return read_frame(
        db,
        "SELECT deal_id, status, account, owner, value, close_date FROM deals "
        f"WHERE status != 'open' AND deal_id IN ({marks})",
        list(deal_ids),
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def claim_digest(
    db: sqlite_utils.Database, channel_id: str, digest_date: str, run_id: int, worker: str
) -> bool:
    """Claim a channel's digest for a day before posting it. True for exactly one caller, across
    threads and processes: the primary key makes the insert a lock. A failed attempt (nothing was
    posted) may be claimed again; a claim left without a posted `ts` is never retried."""
    with db.atomic():
        cur = db.execute(
            "INSERT INTO digest_runs (channel_id, digest_date, status, run_id, claimed_by, "
            "updated_at) VALUES (?, ?, 'claimed', ?, ?, ?) ON CONFLICT DO NOTHING",
            [channel_id, digest_date, run_id, worker, _now()],
        )
        if cur.rowcount == 1:
            return True
        cur = db.execute(
            "UPDATE digest_runs SET status = 'claimed', run_id = ?, claimed_by = ?, "
            "attempts = attempts + 1, error = NULL, updated_at = ? "
            "WHERE channel_id = ? AND digest_date = ? AND status = 'failed'",
            [run_id, worker, _now(), channel_id, digest_date],
        )
        return cur.rowcount == 1


def finish_digest(
    db: sqlite_utils.Database,
    channel_id: str,
    digest_date: str,
    *,
    slack_ts: str | None = None,
    error: str | None = None,
) -> None:
    """Record the outcome of a claimed digest: posted (with its ts) or failed (with the error)."""
    status = "failed" if error else "posted"
    with db.atomic():
        db.execute(
            "UPDATE digest_runs SET status = ?, slack_ts = ?, error = ?, updated_at = ? "
            "WHERE channel_id = ? AND digest_date = ?",
            [status, slack_ts, error, _now(), channel_id, digest_date],
        )


def note_digest_error(
    db: sqlite_utils.Database, channel_id: str, digest_date: str, error: str
) -> None:
    """Note an error on a claim without releasing it (the digest may have gone out)."""
    with db.atomic():
        db.execute(
            "UPDATE digest_runs SET error = ?, updated_at = ? WHERE channel_id = ? AND digest_date = ?",
            [error, _now(), channel_id, digest_date],
        )


def stale_claims(db: sqlite_utils.Database, older_than_minutes: int) -> list[dict]:
    """Digests claimed more than that many minutes ago, never recorded as posted or failed, and
    not reported yet (a reported one carries its error)."""
    cutoff = (datetime.now(UTC) - timedelta(minutes=older_than_minutes)).isoformat(
        timespec="seconds"
    )
    return list(
        db.query(
            "SELECT * FROM digest_runs WHERE status = 'claimed' AND error IS NULL AND updated_at < ? "
            "ORDER BY digest_date",
            [cutoff],
        )
    )


def digest_record(db: sqlite_utils.Database, channel_id: str, digest_date: str) -> dict | None:
    rows = list(
        db.query(
            "SELECT * FROM digest_runs WHERE channel_id = ? AND digest_date = ?",
            [channel_id, digest_date],
        )
    )
    return rows[0] if rows else None


def digest_records(db: sqlite_utils.Database) -> list[dict]:
    return list(db.query("SELECT * FROM digest_runs ORDER BY digest_date, channel_id"))


def last_posted_run(db: sqlite_utils.Database, channel_id: str, before_date: str) -> int | None:
    """The score run of the channel's last digest posted before a day: 'since the last digest'."""
    row = db.execute(
        "SELECT run_id FROM digest_runs WHERE channel_id = ? AND status = 'posted' "
        "AND digest_date < ? ORDER BY digest_date DESC LIMIT 1",
        [channel_id, before_date],
    ).fetchone()
    return row[0] if row else None


def add_mark(
    db: sqlite_utils.Database,
    *,
    channel_id: str,
    deal_id: str,
    kind: str,
    user_id: str,
    risk: float | None,
    until: str | None,
) -> None:
    """A manager handled a deal in a digest: snoozed until a day, or acknowledged at a risk."""
    with db.atomic():
        db.execute(
            "INSERT INTO deal_marks (channel_id, deal_id, kind, user_id, risk, until, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [channel_id, deal_id, kind, user_id, risk, until, _now()],
        )


def marks(db: sqlite_utils.Database, channel_id: str) -> pd.DataFrame:
    """The latest mark of each deal in a channel (kind, risk when acknowledged, snooze end)."""
    return read_frame(
        db,
        "SELECT m.deal_id, m.kind, m.risk, m.until, m.user_id FROM deal_marks m JOIN "
        "(SELECT deal_id, MAX(id) AS id FROM deal_marks WHERE channel_id = ? GROUP BY deal_id) x "
        "ON m.id = x.id",
        [channel_id],
    )
