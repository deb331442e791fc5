"""Live sync from Salesforce (issue 13), end to end: the real simple-salesforce client against a
loopback fake of the REST API served over TLS (tests/fakes/salesforce_api.py), into real SQLite.
"""

from __future__ import annotations

import logging
from datetime import date

import pytest

from dataset import crm_mirror, database, deal_history
from dataset.crm_replay import weekly_days
from dataset.crm_sync import MAX_ATTEMPTS, sync
from dataset.ingest import ingest_files
from dataset.presets import BUILTIN, apply_overrides
from dataset.salesforce_reader import SalesforceReader
from tests.fakes.salesforce_api import STAGES, FakeOrg, FakeSalesforce

pytest.importorskip("simple_salesforce")

STATE = ", ".join(("deal_id", "as_of") + deal_history.STATE)


@pytest.fixture
def fake(tmp_path):
    with FakeSalesforce(
        FakeOrg.generate(n=150, seed=11, start=date(2024, 7, 1)), tmp_path, page_size=50
    ) as server:
        yield server


def reader_of(fake: FakeSalesforce) -> SalesforceReader:
    env = {"SALESFORCE_CONSUMER_KEY": fake.client_id, "SALESFORCE_REFRESH_TOKEN": fake.refresh_token}  # fmt: skip
    return SalesforceReader.from_env(env, session=fake.session())


def history_of(db) -> list[tuple]:
    return db.execute(f"SELECT {STATE} FROM deal_history ORDER BY deal_id, as_of").fetchall()


def activity_of(db) -> list[tuple]:
    return db.execute("SELECT deal_id, activity_date FROM deal_activity ORDER BY 1, 2").fetchall()


def waits() -> tuple[list[float], callable]:
    slept: list[float] = []
    return slept, slept.append


def test_a_first_sync_gives_the_history_weekly_exports_would_have_given(fake, tmp_path):
    synced = database.connect(tmp_path / "synced.db")
    result = sync(synced, reader_of(fake))
    org = fake.org
    assert result.status == "done" and result.as_of == org.now.date()
    assert result.records == result.new == len(org.opportunities)
    assert result.changes == sum(len(h) for h in org.history.values())
    first = min(o.created for o in org.opportunities.values()).date()
    assert result.days == weekly_days(first, org.now.date())
    assert len(result.days) > 12  # months of history from the first sync

    # the same org exported every week by hand, each file named by its day, imported as CSVs
    folder = tmp_path / "exports"
    folder.mkdir()
    for day in result.days:
        (folder / f"opportunities {day.isoformat()}.csv").write_bytes(org.export(day))
    custom = {"salesforce": {"stages": {"Technical Win": "open"}}}  # the CSV user configures it
    exported = database.connect(tmp_path / "exported.db")
    ingest_files(exported, [folder], presets=apply_overrides(BUILTIN, custom), today=org.now.date())

    assert history_of(synced) == history_of(exported)
    # owners as they were (OpportunityFieldHistory), not today's owner carried back in time
    owners = synced.execute("SELECT COUNT(DISTINCT owner) FROM deal_history GROUP BY deal_id").fetchall()  # fmt: skip
    assert sum(n > 1 for (n,) in owners) >= 10
    assert activity_of(synced) == activity_of(exported)
    assert len(history_of(synced)) > len(org.opportunities) * 2  # not one row per deal
    imports = synced.execute("SELECT rows_set_aside, as_of FROM imports").fetchall()
    assert [a for a, _ in imports] == [0] * len(result.days)
    assert [d for _, d in imports] == [d.isoformat() for d in result.days]


def test_the_stages_come_from_the_crm_and_the_config_can_correct_them(fake, tmp_path):
    db = database.connect(tmp_path / "x.db")
    sync(db, reader_of(fake))
    stages = {
        r[0]: r[1:] for r in db.execute("SELECT stage, status, rank, probability FROM stages")
    }
    assert stages["Technical Win"] == ("open", 4, 65.0)  # no built-in preset knows it
    assert stages["Negotiation/Review"] == ("open", 6, 90.0)
    assert stages["Closed Won"][0] == "won" and stages["Closed Lost"][0] == "lost"
    assert set(stages) == {s[0] for s in STAGES}

    other = database.connect(tmp_path / "y.db")
    fix = {"salesforce": {"stages": {"Technical Win": "lost"}}}
    sync(other, reader_of(fake), overrides=fix)
    assert other.execute("SELECT status FROM stages WHERE stage = 'Technical Win'").fetchone() == ("lost",)  # fmt: skip


