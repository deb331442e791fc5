"""Score runs: each scoring of the open pipeline, kept (a header row and the run's rows, one per
open deal) so that a digest can say what changed since the last one and `/deal` can show a
deal's risk over time. Why apart: scoring writes these, the bot and the export read them; the
deals they score live in `dataset.deal_history`.

A run's rows are kept column-wise (`dataset.score_columns`), and `deal_scores` keeps of each deal
only what is looked up deal by deal (`KEYED`: its history, comparisons, nudges, reasons given
later). Runs saved before schema 5 have every column in `deal_scores`; every reader here reads
either the same way."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import sqlite_utils

from dataset import run_flags, score_columns
from dataset.database import SCORE_PARTS, _iso, _records, read_frame

SCORE_COLUMNS = (
    "deal_id", "rank", "owner", "manager", "region", "product", "account", "stage", "value",
    "win_prob", "risk", "value_at_risk", "expected_close", "drivers", "actions",
    *(name for name, _ in SCORE_PARTS),
)  # fmt: skip
REASONS = ("drivers", "actions")  # given to a few deals, some after the run is saved
STORED = tuple(c for c in SCORE_COLUMNS if c not in REASONS)  # the run's columnar file
# a run's columns kept a row per deal too: what is read deal by deal, and the reasons
KEYED = ("deal_id", "rank", "win_prob", "risk", "value_at_risk", *REASONS)


def write_score_run(
    db: sqlite_utils.Database,
    *,
    as_of: date,
    scores: pd.DataFrame,
    model_hash: str,
    confidence: str,
    base_rate: float,
    notes: str = "",
    data_fingerprint: str | None = None,
    model_data_end: str | None = None,
    hygiene=None,
) -> int:
    """One run, atomically: its header row, its rows (column-wise, and `KEYED` a row per deal)
    and, given `hygiene` (a `scoring.hygiene.Hygiene`), its rules' states and the deals that
    broke them. Earlier runs are kept."""
    # in key order: the B-trees then grow at their end instead of being split all over
    frame = scores.reset_index().rename(columns={"index": "deal_id"})
    # ids as the table stores them (text), and in that order: the parts are found by their
    # first id compared as text
    frame = frame.assign(deal_id=frame["deal_id"].astype(str)).sort_values("deal_id")
    if "forecast_category" not in frame:  # scores made without the CRM's categories
        frame["forecast_category"] = None
    for c in REASONS:
        if c not in frame:
            frame[c] = None
    value = frame["value"].fillna(0)
    with db.atomic():
        cur = db.execute(
            "INSERT INTO score_runs (as_of, created_at, model_hash, confidence, base_rate, deals, "
            "pipeline_value, expected_value, notes, data_fingerprint, model_data_end) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                data_fingerprint,
                model_data_end,
            ],
        )
        run_id = int(cur.lastrowid)
        score_columns.save(db, run_id, frame[list(STORED)], _types(db))
        db.conn.executemany(
            f"INSERT INTO deal_scores (run_id, {', '.join(KEYED)}) "
            f"VALUES ({run_id}, {', '.join('?' * len(KEYED))})",
            _records(frame, KEYED),
        )
        if hygiene is not None:
            run_flags.insert(db, run_id, hygiene.rules, hygiene.flags)
    return run_id


def _types(db: sqlite_utils.Database) -> dict[str, str]:
    """Each column of a run's rows and its SQLite type, in the table's order (`SELECT *`)."""
    return {r[1]: r[2].upper() for r in db.execute("PRAGMA table_info(deal_scores)")}


def latest_run(db: sqlite_utils.Database, before: int | None = None) -> dict | None:
    """The newest score run (or the newest one before run `before`)."""
    where, params = ("WHERE run_id < ?", [before]) if before else ("", [])
    rows = list(db.query(f"SELECT * FROM score_runs {where} ORDER BY run_id DESC LIMIT 1", params))
    return rows[0] if rows else None


def run_of(db: sqlite_utils.Database, run_id: int) -> dict | None:
    rows = list(db.query("SELECT * FROM score_runs WHERE run_id = ?", [run_id]))
    return rows[0] if rows else None


def run_scores(db: sqlite_utils.Database, run_id: int, columns: tuple[str, ...] | None = None) -> pd.DataFrame:  # fmt: skip
    """A run's rows by rank; `columns` (of `SCORE_COLUMNS`): only those (a million rows' reasons
    are most of a run's bytes, and comparing with a run needs few of its columns)."""
    if not score_columns.stored(db, run_id):  # saved before schema 5
        wanted = "*" if columns is None else ", ".join(c for c in columns if c in SCORE_COLUMNS)
        return read_frame(
            db, f"SELECT {wanted} FROM deal_scores WHERE run_id = ? ORDER BY rank", [run_id]
        )
    names = list(_types(db)) if columns is None else [c for c in columns if c in SCORE_COLUMNS]
    reasons = [c for c in names if c in REASONS]
    read = [c for c in names if c in STORED]
    read = list(dict.fromkeys([*read, "rank", *(["deal_id"] if reasons else [])]))
    table = score_columns.read(db, run_id, read)
    table = table.take(np.argsort(table.column("rank").to_numpy(), kind="stable"))
    frame = score_columns.frame(table)
    if reasons:
        given = read_frame(
            db,
            "SELECT deal_id, drivers, actions FROM deal_scores WHERE run_id = ? AND "
            "(drivers IS NOT NULL OR actions IS NOT NULL)",
            [run_id],
        )
        at = pd.Index(frame["deal_id"].astype(object)).get_indexer(given["deal_id"].astype(object))
        for c in reasons:
            values = np.full(len(frame), None, dtype=object)
            kept = given[c].astype(object).where(given[c].notna(), None).to_numpy()
            values[at[at >= 0]] = kept[at >= 0]
            frame[c] = pd.Series(values.tolist())  # typed as a query's column would be
    if "run_id" in names:  # as a query gives it: integers, or objects when there are no rows
        frame["run_id"] = np.full(len(frame), run_id, dtype=np.int64 if len(frame) else object)
    return frame[names].reset_index(drop=True)


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
    """A deal's risk and win probability over its last `runs` score runs, oldest first. The runs
    are walked newest first, the deal looked up in each on the table's key (CROSS JOIN keeps
    that order): an index by deal would be rewritten all over by every run."""
    frame = read_frame(
        db,
        "SELECT r.run_id, r.as_of, s.risk, s.win_prob FROM score_runs r CROSS JOIN deal_scores s "
        "ON s.run_id = r.run_id AND s.deal_id = ? ORDER BY r.run_id DESC LIMIT ?",
        [deal_id, runs],
    )
    return frame.iloc[::-1].reset_index(drop=True)


