"""The database itself: where it is, the connection, the schema of the data tables and its
migrations, the write lock, and the helpers the modules that read and write those tables share
(`dataset.import_log`, `dataset.deal_history`, `dataset.score_runs`). Why apart: they all use the
one SQLite file, opened and upgraded in one place; what a table holds is its module's business.

Dates are stored as ISO `YYYY-MM-DD` text. Deal history is stored as changes only: a row in
`deal_history` is the state a deal was seen in from `as_of` on, until its next row. `deals` holds
each deal's latest known state, `deal_activity` each distinct last-activity date seen.

The bot's own tables (the digest ledger and the marks) are not here: `bot.ledger` creates them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import sqlite_utils

SCHEMA_VERSION = 5  # 5: score runs column-wise (`dataset.score_columns`)
DEFAULT_DB = "revbot.db"
# How long an import waits for another process's write (another import of a big export) to
# finish, rather than fail: two morning runs sharing an exports folder take turns.
WRITE_WAIT_SECONDS = 600
# How long opening a new database waits for another process that is creating it.
WAL_WAIT_SECONDS = 30

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
    # the CRM's forecast category of the deal (schema 3 databases gain it by `_migrate`)
    ("forecast_category", "TEXT"),
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
    import_id INTEGER,  -- the import that first saw it (empty: before this was recorded)
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
    import_id INTEGER NOT NULL REFERENCES imports(id),
    -- the import that last changed the deal's state here (any of its columns above first_seen
    -- but last_activity): the rows `dataset.deal_columns` must read again
    state_import INTEGER
) WITHOUT ROWID;
-- the deal tables as the scoring reads them, column by column (Parquet files cut in chunks):
-- derived, rewritten by the refresh (`dataset.deal_columns`; its key is in `meta`)
CREATE TABLE IF NOT EXISTS deal_columns (
    part TEXT NOT NULL,
    chunk INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (part, chunk)
);
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
    notes TEXT,
    data_fingerprint TEXT,
    model_data_end TEXT
);
CREATE TABLE IF NOT EXISTS run_forecasts (
    run_id INTEGER NOT NULL REFERENCES score_runs(run_id),
    scope TEXT NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (run_id, scope)
);
-- each quarter of each saved forecast, compactly: what the track record reads (schema 4)
CREATE TABLE IF NOT EXISTS forecast_quarters (
    run_id INTEGER NOT NULL REFERENCES score_runs(run_id),
    scope TEXT NOT NULL,
    quarter TEXT NOT NULL,
    as_of TEXT NOT NULL,
    p10 REAL NOT NULL, p50 REAL NOT NULL, p90 REAL NOT NULL,
    won_so_far REAL,
    target REAL,
    PRIMARY KEY (run_id, scope, quarter)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS forecast_quarters_scope ON forecast_quarters(scope, quarter);
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
-- schema 5: a deal's history walks the runs newest first on the key, so the index by deal,
-- which every run rewrote all over, is gone (`_migrate` drops it from older files)
-- a score run's rows column by column (schema 5; `dataset.score_columns`): the run's deals in id
-- order, cut in parts of a few thousand rows, each part a Parquet file with its first id, so one
-- deal is read from one part. `deal_scores` keeps, for such a run, each deal's key, rank,
-- probability, risk and value at risk (what history, comparisons and nudges look up by deal) and
-- the reasons of the deals explained; runs saved before have every column there.
CREATE TABLE IF NOT EXISTS score_columns (
    run_id INTEGER NOT NULL REFERENCES score_runs(run_id),
    part INTEGER NOT NULL,
    first_deal TEXT,
    data BLOB NOT NULL,
    PRIMARY KEY (run_id, part)
);
-- the deal hygiene rules each run evaluated (scoring.hygiene), as configured then: on, off or
-- not available (the CRM's data cannot tell; `note` says why), and the deals that broke them.
-- New tables need no migration: a database made before them gains them at its next connection
-- (this script runs on every one), and its older runs simply have no rows here.
CREATE TABLE IF NOT EXISTS hygiene_rules (
    run_id INTEGER NOT NULL REFERENCES score_runs(run_id),
    rule TEXT NOT NULL,
    state TEXT NOT NULL,
    threshold REAL,
    flagged INTEGER NOT NULL,
    note TEXT,
    PRIMARY KEY (run_id, rule)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS deal_flags (
    run_id INTEGER NOT NULL REFERENCES score_runs(run_id),
    deal_id TEXT NOT NULL,
    rule TEXT NOT NULL,
    detail TEXT NOT NULL,
    value REAL,
    threshold REAL,
    PRIMARY KEY (run_id, deal_id, rule)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deal_flags_rule ON deal_flags(run_id, rule);
-- runs whose per-deal rows the retention policy removed (dataset.retention)
CREATE TABLE IF NOT EXISTS pruned_runs (
    run_id INTEGER PRIMARY KEY REFERENCES score_runs(run_id),
    pruned_at TEXT NOT NULL,
    rule TEXT NOT NULL
);
-- the CRM as last read by a live sync (dataset.crm_mirror)
CREATE TABLE IF NOT EXISTS crm_records (
    crm TEXT NOT NULL,
    id TEXT NOT NULL,
    modstamp TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    merged_into TEXT,
    record TEXT NOT NULL,
    sync_id INTEGER,
    PRIMARY KEY (crm, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS crm_changes (
    crm TEXT NOT NULL,
    id TEXT NOT NULL,
    deal_id TEXT NOT NULL,
    at TEXT NOT NULL,
    change TEXT NOT NULL,
    PRIMARY KEY (crm, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS crm_field_changes (
    crm TEXT NOT NULL,
    id TEXT NOT NULL,
    deal_id TEXT NOT NULL,
    at TEXT NOT NULL,
    field TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT,
    PRIMARY KEY (crm, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS crm_stages (
    crm TEXT NOT NULL,
    label TEXT NOT NULL,
    status TEXT NOT NULL,
    probability REAL,
    sort_order INTEGER,
    PRIMARY KEY (crm, label)
);
CREATE TABLE IF NOT EXISTS sync_runs (
    id INTEGER PRIMARY KEY,
    crm TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    cursor_from TEXT,
    cursor TEXT,
    records INTEGER NOT NULL DEFAULT 0,
    new INTEGER NOT NULL DEFAULT 0,
    changes INTEGER NOT NULL DEFAULT 0,
    removed INTEGER NOT NULL DEFAULT 0,
    days INTEGER NOT NULL DEFAULT 0,
    as_of TEXT,
    note TEXT
);
-- the deal owners' e-mail addresses as the live sync read them (dataset.people)
CREATE TABLE IF NOT EXISTS people (
    source TEXT NOT NULL,
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (source, email)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS removed_deals (
    deal_id TEXT PRIMARY KEY,
    removed_on TEXT NOT NULL,
    how TEXT NOT NULL,
    merged_into TEXT,
    sync_id INTEGER
);
""".replace("{crm}", _CRM_DDL).replace("{score_parts}", _PARTS_DDL)