def test_an_incremental_sync_reads_and_records_exactly_what_changed(fake, tmp_path):
    db = database.connect(tmp_path / "x.db")
    reader = reader_of(fake)
    sync(db, reader)
    before = len(fake.data_requests("FROM Opportunity "))
    org = fake.org
    org.tick(days=1, hours=2)
    moved, bigger, pushed, active = org.open_ids()[:4]
    org.change(moved, StageName="Technical Win")
    org.change(bigger, Amount=999_000.0)
    org.change(pushed, CloseDate=date(2025, 3, 31).isoformat())
    org.touch(active, last_activity=org.now.date())

    result = sync(db, reader)
    today = org.now.date().isoformat()
    assert result.status == "done" and result.days == [org.now.date()]
    assert result.changed == 4 and result.new == 0
    assert result.records <= 4 + 1  # the changed ones, and the last one read before (cursor >=)
    [query] = [r["soql"] for r in fake.data_requests("FROM Opportunity ")[before:]]
    assert "WHERE SystemModstamp >= 2024-10-1" in query
    changed = {r[0] for r in db.execute("SELECT deal_id FROM deal_history WHERE as_of = ?", [today])}  # fmt: skip
    assert changed == {moved, bigger, pushed}
    state = deal_history.deal_state(db, moved)
    assert state["stage"] == "Technical Win" and state["probability"] == 65
    assert deal_history.deal_state(db, bigger)["value"] == 999_000
    assert deal_history.deal_state(db, pushed)["close_date"] == "2025-03-31"
    assert (active, today) in activity_of(db)

    again = sync(db, reader)  # nothing changed since: nothing new imported
    assert again.changed == 0 and again.new == 0
    assert [r.status for r in again.imports] == ["already imported"]


def test_a_sync_cut_off_half_way_resumes_with_nothing_lost_or_doubled(fake, tmp_path):
    clean = database.connect(tmp_path / "clean.db")
    sync(clean, reader_of(fake))

    db = database.connect(tmp_path / "cut.db")
    fake.fail_next(100, after=10)  # a few pages in (each: opportunities, then their histories)
    slept, sleep = waits()
    stopped = sync(db, reader_of(fake), sleep=sleep)
    assert stopped.status == "stopped" and "REQUEST_LIMIT_EXCEEDED" in stopped.note
    assert len(slept) == MAX_ATTEMPTS - 1 and slept == sorted(slept)  # backed off, growing
    assert (
        0 < stopped.records < len(fake.org.opportunities) and stopped.records % 50 == 0
    )  # whole pages
    assert not stopped.imports
    assert db.execute("SELECT COUNT(*) FROM deal_history").fetchone() == (0,)  # nothing half-read
    kept = crm_mirror.resume_point(db, "salesforce")
    assert kept is not None

    fake.fail_next(0)
    fake._failures.clear()
    before = len(fake.data_requests("FROM Opportunity "))
    resumed = sync(db, reader_of(fake))
    assert resumed.status == "done"
    [query] = [r["soql"] for r in fake.data_requests("FROM Opportunity ")[before:]]
    assert "SystemModstamp >=" in query  # from where it stopped, not from the start
    assert resumed.records < len(fake.org.opportunities)
    assert history_of(db) == history_of(clean)
    assert activity_of(db) == activity_of(clean)
    total = sum(len(h) for h in fake.org.history.values())
    assert db.execute("SELECT COUNT(*) FROM crm_changes").fetchone() == (total,)
    assert db.execute("SELECT COUNT(*) FROM crm_records").fetchone() == (len(fake.org.opportunities),)  # fmt: skip
    statuses = [r["status"] for r in crm_mirror.runs(db)]
    assert statuses == ["done", "stopped"]


