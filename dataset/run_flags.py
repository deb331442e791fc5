"""The deal hygiene found by each score run: every rule's state (`hygiene_rules`) and every deal
that broke one (`deal_flags`). Why apart from `score_runs`: what a rule found is its own concern
(nudges and a dashboard read it), though it is written in the run's own transaction, so that a
run is never seen without it."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import sqlite_utils

from dataset import score_columns
from dataset.database import _records, read_frame

RULE_COLUMNS = ("rule", "state", "threshold", "flagged", "note")
FLAG_COLUMNS = ("deal_id", "rule", "detail", "value", "threshold")
# what a flag shows of its deal, from the run (`deal_value` is the run's `value`)
DEAL_COLUMNS = ("owner", "manager", "region", "account", "stage", "value", "value_at_risk")
_AS = [f"s.{c}" + (" AS deal_value" if c == "value" else "") for c in DEAL_COLUMNS]


def insert(db: sqlite_utils.Database, run_id: int, rules: pd.DataFrame, flags: pd.DataFrame) -> None:  # fmt: skip
    """A run's rule states and flags (`scoring.hygiene.Hygiene`); called inside the run's
    transaction (`score_runs.write_score_run`)."""
    db.conn.executemany(
        f"INSERT INTO hygiene_rules (run_id, {', '.join(RULE_COLUMNS)}) VALUES ({run_id}, ?, ?, ?, ?, ?)",  # fmt: skip
        _records(rules, RULE_COLUMNS),
    )
    # in key order: the B-tree then grows at its end
    flags = flags.sort_values(["deal_id", "rule"])
    db.conn.executemany(
        f"INSERT INTO deal_flags (run_id, {', '.join(FLAG_COLUMNS)}) VALUES ({run_id}, ?, ?, ?, ?, ?)",  # fmt: skip
        _records(flags, FLAG_COLUMNS),
    )


def run_rules(db: sqlite_utils.Database, run_id: int) -> pd.DataFrame:
    """Each rule's state with a run, by rule name (empty for a run saved before revbot
    evaluated hygiene)."""
    return read_frame(
        db,
        f"SELECT {', '.join(RULE_COLUMNS)} FROM hygiene_rules WHERE run_id = ? ORDER BY rule",
        [run_id],
    )


def run_flags(db: sqlite_utils.Database, run_id: int, deal_id: str | None = None,
              rule: str | None = None) -> pd.DataFrame:  # fmt: skip
    """The flags of a run (of one deal, of one rule), with each deal's owner, account, value and
    value at risk from the run, furthest past its threshold first, then by value at risk."""
    where, params = "f.run_id = ?", [run_id]
    if deal_id is not None:
        where, params = where + " AND f.deal_id = ?", [*params, deal_id]
    if rule is not None:
        where, params = where + " AND f.rule = ?", [*params, rule]
    if not score_columns.stored(db, run_id):  # a run saved before schema 5
        return read_frame(
            db,
            "SELECT f.deal_id, f.rule, f.detail, f.value, f.threshold, s.owner, s.manager, "
            "s.region, s.account, s.stage, s.value AS deal_value, s.value_at_risk FROM deal_flags f "
            "LEFT JOIN deal_scores s ON s.run_id = f.run_id AND s.deal_id = f.deal_id "
            f"WHERE {where} ORDER BY f.rule, f.value - f.threshold IS NULL, "
            "f.value - f.threshold DESC, s.value_at_risk IS NULL, s.value_at_risk DESC, f.deal_id",
            params,
        )
    flags = read_frame(
        db, f"SELECT {', '.join('f.' + c for c in FLAG_COLUMNS)} FROM deal_flags f WHERE {where}",
        params,
    )  # fmt: skip
    if flags.empty:  # as the join's answer: every column, no rows
        return read_frame(db, f"SELECT {', '.join('f.' + c for c in FLAG_COLUMNS)}, {', '.join(_AS)} "
                              "FROM deal_flags f, deal_scores s LIMIT 0")  # fmt: skip
    table = score_columns.read_deals(db, run_id, flags["deal_id"], DEAL_COLUMNS)
    at = pd.Index(table.column("deal_id").to_pylist()).get_indexer(flags["deal_id"].astype(object))
    # a flag's deal the run does not hold (none should) shows no values, as the LEFT JOIN did
    joined = score_columns.frame(table.select(list(DEAL_COLUMNS)).take(pa.array(at, mask=at < 0)))
    for c in DEAL_COLUMNS:
        flags["deal_value" if c == "value" else c] = joined[c].set_axis(flags.index)
    ids = flags["deal_id"].astype(object)
    # the order SQLite gave: rule; furthest past the threshold first; then by value at risk
    gap = pd.to_numeric(flags["value"], errors="coerce") - pd.to_numeric(
        flags["threshold"], errors="coerce"
    )
    risk = pd.to_numeric(flags["value_at_risk"], errors="coerce")
    keys = pd.DataFrame({"rule": flags["rule"].astype(object), "no_gap": gap.isna(),
                         "gap": -gap.fillna(0), "no_risk": risk.isna(),
                         "risk": -risk.fillna(0), "deal": ids})  # fmt: skip
    order = keys.sort_values(list(keys.columns), kind="stable").index
    return flags.loc[order].reset_index(drop=True)