def run_deal(db: sqlite_utils.Database, run_id: int, deal_id: str) -> dict | None:
    """One deal's row in a score run (None if it was not open then)."""
    rows = list(
        db.query("SELECT * FROM deal_scores WHERE run_id = ? AND deal_id = ?", [run_id, deal_id])
    )
    if not rows or not score_columns.stored(db, run_id):
        return rows[0] if rows else None
    found = score_columns.lookup(db, run_id, deal_id) or {}
    return {**rows[0], **found}  # the reasons are the row's: the file has none


def previous_other_data(db: sqlite_utils.Database, run_id: int) -> dict | None:
    """The newest run before `run_id` made of other data (a run repeated on the same data, or
    one without a record of its data, compares with the one before it)."""
    run = run_of(db, run_id)
    rows = list(
        db.query(
            "SELECT * FROM score_runs WHERE run_id < ? AND (data_fingerprint IS NULL "
            "OR ? IS NULL OR data_fingerprint != ?) ORDER BY run_id DESC LIMIT 1",
            [run_id, run and run.get("data_fingerprint"), run and run.get("data_fingerprint")],
        )
    )
    return rows[0] if rows else None


def quarter_rows(run_id: int, scope: str, payload: dict, targets: dict[str, float]) -> list[tuple]:
    """The rows of `forecast_quarters` for one saved forecast: each quarter's quantiles, won so
    far, and its target then (`targets`: quarter -> amount, for this scope)."""
    return [
        (run_id, scope, r["period"], payload["as_of"], float(r["p10"]), float(r["p50"]),
         float(r["p90"]), float(r.get("won_to_date") or 0.0), targets.get(r["period"]))
        for r in payload["table"]
        if r["kind"] == "quarter"
    ]  # fmt: skip