def test_a_day_missed_by_a_stopped_sync_is_imported_by_the_next(fake, tmp_path):
    db = database.connect(tmp_path / "x.db")
    reader = reader_of(fake)
    sync(db, reader)
    org = fake.org
    org.tick(days=1)
    first, second = org.open_ids()[:2]
    org.change(first, Amount=777_000.0)
    missed = org.now.date()
    fake.fail_next(100)
    assert sync(db, reader, sleep=lambda _: None).status == "stopped"
    fake._failures.clear()
    org.tick(days=1)
    org.change(second, Amount=888_000.0)
    result = sync(db, reader)
    assert result.days == [missed, org.now.date()]
    assert db.execute(
        "SELECT as_of, value FROM deal_history WHERE deal_id = ? ORDER BY as_of DESC LIMIT 1",
        [first],
    ).fetchone() == (missed.isoformat(), 777_000.0)  # dated the day it changed, not the next


def test_a_busy_org_is_waited_for_and_the_sync_goes_on(fake, tmp_path):
    db = database.connect(tmp_path / "x.db")
    fake.fail_next(2, after=3)
    slept, sleep = waits()
    result = sync(db, reader_of(fake), sleep=sleep, say=lambda _: None)
    assert result.status == "done" and slept == [2.0, 5.0]
    assert result.new == len(fake.org.opportunities)


def test_an_expired_session_signs_in_again(fake, tmp_path):
    db = database.connect(tmp_path / "x.db")
    fake.expire_after(4)
    result = sync(db, reader_of(fake))
    assert result.status == "done" and result.new == len(fake.org.opportunities)
    token_calls = [r for r in fake.requests if r["path"] == "/services/oauth2/token"]
    assert len(token_calls) == 2  # signed in, then again after the expiry


def test_a_deleted_deal_is_marked_and_no_longer_scored(fake, tmp_path):
    db = database.connect(tmp_path / "x.db")
    reader = reader_of(fake)
    sync(db, reader)
    gone = fake.org.open_ids()[0]
    fake.org.tick(days=1)
    fake.org.delete(gone)
    result = sync(db, reader)
    assert result.removed == 1
    assert crm_mirror.removed(db).to_dict("records") == [
        {"deal_id": gone, "removed_on": fake.org.now.date().isoformat(), "how": "deleted",
         "merged_into": None}
    ]  # fmt: skip
    crm = deal_history.load_crm(db)
    assert gone not in set(crm["deals"]["deal_id"]) and gone not in set(crm["history"]["deal_id"])
    closed = deal_history.closed_since(db, [gone, fake.org.open_ids()[0]])
    assert closed.to_dict("records")[0]["status"] == "deleted" and len(closed) == 1


def test_a_dry_run_reads_but_writes_nothing(fake, tmp_path):
    db = database.connect(tmp_path / "x.db")
    before = database.table_counts(db)
    result = sync(db, reader_of(fake), dry_run=True)
    assert result.status == "dry-run" and result.new == len(fake.org.opportunities)
    assert len(result.days) > 12 and "would import" in result.summary()
    assert database.table_counts(db) == before


def test_secrets_never_reach_the_logs_or_the_messages(fake, tmp_path, caplog):
    for name in (None, "urllib3", "simple_salesforce", "dataset", "requests"):
        caplog.set_level(logging.DEBUG, logger=name)  # a client may have quietened its own
    db = database.connect(tmp_path / "x.db")
    fake.expire_after(3)
    fake.fail_next(1, after=5)
    slept, sleep = waits()
    said: list[str] = []
    result = sync(db, reader_of(fake), sleep=sleep, say=said.append)
    assert result.status == "done" and said
    fake.fail_next(100)  # and a run the CRM stops: its note is kept and listed
    stopped = sync(db, reader_of(fake), sleep=sleep, say=said.append)
    assert stopped.status == "stopped"
    notes = " ".join(str(r["note"]) for r in crm_mirror.runs(db))
    secrets = [fake.refresh_token, fake.client_id, *fake.tokens]
    text = caplog.text + "\n".join(said) + result.summary() + stopped.summary() + notes
    assert len(fake.tokens) >= 1 and caplog.records
    for secret in secrets:
        assert secret not in text
