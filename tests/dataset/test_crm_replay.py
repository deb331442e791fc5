"""A CRM's change log replayed into the daily exports it never wrote, then imported as files are
(issue 13): the deal history a backfill gives is the one the log describes. Real import, real
SQLite."""

from __future__ import annotations

from datetime import date

import pandas as pd

from dataset.crm_replay import replay, state_on, weekly_days
from dataset.ingest import ingest_sources

NOW = [  # the opportunities as the API gives them today (API times, with zones)
    {"Id": "006A", "Name": "Acme renewal", "OwnerName": "Ann Lee", "AccountName": "Acme",
     "ProductName": "GTX Pro", "StageName": "Qualification", "CreatedDate": "2025-01-06T09:30:00.000+0000",
     "CloseDate": "2025-04-30", "Amount": 1500.0, "Probability": 20, "ForecastCategoryName": "Pipeline",
     "LastActivityDate": "2025-02-03"},
    {"Id": "006B", "Name": "Beta new", "OwnerName": "Bo Chen", "AccountName": "Beta",
     "ProductName": "GTX Pro", "StageName": "Closed Won", "CreatedDate": "2025-01-20T16:00:00.000+0000",
     "CloseDate": "2025-02-05", "Amount": 500.0, "Probability": 100, "ForecastCategoryName": "Closed",
     "LastActivityDate": None},
    {"Id": "006C", "Name": "Cato pilot", "OwnerName": "Ann Lee", "AccountName": "Cato",
     "ProductName": "GTX Basic", "StageName": "Prospecting", "CreatedDate": "2025-02-04T08:00:00.000+0000",
     "CloseDate": "2025-05-15", "Amount": 900.0, "Probability": 10, "ForecastCategoryName": "Pipeline",
     "LastActivityDate": None},
]  # fmt: skip
LOG = [  # OpportunityHistory: the tracked fields after each change, and when
    ("006A", "2025-01-06T09:30:00.000+0000", "Prospecting", 1000.0, "2025-03-31", 10, "Pipeline"),
    ("006A", "2025-01-15T11:00:00.000+0000", "Qualification", 1000.0, "2025-03-31", 20, "Pipeline"),
    ("006A", "2025-01-29T14:00:00.000+0000", "Qualification", 1500.0, "2025-04-30", 20, "Pipeline"),
    ("006B", "2025-01-20T16:00:00.000+0000", "Prospecting", 500.0, "2025-02-28", 10, "Pipeline"),
    ("006B", "2025-02-05T10:00:00.000+0000", "Closed Won", 500.0, "2025-02-05", 100, "Closed"),
    ("006C", "2025-02-04T08:00:00.000+0000", "Prospecting", 900.0, "2025-05-15", 10, "Pipeline"),
]
COLUMNS = ["OpportunityId", "CreatedDate", "StageName", "Amount", "CloseDate", "Probability",
           "ForecastCategoryName"]  # fmt: skip


def _frames():
    return pd.DataFrame(NOW), pd.DataFrame(LOG, columns=COLUMNS)


def test_weekly_days_are_the_mondays_and_today():
    days = weekly_days(date(2025, 1, 8), date(2025, 2, 12))
    assert days[0] == date(2025, 1, 13) and days[-1] == date(2025, 2, 12)
    assert all(d.weekday() == 0 for d in days[:-1]) and len(days) == 6


def test_the_state_on_a_day_is_the_last_change_by_then():
    current, history = _frames()
    jan13 = state_on(current, history, date(2025, 1, 13)).set_index("Id")
    assert list(jan13.index) == ["006A"]  # B and C did not exist yet
    assert (jan13.loc["006A", "StageName"], jan13.loc["006A", "Amount"]) == ("Prospecting", 1000)
    feb3 = state_on(current, history, date(2025, 2, 3)).set_index("Id")
    assert list(feb3.index) == ["006A", "006B"]
    a = feb3.loc["006A"]
    assert (a["StageName"], a["Amount"], a["CloseDate"]) == (
        "Qualification", 1500, pd.Timestamp("2025-04-30")
    )  # fmt: skip
    assert a["LastActivityDate"] == pd.Timestamp("2025-02-03")
    assert feb3.loc["006B", "StageName"] == "Prospecting"
    # before the activity happened, which activity was the last is unknown: blank, not today's
    assert pd.isna(state_on(current, history, date(2025, 1, 27)).set_index("Id").loc["006A", "LastActivityDate"])  # fmt: skip


def test_a_replayed_backfill_imports_as_the_history_the_log_describes(db):
    current, history = _frames()
    days = weekly_days(date(2025, 1, 6), date(2025, 2, 12))
    results = ingest_sources(db, replay(current, history, days), today=date(2025, 2, 12))
    # a day where nothing changed is skipped; the others hold the changed deals; the last all
    assert {r.status for r in results} == {"imported"}
    assert [(r.as_of, r.rows_read) for r in results] == [
        ("2025-01-06", 1), ("2025-01-20", 2), ("2025-02-03", 1),
        ("2025-02-10", 2), ("2025-02-12", 3)]  # fmt: skip
    assert all(r.rows_set_aside == 0 for r in results), [r.summary() for r in results]
    assert results[0].summary().startswith("salesforce sync 2025-01-06.csv: deals via preset "
                                           "salesforce: 1 read = 1 accepted + 0 set aside")  # fmt: skip
    rows = db.execute(
        "SELECT deal_id, as_of, stage, value, close_date FROM deal_history ORDER BY deal_id, as_of"
    ).fetchall()
    a = [r[1:] for r in rows if r[0].startswith("006A")]
    assert a == [
        ("2025-01-06", "Prospecting", 1000.0, "2025-03-31"),
        ("2025-01-20", "Qualification", 1000.0, "2025-03-31"),  # the Monday after the change
        ("2025-02-03", "Qualification", 1500.0, "2025-04-30"),
    ], a
    b = [(r[1], r[2]) for r in rows if r[0].startswith("006B")]
    assert b == [("2025-01-20", "Prospecting"), ("2025-02-10", "Closed Won")], b
    c = [r[1] for r in rows if r[0].startswith("006C")]
    assert c == ["2025-02-10"]
    status = dict(db.execute("SELECT deal_id, status FROM deals").fetchall())
    assert sorted(status.values()) == ["open", "open", "won"], status
    # the same backfill again changes nothing
    again = ingest_sources(db, replay(current, history, days), today=date(2025, 2, 12))
    assert {r.status for r in again} == {"already imported"}
