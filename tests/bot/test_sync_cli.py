"""`revbot sync`, `revbot syncs` and the refresh's sync step, against the loopback Salesforce
(the real client, TLS trusted through REQUESTS_CA_BUNDLE as an admin behind a proxy would)."""

from __future__ import annotations

import pandas as pd
import pytest

from bot.blocks import gone_detail, news_text
from bot.cli import main
from bot.crm_step import RESYNC_AFTER_SECONDS, CrmStep
from bot.digest import News, nothing_new
from bot.digest_text import _names
from bot.replies import closed_reply
from bot.settings import Settings
from dataset import database
from tests.fakes.salesforce_api import FakeOrg, FakeSalesforce

pytest.importorskip("simple_salesforce")


@pytest.fixture
def fake(tmp_path, monkeypatch):
    with FakeSalesforce(FakeOrg.generate(n=60, seed=5), tmp_path) as server:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.ca))
        monkeypatch.setenv("SALESFORCE_INSTANCE_URL", server.base_url)
        monkeypatch.setenv("SALESFORCE_ACCESS_TOKEN", server.issue_token())
        for name in ("REVBOT_CONFIG", "REVBOT_DB", "SALESFORCE_USERNAME", "SALESFORCE_REFRESH_TOKEN"):  # fmt: skip
            monkeypatch.delenv(name, raising=False)
        yield server


