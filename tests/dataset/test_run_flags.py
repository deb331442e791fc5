"""Hygiene saved with a score run, in its transaction, on a real SQLite file; a database made
before the hygiene tables existed gains them at its next connection."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest

from dataset import database, run_flags, score_runs
from scoring.hygiene import FLAG_COLUMNS, RULE_COLUMNS, Hygiene
from tests.bot.test_export import scores_frame

RULES = pd.DataFrame(
    [("close_date_passed", "on", 0.0, 2, None), ("no_next_step", "not available", None, 0,
      "its exports have no next-step column"), ("no_activity", "off", 14.0, 0, None)],
    columns=RULE_COLUMNS,
)  # fmt: skip
FLAGS = pd.DataFrame(
    [("D4", "close_date_passed", "expected close date 2024-03-01 passed 4 days ago", 4.0, 0.0),
     ("D1", "close_date_passed", "expected close date 2024-02-01 passed 33 days ago", 33.0, 0.0),
     ("D2", "amount_missing", "no amount in the CRM; scored at $30k, a median of open deals' "
      "amounts", 30_000.0, np.nan),
     ("D5", "amount_missing", "no amount in the CRM; scored at $1.5k, the list price of GTX Pro",
      1_500.0, np.nan)],
    columns=FLAG_COLUMNS,
)  # fmt: skip


def save_run(db, hygiene: Hygiene | None = None) -> int:
    return score_runs.write_score_run(
        db, as_of=pd.Timestamp("2024-03-05"), scores=scores_frame(2), model_hash="h",
        confidence="model confidence: high", base_rate=0.6, hygiene=hygiene,
    )  # fmt: skip


def test_a_run_saves_its_rules_and_flags_and_reads_them_back(tmp_path):
    db = database.connect(tmp_path / "r.db")
    run_id = save_run(db, hygiene=Hygiene(FLAGS, RULES))
    rules = run_flags.run_rules(db, run_id)
    assert (
        rules.sort_values("rule")
        .reset_index(drop=True)
        .equals(RULES.sort_values("rule").reset_index(drop=True).astype({"threshold": float}))
    )
    flags = run_flags.run_flags(db, run_id)
    # by rule; furthest past the threshold first; no threshold: by value at risk (D2 > D5)
    assert flags["deal_id"].tolist() == ["D2", "D5", "D1", "D4"]
    assert (
        flags[FLAG_COLUMNS]
        .set_index(["deal_id", "rule"])
        .sort_index()
        .equals(FLAGS.set_index(["deal_id", "rule"]).sort_index())
    )
    # with the deal as the run scored it
    d1 = flags.set_index("deal_id").loc["D1"]
    assert (d1["owner"], d1["account"], d1["stage"]) == ("Ana Ortiz", "Zoë Müller GmbH, Berlin", "Engaging")  # fmt: skip
    assert d1["deal_value"] == 50_000 and d1["value_at_risk"] > 0
    assert run_flags.run_flags(db, run_id, deal_id="D5")["rule"].tolist() == ["amount_missing"]
    assert run_flags.run_flags(db, run_id, rule="close_date_passed")["deal_id"].tolist() == ["D1", "D4"]  # fmt: skip
    db.close()


def test_a_database_made_before_hygiene_gains_its_tables(tmp_path):
    path = tmp_path / "old.db"
    db = database.connect(path)
    old_run = save_run(db)
    db.conn.executescript("DROP TABLE deal_flags; DROP TABLE hygiene_rules;")
    db.close()
    db = database.connect(path)  # as a database made before the tables existed is opened
    assert {"deal_flags", "hygiene_rules"} <= set(db.table_names())
    assert run_flags.run_rules(db, old_run).empty and run_flags.run_flags(db, old_run).empty
    new_run = save_run(db, hygiene=Hygiene(FLAGS, RULES))
    assert len(run_flags.run_flags(db, new_run)) == 4 and len(run_flags.run_rules(db, new_run)) == 3
    db.close()


def test_a_run_is_never_saved_without_its_hygiene(tmp_path):
    """The flags go in the run's own transaction: if they cannot be written, neither is the run."""
    db = database.connect(tmp_path / "t.db")
    twice = pd.concat([FLAGS, FLAGS.head(1)])  # the same deal and rule twice
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        save_run(db, hygiene=Hygiene(twice, RULES))
    assert db["score_runs"].count == 0 and db["score_columns"].count == 0
    db.close()
