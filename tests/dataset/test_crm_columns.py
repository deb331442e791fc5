"""What the CRM says about a deal (probability, forecast category, next step, last stage change,
push count, type, lead source) is read, checked, kept in history and survives an upgrade."""

from __future__ import annotations

import csv
import io
import sqlite3

import pandas as pd

from dataset import database, deal_history, import_log
from dataset.ingest import ingest_files
from dataset.presets import BUILTIN
from scoring.crm import prepare

SALESFORCE = """\
"Opportunity ID","Opportunity Owner","Stage","Amount","Probability (%)","Close Date","Created Date","Next Step","Last Stage Change Date","Forecast Category","Type","Lead Source","Push Count"
"0061","Jane Smith","Negotiation/Review","12,500.00","90","3/15/2024","1/2/2024","Send the order form","2/20/2024","Commit","New Business","Web","2"
"0062","Jane Smith","Qualification","8,000.00","15%","4/28/2024","2/1/2024","","2/1/2024","Pipeline","Existing Business","Partner","0"
"0063","Raj Patel","Proposal/Price Quote","1,250.50","high","4/4/2024","1/15/2024","Call","3/1/2024","Best Case","New Business","Web",""
"0064","Raj Patel","Closed Won","4,000","100","3/1/2024","1/15/2024","","3/1/2024","Closed","New Business","Web",""
"""

HUBSPOT = """\
Record ID,Deal Name,Deal Stage,Close Date,Deal owner,Amount,Create Date,Deal probability,Forecast category,Next step,Date entered current stage
9001,Acme,Contract Sent,2024-04-12,Jane Smith,12000,2024-01-08,0.9,Commit,Sign,2024-03-01 10:00
9002,Globex,Qualified To Buy,2024-05-20,Raj Patel,8000,2023-12-01,0.4,Pipeline,,2024-02-20 09:00
"""


def _deals(db) -> dict[str, dict]:
    return {d["deal_id"]: d for d in db.query("SELECT * FROM deals")}


def test_salesforce_columns_are_read_checked_and_kept(db, tmp_path):
    path = tmp_path / "opportunities_2024-03-05.csv"
    path.write_text(SALESFORCE, encoding="utf-8")
    (r,) = ingest_files(db, [path])
    assert (r.rows_read, r.rows_accepted, r.rows_set_aside) == (4, 3, 1)
    assert "bad probability 'high'" in r.set_aside[0].reason
    d = _deals(db)
    assert d["0061"]["probability"] == 90 and d["0062"]["probability"] == 15
    assert (
        d["0061"]["forecast_category"] == "Commit"
        and d["0061"]["next_step"] == "Send the order form"
    )
    assert d["0062"]["next_step"] is None
    assert d["0061"]["stage_changed"] == "2024-02-20" and d["0061"]["push_count"] == 2
    assert d["0061"]["deal_type"] == "New Business" and d["0062"]["lead_source"] == "Partner"
    history = deal_history.deal_history(db, "0061")
    assert history[0]["probability"] == 90 and history[0]["forecast_category"] == "Commit"
    fields = import_log.exported_fields(db)
    assert {"probability", "next_step", "stage_changed", "forecast_category"} <= fields
    stages = {s["stage"]: s for s in db.query("SELECT * FROM stages")}
    assert stages["Negotiation/Review"]["probability"] == 90
    assert stages["Qualification"]["rank"] < stages["Negotiation/Review"]["rank"]
    assert stages["Closed Won"]["rank"] is None


def test_hubspot_fractions_read_as_percent_and_stage_dates_kept(db, tmp_path):
    path = tmp_path / "hubspot-crm-exports-all-deals-2024-03-05.csv"
    path.write_text(HUBSPOT, encoding="utf-8")
    (r,) = ingest_files(db, [path])
    assert r.rows_accepted == 2
    d = _deals(db)
    assert d["9001"]["probability"] == 90 and d["9002"]["probability"] == 40
    assert d["9002"]["stage_changed"] == "2024-02-20"


def test_a_stage_the_preset_does_not_rank_takes_the_exports_probability(db, tmp_path):
    from dataset.presets import apply_overrides

    presets = apply_overrides(BUILTIN, {"salesforce": {"stages": {"Demo Booked": "open"}}})
    text = SALESFORCE.replace('"Qualification"', '"Demo Booked"')
    path = tmp_path / "x_2024-03-05.csv"
    path.write_text(text, encoding="utf-8")
    ingest_files(db, [path], presets=presets)
    stages = {s["stage"]: s for s in db.query("SELECT * FROM stages")}
    assert stages["Demo Booked"]["probability"] == 15  # the median the export gave it