def test_sync_dry_run_then_sync_then_syncs(fake, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "sales.db"
    assert main(["sync", "--crm", "salesforce", "--dry-run", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "salesforce sync (dry run: nothing written): 60 opportunities read (60 new" in out
    assert "would import" in out
    assert not db.exists()  # a dry run writes nothing, not even an empty database

    (tmp_path / "revbot.toml").write_text('[crm]\nkind = "salesforce"\n')
    assert main(["sync", "--db", str(db), "--verbose"]) == 0
    out = capsys.readouterr().out
    days = database.connect(db).execute("SELECT COUNT(*) FROM imports").fetchone()[0]
    assert f"imported {days} days from " in out and days > 10
    assert "salesforce sync 20" in out  # --verbose: each day's import line
    assert f"as of the CRM's date {fake.org.now.date()}" in out

    assert main(["syncs", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "#1 salesforce " in out and " done: 60 opportunities read (60 new)" in out
    assert f"{days} day(s) imported, as of {fake.org.now.date()}" in out


def test_sync_without_a_crm_or_its_credentials_says_what_to_do(fake, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["sync", "--db", str(tmp_path / "x.db")]) == 2
    assert "no CRM to sync: set [crm] kind" in capsys.readouterr().err
    monkeypatch.delenv("SALESFORCE_ACCESS_TOKEN")
    assert main(["sync", "--crm", "salesforce", "--db", str(tmp_path / "x.db")]) == 2
    err = capsys.readouterr().err
    assert "revbot sync: error: no Salesforce sign-in configured" in err
    assert "Traceback" not in err
    (tmp_path / "revbot.toml").write_text('[crm]\nkind = "pipedrive"\n')
    assert main(["sync", "--db", str(tmp_path / "x.db")]) == 2
    assert "[crm] kind: 'pipedrive' is not one of salesforce, hubspot" in capsys.readouterr().err


def test_the_refresh_step_syncs_once_per_morning_and_reports_failures(fake, tmp_path, monkeypatch):
    import os

    db = database.connect(tmp_path / "x.db")
    now = [1000.0]
    waited: list[float] = []
    step = CrmStep(Settings(crm="salesforce"), {}, env=dict(os.environ), clock=lambda: now[0],
                   sleep=waited.append)  # fmt: skip
    said: list[str] = []
    assert step.run(db, said.append) == []
    assert any("salesforce sync: 60 opportunities read" in s for s in said)
    asked = len(fake.requests)
    now[0] += 60  # the next channel's job, a minute later: the same sync serves it
    assert step.run(db, said.append) == [] and len(fake.requests) == asked
    now[0] += RESYNC_AFTER_SECONDS
    fake.expire_sessions()  # a session opened by hand cannot be renewed: reported, not raised
    [problem] = step.run(db, said.append)
    assert problem == (
        "the salesforce sync failed, so this uses the data of the last sync: salesforce refused "
        "the session again after signing in: could not read opportunities: the Salesforce "
        "session expired"
    )
    fake.tokens.add(os.environ["SALESFORCE_ACCESS_TOKEN"])  # valid again; the CRM is busy
    fake.fail_next(100)
    now[0] += RESYNC_AFTER_SECONDS
    [problem] = step.run(db, said.append)
    assert problem.startswith("the salesforce sync stopped half-way (salesforce kept refusing")
    assert "the next one resumes where it stopped" in problem and len(waited) == 5

    broken = CrmStep(Settings(crm="salesforce"), {}, env={})
    [problem] = broken.run(db, said.append)
    assert problem.startswith("the salesforce sync failed, so this uses the data of the last sync")
    assert CrmStep(Settings(), {}, env={}).run(db, said.append) == []


def test_a_deal_gone_from_the_crm_is_news_and_explained_on_request(tmp_path):
    gone = pd.DataFrame(
        [{"deal_id": "0065g00000000001AAA", "status": "deleted", "account": "Acme", "value": 5e4,
          "merged_into": None},
         {"deal_id": "123", "status": "merged", "account": "Globex", "value": 1e4,
          "merged_into": "456"}]
    )  # fmt: skip
    empty = nothing_new()
    news = News(empty.newly_at_risk, empty.jumped, empty.pushed, empty.lost, empty.won, gone)
    text = news_text(news, 60)
    assert "*Gone from the CRM*: Acme (deleted in the CRM), Globex (merged into 456)" in text
    assert len(news) == 2
    reply = closed_reply({"deal_id": "123", "status": "merged", "account": "Globex",
                          "merged_into": "456", "removed_on": "2024-10-16"})  # fmt: skip
    assert "was merged into `456` in the CRM (noticed 2024-10-16)" in reply["text"]
    assert _names(gone, gone_detail) == "Acme (deleted in the CRM), Globex (merged into 456)"


def test_a_synced_deal_without_a_product_or_owner_says_so():
    from bot.blocks import deal_line

    row = pd.Series({"rank": 1, "account": "Acme", "product": float("nan"), "owner": None,
                     "deal_id": "0065g00000000001AAA", "value": 5e4, "win_prob": 0.2, "risk": 70.0})  # fmt: skip
    line = deal_line(row, None)
    assert "Acme* · no product · no owner · " in line and "nan" not in line


def test_digest_with_a_crm_configured_never_loads_the_demo(fake, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SALESFORCE_ACCESS_TOKEN")  # the sign-in fails: nothing at all to show
    (tmp_path / "revbot.toml").write_text('[crm]\nkind = "salesforce"\n')
    assert main(["digest", "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    assert "demo" not in captured.out
    assert "no CRM data imported yet: run `revbot sync`" in captured.err
    assert not (tmp_path / "out" / "demo-crm").exists()


def _people(db_path) -> dict[str, tuple[str, str]]:
    rows = database.connect(db_path).execute("SELECT email, name, source FROM people").fetchall()
    return {email: (name, source) for email, name, source in rows}


def test_revbot_sync_keeps_the_owners_e_mail_addresses(fake, tmp_path, monkeypatch):
    """Salesforce: Owner.Email comes with each opportunity and reaches the people table."""
    from tests.fakes.salesforce_api import email_of

    monkeypatch.chdir(tmp_path)
    fake.org.emails["Casey Lin"] = None  # the integration user cannot see this one's address
    db = tmp_path / "sales.db"
    assert main(["sync", "--crm", "salesforce", "--dry-run", "--db", str(db)]) == 0
    assert not db.exists()  # a dry run keeps no one either
    assert main(["sync", "--crm", "salesforce", "--db", str(db)]) == 0
    owners = {o.owner for o in fake.org.opportunities.values()} - {"Casey Lin"}
    assert _people(db) == {email_of(o): (o, "salesforce") for o in owners}
    # the names are spelt as the deals' owner column has them: the roster matches on those
    synced = {r[0] for r in database.connect(db).execute("SELECT DISTINCT owner FROM deals")}
    assert {name for name, _ in _people(db).values()} <= synced
    # asked for in the SOQL: without Owner.Email the fake (as Salesforce) gives no address
    soql = [r["soql"] for r in fake.data_requests("FROM Opportunity ")]
    assert soql and all("Owner.Email" in q for q in soql)


def test_revbot_sync_from_hubspot_keeps_the_owners_e_mail_addresses(tmp_path, monkeypatch):
    """HubSpot: the owners list's addresses, for the owners of the deals read."""
    from tests.fakes.hubspot_api import ARCHIVED_OWNER, OWNERS, FakeHubSpot

    monkeypatch.chdir(tmp_path)
    with FakeHubSpot(deals=80).serve() as hub:
        monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", hub.token)
        monkeypatch.setenv("HUBSPOT_API_URL", hub.base_url)
        db = tmp_path / "hub.db"
        assert main(["sync", "--crm", "hubspot", "--db", str(db)]) == 0
        owning = {d.owner for d in hub.deals.values()}
    known = {i: (f"{first} {last}", f"{first.lower()}@example.com")
             for i, first, last in [*OWNERS, ARCHIVED_OWNER] if i in owning}  # fmt: skip
    assert "999" in owning  # an owner id the owners list lacks: no name, no address
    assert _people(db) == {email: (name, "hubspot") for name, email in known.values()}
    synced = {r[0] for r in database.connect(db).execute("SELECT DISTINCT owner FROM deals")}
    assert {name for name, _ in known.values()} <= synced
