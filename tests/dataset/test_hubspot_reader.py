"""The HubSpot deal reader (issue 13), through the real hubspot-api-client against a loopback fake
of HubSpot's API (tests/fakes/hubspot_api.py) that keeps its own ground truth."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from dataset.crm_reader import DELETED, MERGED_INTO, MODSTAMP, CrmBusy, CrmError, CrmSessionExpired
from dataset.crm_replay import HEADER, TRACKED, state_on
from dataset.hubspot_reader import SCOPES, HubSpotReader
from tests.fakes.hubspot_api import PIPELINES, FakeHubSpot, parse_time

LABELS = {sid: label for _, stages in PIPELINES.values() for sid, label, _, _ in stages}
FORECAST = {"COMMIT": "Commit", "BEST_CASE": "Best Case", "PIPELINE": "Pipeline",
            "OMIT": "Omitted", "CLOSED": "Closed"}  # fmt: skip


@pytest.fixture
def fake():
    with FakeHubSpot().serve() as server:
        yield server


def reader(fake: FakeHubSpot, **kwargs) -> tuple[HubSpotReader, list[float]]:
    slept: list[float] = []
    return HubSpotReader(fake.token, host=fake.base_url, sleep=slept.append, **kwargs), slept


def read(r: HubSpotReader, cursor: str | None = None) -> tuple[list[dict], list[dict], list[str]]:
    records, changes, cursors = [], [], []
    for page in r.pages(cursor):
        records += page.records
        changes += page.changes
        cursors.append(page.cursor)
    return records, changes, cursors


def expected(fake: FakeHubSpot, deal_id: str, day: date) -> dict:
    """The fake's own state of a deal at the end of `day`, in Salesforce's words."""
    s = fake.state_on(deal_id, day)
    return {
        "StageName": LABELS[s["dealstage"]], "Amount": float(s["amount"]),
        "CloseDate": s["closedate"][:10], "Probability": float(s["hs_deal_stage_probability"]) * 100,
        "ForecastCategoryName": FORECAST[s["hs_forecast_category"]],
    }  # fmt: skip


def test_full_read_rebuilds_every_past_day_as_the_crm_had_it(fake):
    records, changes, cursors = read(reader(fake)[0])
    assert sorted(r["Id"] for r in records) == sorted(fake.deals)  # each deal once
    assert all(set(HEADER) | {MODSTAMP, DELETED, MERGED_INTO} <= set(r) for r in records)
    assert cursors == sorted(cursors)  # oldest change first
    by_id = {r["Id"]: r for r in records}
    deal = fake.deals["9007"]
    assert by_id["9007"]["StageName"] == LABELS[deal.value("dealstage")]
    assert by_id["9007"][MODSTAMP] == _z(deal.modified) <= cursors[-1]
    # one full-state row per distinct moment any tracked property changed, stable ids
    moments = {t for p in fake.deals["9007"].history.values() for t, _ in p}
    assert len([c for c in changes if c["OpportunityId"] == "9007"]) == len(moments)
    assert len({c["Id"] for c in changes}) == len(changes)
    assert all(c[f] is not None for c in changes for f in TRACKED)
    current = pd.DataFrame(records)
    history = pd.DataFrame(changes)
    for day in [fake.now.date() - timedelta(days=n) for n in (0, 3, 17, 45, 90, 150, 240)]:
        rebuilt = state_on(current, history, day).set_index("Id")
        alive = [d.id for d in fake.deals.values() if d.created.date() <= day]
        assert sorted(rebuilt.index) == sorted(alive)
        for deal_id in alive:
            row = rebuilt.loc[deal_id]
            got = {f: row[f] for f in TRACKED}
            got["CloseDate"] = row["CloseDate"].date().isoformat()
            assert got == expected(fake, deal_id, day), (deal_id, day)
    again = read(reader(fake)[0])[1]
    assert sorted(c["Id"] for c in again) == sorted(c["Id"] for c in changes)


def test_records_name_owner_company_and_map_hubspot_values(fake):
    records, _, _ = read(reader(fake)[0])
    by_id = {r["Id"]: r for r in records}
    for deal in fake.deals.values():
        r = by_id[deal.id]
        owner = {"107": "Dennis Ritchie", "999": "999"}.get(deal.owner)  # archived, unknown
        assert r["OwnerName"] == (owner or r["OwnerName"]) and r["OwnerName"]
        assert r["AccountName"] == (fake.companies[deal.company] if deal.company else None)
        assert r["Amount"] == float(deal.value("amount"))
        assert r["Probability"] == float(deal.value("hs_deal_stage_probability")) * 100
        assert r["Type"] in {"New Business", "Existing Business"}
        assert r["ProductName"] is None and r["LeadSource"] is None
        assert not r[DELETED] and r[MERGED_INTO] is None
    assert by_id["9000"]["OwnerName"] != "101"  # names, not ids


def test_incremental_read_returns_exactly_the_deals_changed_since(fake):
    r, _ = reader(fake)
    cursor = read(r)[2][-1]
    fake.now += timedelta(days=2)
    at = fake.now - timedelta(hours=5)
    fake.change("9010", at, dealstage="contractsent", hs_deal_stage_probability="0.9")
    fake.change("9020", at + timedelta(minutes=1), amount="123456")
    fake.change("9030", at + timedelta(minutes=2), closedate="2025-09-30T00:00:00.000Z")
    # stamped before the cursor but indexed by search after the last read: the overlap has it
    fake.change("9040", parse_time(cursor) - timedelta(minutes=4), amount="4040")
    before = len(fake.requests)
    records, changes, cursors = read(r, cursor)
    since = parse_time(cursor) - timedelta(minutes=10)
    assert min(cursors) >= cursor  # a page of the overlap never moves the cursor back
    changed = {d.id for d in fake.live() if d.modified >= since}
    assert {"9010", "9020", "9030", "9040"} <= changed and len(changed) <= 6
    assert sorted(x["Id"] for x in records) == sorted(changed)
    assert {c["OpportunityId"] for c in changes} == changed  # their whole history, nobody else's
    amounts = {c["Id"]: c["Amount"] for c in changes if c["OpportunityId"] == "9020"}
    assert amounts[f"9020:{(at + timedelta(minutes=1)).strftime('%Y-%m-%dT%H:%M:%S')}.000Z"] == 123456.0  # fmt: skip
    searches = [q for q in fake.requests if q.path.endswith("/deals/search")]
    flt = searches[-1].body["filterGroups"][0]["filters"][0]
    assert (flt["propertyName"], flt["operator"]) == ("hs_lastmodifieddate", "GTE")
    first = next(q for q in fake.requests[before:] if q.path.endswith("/deals/search"))
    first = first.body["filterGroups"][0]["filters"][0]
    assert parse_time(first["value"]) == since  # epoch milliseconds, ten minutes back


def same_moment(fake: FakeHubSpot, first: int, count: int) -> None:
    """`count` deals, from the `first` in modified order on, all changed at one moment."""
    order = sorted(fake.deals.values(), key=lambda d: (d.modified, int(d.id)))
    for deal in order[first : first + count]:
        deal.modified = order[first].modified


def test_search_restarts_from_the_last_moment_and_loses_nothing(fake):
    fake.search_cap = 50
    same_moment(fake, 35, 30)  # more than a page: the reader pages through them by offset
    records, _, cursors = read(reader(fake, page_size=20, search_cap=50)[0])
    assert sorted(x["Id"] for x in records) == sorted(fake.deals)  # none lost, none twice
    searches = [q.body for q in fake.requests if q.path.endswith("/deals/search")]
    assert all(b.get("filterGroups") for b in searches[1:])  # each page a search from a moment
    assert [b["after"] for b in searches if b.get("after")] == ["20"]
    assert all(int(b.get("after") or 0) + b["limit"] <= 50 for b in searches)
    assert cursors == sorted(cursors)


def test_a_deal_changed_mid_read_hides_no_other(fake):
    """Paging one search by offset would skip a deal here: the changed deal leaves the front of
    the sorted results and every later one moves up a place, past the offset already read."""
    pages = reader(fake, page_size=20)[0].pages(None)
    first = next(pages)
    fake.now += timedelta(minutes=5)
    fake.change(first.records[0]["Id"], fake.now - timedelta(minutes=1), amount="777")
    records = first.records + [x for page in pages for x in page.records]
    assert sorted({x["Id"] for x in records}) == sorted(fake.deals)
    again = [x for x in records if x["Id"] == first.records[0]["Id"]]
    assert [x["Amount"] for x in again][-1] == 777.0


def test_more_deals_at_one_moment_than_search_can_page(fake):
    fake.search_cap = 50
    same_moment(fake, 100, 60)
    with pytest.raises(CrmError, match="cannot page past 50 deals modified at the same moment"):
        read(reader(fake, page_size=20, search_cap=50)[0])
    # a reader that believes in a larger cap than the CRM's gets HubSpot's own refusal, plainly
    with pytest.raises(CrmError, match=r"HubSpot answered 400: .*limited to 50") as caught:
        read(reader(fake, page_size=20)[0])
    assert fake.token not in str(caught.value)


def test_rate_limit_waits_retry_after_then_reports_busy(fake):
    r, slept = reader(fake, max_retries=3)
    fake.fail_next(2, retry_after="3")
    assert len(read(r)[0]) == 300
    assert slept == [3.0, 3.0] and r.stats.retries == 2
    # the first call is a GET (owners), which urllib3 would retry on its own: it must not
    assert [q.path for q in fake.requests[:3]] == ["/crm/v3/owners/"] * 3
    fake.requests.clear()
    fake.fail_next(10, retry_after="4")
    with pytest.raises(CrmBusy) as caught:
        read(reader(fake, max_retries=3)[0])
    assert caught.value.retry_after == 4.0 and "429" in str(caught.value)
    assert len(fake.requests) == 4  # one try and three retries, nothing hidden
    fake.failures.clear()
    fake.fail_next(1, retry_after="3600")  # longer than the reader will wait: the sync decides
    r, slept = reader(fake)
    with pytest.raises(CrmBusy) as caught:
        read(r)
    assert caught.value.retry_after == 3600.0 and slept == []
    fake.fail_next(1, retry_after=None)
    r, slept = reader(fake)
    assert len(read(r)[0]) == 300 and slept == [10.0]


def test_revoked_token_is_session_expired_and_says_so(fake, caplog):
    caplog.set_level(logging.DEBUG)
    r, _ = reader(fake)
    fake.token = "pat-na1-rotated"
    with pytest.raises(CrmSessionExpired, match="revoked or rotated") as caught:
        read(r)
    assert "pat-na1-fake-0000" not in str(caught.value)
    fake.token = "pat-na1-fake-0000"
    r.reconnect()
    assert len(read(r)[0]) == 300


def test_other_errors_are_plain(fake):
    fake.fail_next(1, status=403)
    with pytest.raises(CrmError, match=r"403.*crm\.objects\.deals\.read") as caught:
        read(reader(fake)[0])
    assert not isinstance(caught.value, CrmBusy | CrmSessionExpired)
    fake.fail_next(1, status=502)
    with pytest.raises(CrmError, match="HubSpot answered 502: Injected failure 502"):
        read(reader(fake)[0])
    with pytest.raises(CrmError, match="could not be reached"):
        read(HubSpotReader("x", host="http://127.0.0.1:9")  # nothing listens on port 9
             )  # fmt: skip


def test_archived_and_merged_deals_are_flagged(fake):
    r, _ = reader(fake)
    cursor = read(r)[2][-1]
    fake.archive("9001", datetime(2024, 12, 1, tzinfo=UTC))  # before the cursor: already synced
    fake.now += timedelta(days=1)
    fake.archive("9002", fake.now - timedelta(hours=2))
    fake.merge("9003", "9004", fake.now - timedelta(hours=1))
    records, changes, _ = read(r, cursor)
    by_id = {x["Id"]: x for x in records}
    assert by_id["9002"][DELETED] and by_id["9002"][MODSTAMP] == _z(fake.now - timedelta(hours=2))
    assert by_id["9004"][DELETED] and by_id["9004"][MERGED_INTO] == "9003"
    assert not by_id["9003"][DELETED] and by_id["9003"][MERGED_INTO] is None
    assert by_id["9001"][DELETED]  # every archived deal, each read (the sync counts it once)
    assert {c["OpportunityId"] for c in changes} >= {"9002", "9003"}  # the deleted one's history
    everything = {x["Id"]: x for x in read(r)[0]}  # a full read: archived ones flagged, once
    assert everything["9001"][DELETED] and everything["9002"][DELETED]
    assert [x["Id"] for x in read(r)[0]].count("9001") == 1


def test_stages_map_won_lost_probability_and_order(fake):
    stages = reader(fake)[0].stages()
    assert [s.label for s in stages] == [label for _, st in PIPELINES.values() for _, label, _, _ in st]  # fmt: skip
    by_label = {s.label: s for s in stages}
    assert (by_label["Closed Won"].status, by_label["Closed Won"].probability) == ("won", 100.0)
    assert (by_label["Closed Lost"].status, by_label["Closed Lost"].probability) == ("lost", 0.0)
    assert (by_label["Qualified To Buy"].status, by_label["Qualified To Buy"].probability) == ("open", 40.0)  # fmt: skip
    assert by_label["Renewal Committed"].probability == 85.0
    assert by_label["Churned"].status == "lost" and by_label["Renewed"].status == "won"
    assert [s.order for s in stages] == list(range(len(stages)))


def test_today_is_the_crms_date_not_ours(fake):
    fake.now = datetime(2031, 1, 2, 23, 59, tzinfo=UTC)
    r, _ = reader(fake)
    assert r.today() == date(2031, 1, 2)
    fake.now = datetime(2031, 1, 3, 0, 1, tzinfo=UTC)
    read(r)
    assert r.today() == date(2031, 1, 3)


def test_token_only_in_the_authorization_header(fake, caplog, monkeypatch):
    plain, busy_reader, failing = reader(fake)[0], reader(fake, max_retries=1)[0], reader(fake)[0]
    # every Configuration the client builds (one per model it parses) sets its package's logger
    # and urllib3's to WARNING: hold them at DEBUG so request and response logs are looked at
    packages = ["deals", "owners", "pipelines", "companies", "associations.v4"]
    for name in ["", "urllib3", "dataset.hubspot_reader", *[f"hubspot.crm.{p}" for p in packages]]:
        caplog.set_level(logging.DEBUG, logger=name)
        monkeypatch.setattr(logging.getLogger(name), "setLevel", lambda level: None)
    read(plain)
    fake.fail_next(2)
    with pytest.raises(CrmBusy) as busy:
        read(busy_reader)
    fake.fail_next(1, status=500)
    with pytest.raises(CrmError) as failed:
        read(failing)
    token = fake.token
    assert fake.requests and all(q.headers["authorization"] == f"Bearer {token}" for q in fake.requests)  # fmt: skip
    assert not [q for q in fake.requests if token in q.path + str(q.query) + str(q.body)]
    logged = [x.getMessage() for x in caplog.records]
    assert any("/crm/v3/objects/deals/search" in m for m in logged)  # urllib3's request lines
    assert any("response body" in m for m in logged)  # the client's response bodies
    assert any("rate limited" in m for m in logged)  # ours
    assert not [m for m in logged if token in m]
    assert token not in str(busy.value) + str(failed.value)


def test_from_env_says_what_to_set(fake):
    with pytest.raises(CrmError) as caught:
        HubSpotReader.from_env({"HUBSPOT_API_URL": fake.base_url})
    assert "HUBSPOT_ACCESS_TOKEN" in str(caught.value)
    assert all(scope in str(caught.value) for scope in SCOPES)
    assert set(SCOPES) == {"crm.objects.deals.read", "crm.objects.owners.read",
                           "crm.objects.companies.read", "crm.schemas.deals.read"}  # fmt: skip
    r = HubSpotReader.from_env({"HUBSPOT_ACCESS_TOKEN": fake.token, "HUBSPOT_API_URL": fake.base_url})  # fmt: skip
    assert len(read(r)[0]) == 300


def _z(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
