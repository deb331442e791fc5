"""Live sync from HubSpot (issue 13), end to end: the real hubspot-api-client against the loopback
fake, through the shared sync (mirror, replay, import) into real SQLite; the deal history it
leaves is checked against the fake's own ground truth."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dataset import crm_mirror, database, deal_history
from dataset.crm_sync import sync
from dataset.hubspot_reader import HubSpotReader
from tests.fakes.hubspot_api import PIPELINES, FakeHubSpot

LABELS = {sid: label for _, stages in PIPELINES.values() for sid, label, _, _ in stages}


@pytest.fixture
def fake():
    with FakeHubSpot(deals=150).serve() as server:
        yield server


def reader_of(fake: FakeHubSpot) -> HubSpotReader:
    return HubSpotReader(fake.token, host=fake.base_url, sleep=lambda _: None)


def test_a_first_sync_leaves_the_history_the_crm_had(fake, tmp_path):
    db = database.connect(tmp_path / "x.db")
    result = sync(db, reader_of(fake))
    assert result.status == "done" and result.as_of == fake.now.date()
    assert result.new == len(fake.deals) and len(result.days) > 20
    assert sum(r.rows_set_aside for r in result.imports) == 0
    stages = {r[0]: r[1:] for r in db.execute("SELECT stage, status, probability FROM stages")}
    assert stages["Renewal Due"] == ("open", 50.0) and stages["Churned"][0] == "lost"
    assert stages["Closed Won"][0] == "won" and stages["Contract Sent"] == ("open", 90.0)

    checked = 0
    for day in result.days[::4]:
        states = deal_history.states_before(db, day + timedelta(days=1)).set_index("deal_id")
        for deal_id, deal in fake.deals.items():
            if deal.created.date() > day:
                assert deal_id not in states.index
                continue
            truth, row = fake.state_on(deal_id, day), states.loc[deal_id]
            assert row["stage"] == LABELS[truth["dealstage"]], (deal_id, day)
            assert row["value"] == float(truth["amount"]) and row["close_date"] == truth["closedate"][:10]  # fmt: skip
            checked += 1
    assert checked > 500


def test_archived_and_merged_deals_are_marked_and_left_out(fake, tmp_path):
    db = database.connect(tmp_path / "x.db")
    reader = reader_of(fake)
    sync(db, reader)
    live = [d for d in fake.live() if d.value("dealstage") in ("appointmentscheduled", "qualifiedtobuy")]  # fmt: skip
    archived, survivor, merged = live[0].id, live[1].id, live[2].id
    fake.now += timedelta(days=1)
    fake.archive(archived, fake.now)
    fake.merge(survivor, merged, fake.now)
    result = sync(db, reader)
    assert result.status == "done" and result.removed == 2
    gone = crm_mirror.removed(db).set_index("deal_id")
    assert gone.loc[archived, "how"] == "deleted"
    assert (gone.loc[merged, "how"], gone.loc[merged, "merged_into"]) == ("merged", survivor)
    crm = deal_history.load_crm(db)
    assert not {archived, merged} & set(crm["deals"]["deal_id"])
    assert survivor in set(crm["deals"]["deal_id"])
    closed = deal_history.closed_since(db, [archived, merged, survivor]).set_index("deal_id")
    assert closed["status"].to_dict() == {archived: "deleted", merged: "merged"}


def test_a_deal_archived_while_a_read_is_retried_is_still_marked(fake, tmp_path):
    db = database.connect(tmp_path / "x.db")
    reader = HubSpotReader(fake.token, host=fake.base_url, sleep=lambda _: None, page_size=5)
    sync(db, reader)
    live = [d.id for d in fake.live()]
    fake.now += timedelta(days=1)
    fake.archive(live[0], fake.now - timedelta(hours=3))
    for n, deal_id in enumerate(live[1:13]):  # changed after the archive: several pages
        fake.change(deal_id, fake.now - timedelta(hours=2, minutes=-n), amount="12345")
    fake.fail_next(4, status=429, retry_after="1", after=12)  # beyond the reader's own retries
    waits: list[float] = []
    result = sync(db, reader, sleep=waits.append)
    assert result.status == "done" and waits  # the sync waited and resumed from a later page
    assert crm_mirror.removed(db)["deal_id"].tolist() == [live[0]]
    assert result.removed == 1 and result.changed >= 12


def test_a_deal_deleted_long_before_the_first_sync_does_not_stretch_the_backfill(fake, tmp_path):
    first = min(d.created for d in fake.deals.values())
    old = next(iter(fake.deals.values()))
    old.created = first - timedelta(days=700)
    fake.archive(old.id, first - timedelta(days=600))
    db = database.connect(tmp_path / "x.db")
    result = sync(db, reader_of(fake))
    assert result.days[0] >= first.date() - timedelta(days=7)
    assert result.removed == 0 and crm_mirror.removed(db).empty  # never a deal revbot knew
    assert result.new == len(fake.deals) - 1