def save_forecast(db: sqlite_utils.Database, run_id: int, scope: str, fc, won: list,
                  targets: dict[str, float] | None = None,
                  bands: dict | None = None) -> None:  # fmt: skip
    """A scope's forecast with its run (`fc`: a `forecasting.forecast.LiveForecast`; `won`:
    (day, value won that day) of the quarter so far, oldest first; `targets`: the scope's target per
    quarter, as configured when the forecast was made; `bands`: the shock, slip and correction
    it was drawn with, `Bands.to_config()`, so that a scope added to the run later gets the
    same). Saved once: a run's forecast for a scope never changes. Its quarters are also kept
    apart, for the track record."""
    table = fc.table.copy()
    for c in ("start", "end"):
        table[c] = table[c].astype(str)
    payload = {
        "as_of": pd.Timestamp(fc.as_of).date().isoformat(),
        "table": table.to_dict(orient="records"),
        "won": won,
        "open_deals": int(fc.open_deals),
        "scenarios": int(fc.scenarios),
        "sigma": float(fc.sigma),
        "grids": getattr(fc, "grids", {}),
        "new_per_week": getattr(fc, "new_per_week", None),
        "bands": bands,
    }
    with db.atomic():
        db.execute(
            "INSERT OR IGNORE INTO run_forecasts (run_id, scope, payload) VALUES (?, ?, ?)",
            [run_id, scope, json.dumps(payload, default=float)],
        )
        db.conn.executemany(
            "INSERT OR IGNORE INTO forecast_quarters VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            quarter_rows(run_id, scope, payload, targets or {}),
        )


def saved_quarters(db: sqlite_utils.Database, scope: str | None = None) -> pd.DataFrame:
    """Every saved quarter forecast (of one scope, or all), oldest run first: quarter, scope,
    as_of, p10, p50, p90, won_so_far, target, run_id."""
    where, params = ("WHERE scope = ?", [scope]) if scope is not None else ("", [])
    return read_frame(db, f"SELECT * FROM forecast_quarters {where} ORDER BY run_id", params)


def run_forecast(db: sqlite_utils.Database, run_id: int, scope: str) -> dict | None:
    """A scope's saved forecast (None if the run has none for it)."""
    rows = list(
        db.query(
            "SELECT payload FROM run_forecasts WHERE run_id = ? AND scope = ?", [run_id, scope]
        )
    )
    return json.loads(rows[0]["payload"]) if rows else None


def forecast_scopes(db: sqlite_utils.Database, run_id: int) -> list[str]:
    """The scopes forecast with a run."""
    return [
        r["scope"] for r in db.query("SELECT scope FROM run_forecasts WHERE run_id = ?", [run_id])
    ]


def save_reasons(
    db: sqlite_utils.Database, run_id: int, reasons: dict[str, tuple[str, str]]
) -> None:
    """Reasons and actions (JSON) given to deals of a run after it was saved."""
    with db.atomic():
        db.conn.executemany(
            "UPDATE deal_scores SET drivers = ?, actions = ? WHERE run_id = ? AND deal_id = ? "
            "AND drivers IS NULL",
            [(d, a, run_id, deal) for deal, (d, a) in reasons.items()],
        )