def test_a_schema_1_database_is_upgraded_in_place(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
        "INSERT INTO meta VALUES ('schema_version', '1');"
        "CREATE TABLE imports (id INTEGER PRIMARY KEY, file_name TEXT NOT NULL, path TEXT, "
        "sha256 TEXT NOT NULL UNIQUE, table_name TEXT NOT NULL, preset TEXT NOT NULL, "
        "encoding TEXT NOT NULL, rows_read INTEGER NOT NULL, rows_accepted INTEGER NOT NULL, "
        "rows_set_aside INTEGER NOT NULL, as_of TEXT, deals_new INTEGER, deals_changed INTEGER, "
        "notes TEXT, imported_at TEXT NOT NULL);"
        "CREATE TABLE deal_history (deal_id TEXT NOT NULL, as_of TEXT NOT NULL, name TEXT, "
        "owner TEXT, product TEXT, account TEXT, stage TEXT NOT NULL, status TEXT NOT NULL, "
        "engage_date TEXT, close_date TEXT, value REAL, import_id INTEGER NOT NULL, "
        "PRIMARY KEY (deal_id, as_of)) WITHOUT ROWID;"
        "INSERT INTO deal_history VALUES ('D1', '2024-01-01', NULL, 'Ann', 'X', NULL, 'Engaging', "
        "'open', '2023-12-01', NULL, NULL, 1);"
        "CREATE TABLE deals (deal_id TEXT PRIMARY KEY, name TEXT, owner TEXT, product TEXT, "
        "account TEXT, stage TEXT NOT NULL, status TEXT NOT NULL, engage_date TEXT, "
        "close_date TEXT, value REAL, last_activity TEXT, first_seen TEXT NOT NULL, "
        "last_seen TEXT NOT NULL, import_id INTEGER NOT NULL) WITHOUT ROWID;"
        "CREATE TABLE deal_scores (run_id INTEGER NOT NULL, deal_id TEXT NOT NULL, "
        "rank INTEGER NOT NULL, owner TEXT, manager TEXT, region TEXT, product TEXT, account TEXT, "
        "stage TEXT, value REAL, win_prob REAL NOT NULL, risk REAL NOT NULL, value_at_risk REAL, "
        "expected_close TEXT, drivers TEXT, actions TEXT, PRIMARY KEY (run_id, deal_id)) "
        "WITHOUT ROWID;"
    )
    conn.commit()
    conn.close()
    db = database.connect(path)
    assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(
        database.SCHEMA_VERSION
    )
    assert {"data_fingerprint", "model_data_end"} <= set(db["score_runs"].columns_dict)
    for table in ("deal_history", "deals"):
        assert {"probability", "next_step", "stage_changed"} <= set(db[table].columns_dict)
    assert {"risk_loss", "value_known"} <= set(db["deal_scores"].columns_dict)
    assert "fields" in db["imports"].columns_dict
    assert deal_history.deal_history(db, "D1")[0]["owner"] == "Ann"  # nothing lost
    db.close()
    database.connect(path).close()  # and again: nothing left to add


def test_an_export_without_the_next_step_column_says_nothing_about_next_steps(db, tmp_path):
    """A report that did not include "Next Step" must not read as "no next step" for the weeks
    it covers; a later export with the column does say it."""
    rows = list(csv.reader(io.StringIO(SALESFORCE)))
    column = rows[0].index("Next Step")
    out = io.StringIO()
    csv.writer(out).writerows([r[:column] + r[column + 1 :] for r in rows])
    (tmp_path / "opportunities_2024-02-27.csv").write_text(out.getvalue(), encoding="utf-8")
    later = (
        SALESFORCE.replace("Send the order form", "")  # 0061: the column is there, empty
        .replace("12,500.00", "13,000.00")
        .replace('"2/1/2024","","2/1/2024"', '"2/1/2024","Book a demo","2/1/2024"')  # 0062
    )
    (tmp_path / "opportunities_2024-03-05.csv").write_text(later, encoding="utf-8")
    ingest_files(db, [tmp_path / "opportunities_2024-02-27.csv"])
    ingest_files(db, [tmp_path / "opportunities_2024-03-05.csv"])
    h = prepare(deal_history.load_crm(db)).history
    h = h.set_index(["deal_id", h["as_of"].dt.strftime("%Y-%m-%d")])
    first, second = "2024-02-27", "2024-03-05"
    assert h.loc[[("0061", first), ("0062", first)], "has_next_step"].isna().all()
    assert h.loc[("0061", second), "has_next_step"] == 0
    assert h.loc[("0062", second), "has_next_step"] == 1
    # of the exports that could say, all of 0061's say "no next step"; none of 0062's
    assert h.loc[("0061", second), "next_step_missing"] == 1.0
    assert h.loc[("0062", second), "next_step_missing"] == 0.0
    assert pd.isna(h.loc[("0062", first), "next_step_missing"])


def test_a_salesforce_file_of_low_probabilities_is_not_read_as_fractions(db, tmp_path):
    """Salesforce writes percentages: a report whose deals all have 0% or 1% stays 0-1%, while a
    HubSpot file of fractions (0.9) reads as 90%."""
    low = SALESFORCE.replace('"90"', '"1"').replace('"15%"', '"0"').replace('"100"', '"1"')
    path = tmp_path / "opportunities_2024-03-05.csv"
    path.write_text(low, encoding="utf-8")
    ingest_files(db, [path])
    d = _deals(db)
    assert d["0061"]["probability"] == 1 and d["0062"]["probability"] == 0
    hub = tmp_path / "hubspot-crm-exports-all-deals-2024-03-05.csv"
    hub.write_text(HUBSPOT, encoding="utf-8")
    ingest_files(db, [hub])
    assert _deals(db)["9001"]["probability"] == 90