def default_db_path() -> Path:
    """`REVBOT_DB` if set, else revbot.db in the working folder."""
    return Path(os.environ.get("REVBOT_DB") or DEFAULT_DB)


def connect(path: str | os.PathLike) -> sqlite_utils.Database:
    """Open (creating if needed) the database and bring its schema up to date."""
    db = sqlite_utils.Database(path)
    _write_ahead_log(db)
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
    if version is not None and int(version[0]) < 4:
        _fill_forecast_quarters(db)
    if version is None or int(version[0]) < SCHEMA_VERSION:
        with db.atomic():
            db.execute(
                "INSERT INTO meta VALUES ('schema_version', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [str(SCHEMA_VERSION)],
            )
    return db


def _write_ahead_log(db: sqlite_utils.Database) -> None:
    """Put the file in WAL mode (readers never wait for the writer). Two processes creating one
    new database at once can see the switch fail at once with "database is locked": SQLite does
    not wait on its busy handler for it. So retry for a while; a file already in WAL mode needs
    no switch at all."""
    deadline = time.monotonic() + WAL_WAIT_SECONDS
    while True:
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class PerThread:
    """One connection per thread to one database file (SQLite connections are not shared across
    threads): the bot's listeners, its scheduler and its refresh each get their own."""

    def __init__(self, path: str | os.PathLike, on_open=None):
        self.path, self._on_open, self._local = Path(path), on_open, threading.local()

    def get(self) -> sqlite_utils.Database:
        conn = getattr(self._local, "db", None)
        if conn is None:
            conn = self._local.db = connect(self.path)
            if self._on_open is not None:
                self._on_open(conn)
        return conn

    def close(self) -> None:
        """Close this thread's connection (a copy of the file then holds everything written)."""
        conn = getattr(self._local, "db", None)
        if conn is not None:
            conn.close()
            self._local.db = None


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


# What a score run records of its making (schema 3): the data it was made of, to tell a repeat
# run from a run on new data, and how recent the model's training data were.
RUN_COLUMNS = (("data_fingerprint", "TEXT"), ("model_data_end", "TEXT"))


def _migrate(db: sqlite_utils.Database) -> None:
    """Schema 1 -> 3: the CRM's own columns (probability, forecast category...) on deal history
    and the deals table (their values stay empty for what was imported before), the risk parts
    on deal scores, the fields of each import, what each score run was made of; schema 5 drops
    the index of deal scores by deal. Adds only what is missing, so it is safe to run on every
    connection."""
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
        if "state_import" not in db["deals"].columns_dict:
            db.execute("ALTER TABLE deals ADD COLUMN state_import INTEGER")
        activity = db["deal_activity"]
        if activity.exists() and "import_id" not in activity.columns_dict:
            db.execute("ALTER TABLE deal_activity ADD COLUMN import_id INTEGER")
        if "fields" not in db["imports"].columns_dict:
            db.execute("ALTER TABLE imports ADD COLUMN fields TEXT")
        have = set(db["score_runs"].columns_dict) if db["score_runs"].exists() else None
        for name, kind in RUN_COLUMNS if have is not None else ():
            if name not in have:
                db.execute(f"ALTER TABLE score_runs ADD COLUMN {name} {kind}")
        # schema 5: nothing reads deal scores by deal across every run any more
        db.execute("DROP INDEX IF EXISTS deal_scores_deal")


def _fill_forecast_quarters(db: sqlite_utils.Database) -> None:
    """Schema 3 -> 4: the quarters of the forecasts saved before the track record kept them
    apart, from the saved forecasts themselves (their targets were not saved: left empty)."""
    from dataset.score_runs import quarter_rows

    rows = [
        row
        for r in db.query("SELECT run_id, scope, payload FROM run_forecasts")
        for row in quarter_rows(r["run_id"], r["scope"], json.loads(r["payload"]), {})
    ]
    with db.atomic():
        db.conn.executemany(
            "INSERT OR IGNORE INTO forecast_quarters VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
        )


def _iso(value) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, str):
        return value
    return value.strftime("%Y-%m-%d")


def _records(frame: pd.DataFrame, columns: Iterable[str]) -> Iterator[tuple]:
    """Rows as tuples with SQLite-ready values (ISO dates, None for missing), made a block of
    rows at a time as they are bound: a million rows' cells made at once as Python objects were
    a big import's peak memory."""
    series = [frame[c] for c in columns]

    def rows() -> Iterator[tuple]:
        for start in range(0, len(frame), _BLOCK_ROWS):
            block = [_cells(s.iloc[start : start + _BLOCK_ROWS]) for s in series]
            yield from zip(*block, strict=True)

    return rows()


def _cells(s: pd.Series) -> list:
    """A column's values as SQLite takes them; dates formatted once per distinct day."""
    if pd.api.types.is_datetime64_any_dtype(s):
        codes, days = pd.factorize(s)  # NaT: code -1, the None appended last
        text = np.append(np.asarray(days.strftime("%Y-%m-%d"), dtype=object), None)
        return text[codes].tolist()
    return s.astype("object").where(s.notna(), None).to_list()


_BLOCK_ROWS = 100_000


_DATE_COLUMNS = ("as_of", "first_seen", "last_seen", "last_activity", "stage_changed")


def read_frame(db: sqlite_utils.Database, sql: str, params: Sequence = ()) -> pd.DataFrame:
    """A query's rows as a DataFrame; columns named *_date, as_of, first_seen, last_seen and
    last_activity come back as datetimes."""
    frame = pd.read_sql_query(sql, db.conn, params=list(params))
    for c in frame.columns:
        if c.endswith("_date") or c in _DATE_COLUMNS:
            frame[c] = pd.to_datetime(frame[c], format="%Y-%m-%d")
    return frame


def table_counts(db: sqlite_utils.Database) -> dict[str, int]:
    """Row count of every table: what a re-import must leave unchanged."""
    return {t: db[t].count for t in db.table_names()}


def fingerprint(db: sqlite_utils.Database) -> str:
    """Identifies the data imported so far (the content hashes of the files imported)."""
    h = hashlib.sha256()
    for (sha,) in db.execute("SELECT sha256 FROM imports ORDER BY id"):
        h.update(sha.encode())
    return h.hexdigest()
