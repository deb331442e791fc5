"""The bot's pure rules: configuration checks, who sees what, what counts as news, and when a
digest is due or was missed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from bot.access import allowed_scope, can_see
from bot.config import ConfigError
from bot.digest import handled, news
from bot.replies import match_scope, parse_forecast, pick_quarter
from bot.scheduler import digest_date, last_fire, missed, start
from bot.settings import Member, Scope, Secrets, settings_from
from tests.bot.slackenv import channel

CONFIG = {
    "digest": {"time": "08:00", "timezone": "America/New_York", "top": 8},
    "slack": {"admin_channel": "C0ADMIN"},
    "exports": {"folder": "/srv/exports"},
    "channels": [{"id": "C0ALL", "scope": "all"},
                 {"id": "C0WEST", "scope": "region:West", "time": "07:30", "min_risk": 50}],
    "roster": {"U0LEAD": {"role": "leader"}, "U0REP": {"role": "rep", "name": "Ann Lee"}},
}  # fmt: skip


def test_settings_merge_defaults_per_channel():
    s = settings_from(CONFIG, env={"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_API_URL": "http://x/api/"})
    west = s.channels[1]
    assert (west.time, west.timezone, west.top, west.min_risk) == ("07:30", "America/New_York", 8, 50)  # fmt: skip
    assert west.scope == Scope("region", "West") and s.channels[0].scope == Scope("all")
    assert s.member("U0REP") == Member("U0REP", "rep", "Ann Lee") and s.member("U0NOBODY") is None
    assert "xoxb-1" not in repr(s) and "bot_token': 'set'" in repr(s.secrets)


def test_import_ceiling_is_read_from_exports():
    assert settings_from(CONFIG, env={}).import_limits.max_amount == 1e12  # the default
    s = settings_from({**CONFIG, "exports": {"folder": "/x", "max_amount": 5_000_000}}, env={})
    assert s.import_limits.max_amount == 5_000_000 and s.exports_folder == Path("/x")


def test_no_roster_means_everyone_is_a_leader():
    s = settings_from({}, env={})
    assert s.member("U0ANY").role == "leader" and s.channels == ()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"channels": [{"id": "#sales"}]}, "not a Slack channel ID"),
        ({"channels": [{"id": "C0A", "time": "8am"}]}, "is not HH:MM"),
        ({"channels": [{"id": "C0A", "timezone": "Mars/Base"}]}, "unknown timezone"),
        ({"channels": [{"id": "C0A", "scope": "team:x"}]}, "expected 'all'"),
        ({"channels": [{"id": "C0A", "top": 80}]}, "top must be 1-20"),
        ({"channels": [{"id": "C0A", "colour": "red"}]}, "unknown keys ['colour']"),
        ({"channels": [{"id": "C0A"}, {"id": "C0A"}]}, "listed twice"),
        ({"roster": {"U0X": {"role": "boss"}}}, "role must be one of"),
        ({"roster": {"U0X": {"role": "rep"}}}, "needs the CRM `name`"),
        ({"roster": {"ann": {"role": "leader"}}}, "not a Slack user ID"),
        ({"digest": {"tiem": "08:00"}}, "unknown keys ['tiem']"),
        ({"exports": {"max_amount": 0}}, "max_amount: 0 is not a positive number"),
        ({"exports": {"max_amount": float("inf")}}, "max_amount: inf is not a positive"),
        ({"exports": {"max_amount": "lots"}}, "max_amount: 'lots' is not a positive"),
        ({"exports": {"max_ammount": 1e9}}, "[exports]: unknown keys ['max_ammount']"),
    ],
)
def test_bad_configuration_is_named(change, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        settings_from({**CONFIG, **change}, env={})


def test_secrets_only_from_the_environment():
    s = Secrets.from_env({"SLACK_BOT_TOKEN": "xoxb-9", "SLACK_SIGNING_SECRET": "shh"})
    assert s.bot_token == "xoxb-9" and "shh" not in repr(s) and "xoxb-9" not in repr(s)


def test_access_rules():
    rep, manager = Member("U1", "rep", "Ann"), Member("U2", "manager", "Mo")
    deal = {"owner": "Ann", "manager": "Mo"}
    assert can_see(rep, deal) and can_see(manager, deal) and can_see(Member("U3", "leader"), deal)
    assert not can_see(rep, {"owner": "Bob", "manager": "Mo"})
    assert not can_see(manager, {"owner": "Ann", "manager": "Zed"})
    assert allowed_scope(manager, None) == Scope("manager", "Mo")
    assert isinstance(allowed_scope(manager, Scope("region", "West")), str)
    assert allowed_scope(Member("U3", "leader"), Scope("region", "West")) == Scope("region", "West")


def _frame(rows):
    return pd.DataFrame(rows, columns=["deal_id", "risk", "expected_close", "account"])


def test_news_finds_newly_at_risk_jumps_pushes_and_closed_deals():
    previous = _frame([("A", 40, "2025-03-01", "a"), ("B", 62, "2025-03-01", "b"),
                       ("C", 30, "2025-03-01", "c"), ("L", 70, "2025-03-01", "l"),
                       ("W", 20, "2025-03-01", "w")])  # fmt: skip
    now = _frame([("A", 65, "2025-03-01", "a"), ("B", 75, "2025-03-01", "b"),
                  ("C", 31, "2025-04-01", "c"), ("N", 80, "2025-03-09", "n")])  # fmt: skip
    closed = pd.DataFrame({"deal_id": ["L", "W", "X"], "status": ["lost", "won", "lost"],
                           "account": ["l", "w", "x"], "value": [1.0, 2.0, 3.0],
                           "close_date": ["2025-02-15"] * 3})  # fmt: skip
    n = news(now, previous, closed, level=60)
    assert list(n.newly_at_risk["deal_id"]) == ["A", "N"]  # crossed 60, or new and above it
    assert list(n.jumped["deal_id"]) == ["B"]  # +13, already at risk
    assert list(n.pushed["deal_id"]) == ["C"]
    assert list(n.lost["deal_id"]) == ["L"] and list(n.won["deal_id"]) == ["W"]  # X: not ours


def test_handled_deals_come_back_when_the_snooze_ends_or_risk_rises():
    scores = _frame([("S", 70, None, "s"), ("K", 75, None, "k"), ("R", 85, None, "r")])
    marks = pd.DataFrame({"deal_id": ["S", "K", "R"], "kind": ["snooze", "ack", "ack"],
                          "risk": [None, 70.0, 70.0], "until": ["2025-02-21", None, None],
                          "user_id": ["U1"] * 3})  # fmt: skip
    assert set(handled(scores, marks, "2025-02-14")) == {"S", "K"}  # R rose 15 since its ack
    assert set(handled(scores, marks, "2025-02-21")) == {"K"}  # the snooze is over


def test_forecast_text_parsing():
    assert parse_forecast("") == parse_forecast("   ")
    q = parse_forecast("next Melvin Marxen")
    assert (q.quarter, q.scope_text) == ("next", "Melvin Marxen")
    assert parse_forecast("2025q1 west").quarter == "2025-Q1"
    assert parse_forecast("q2").quarter == "Q2" and parse_forecast("West").quarter is None
    quarters = ["2025-Q1", "2025-Q2"]
    assert pick_quarter(None, quarters) == "2025-Q1" and pick_quarter("next", quarters) == "2025-Q2"
    assert pick_quarter("Q2", quarters) == "2025-Q2" and pick_quarter("2024-Q4", quarters) is None
    assert match_scope("WEST", ["West"], ["Mo"]) == Scope("region", "West")
    assert match_scope("mo", ["West"], ["Mo"]) == Scope("manager", "Mo")
    assert match_scope("Atlantis", ["West"], ["Mo"]) is None


def test_last_fire_and_missed_runs(db):
    ny = channel("C0NY", time="08:00", days="mon-fri", timezone="America/New_York",
                 grace_minutes=60)  # fmt: skip
    monday_9am_ny = datetime(2025, 2, 17, 14, 0, tzinfo=UTC)
    fire = last_fire(ny, monday_9am_ny)
    assert fire is not None and fire.astimezone(UTC) == datetime(2025, 2, 17, 13, 0, tzinfo=UTC)
    assert digest_date(ny, fire) == "2025-02-17"
    assert last_fire(ny, datetime(2025, 2, 17, 14, 1, tzinfo=UTC)) is None  # grace is over
    assert last_fire(ny, datetime(2025, 2, 15, 13, 30, tzinfo=UTC)) is None  # a Saturday
    assert missed(db, (ny,), monday_9am_ny) == [(ny, "2025-02-17")]
    from bot import ledger

    db.execute("INSERT INTO score_runs (run_id, as_of, created_at, deals) VALUES (1, '2025-02-14', 'x', 0)")  # fmt: skip
    assert ledger.claim_digest(db, "C0NY", "2025-02-17", 1, "test")
    assert not ledger.claim_digest(db, "C0NY", "2025-02-17", 1, "other")  # one claim only
    ledger.finish_digest(db, "C0NY", "2025-02-17", slack_ts="1.2")
    assert missed(db, (ny,), monday_9am_ny) == []


def test_the_scheduler_keeps_late_runs_and_coalesces():
    sched = start((channel("C0A", grace_minutes=90),), lambda c, d: None, lambda: datetime.now(UTC))
    try:
        (job,) = sched.get_jobs()
        assert job.id == "digest:C0A" and job.misfire_grace_time == 90 * 60
        assert job.coalesce and job.max_instances == 1
    finally:
        sched.shutdown(wait=False)


def test_last_fire_survives_the_autumn_clock_change():
    """01:30 happens twice in New York on 2026-11-01: stepping in wall-clock time used to loop
    for ever at start-up."""
    import threading

    ny = channel("C0NY", time="01:30", days="*", timezone="America/New_York", grace_minutes=120)
    result = []
    worker = threading.Thread(target=lambda: result.append(last_fire(ny, datetime(2026, 11, 1, 7, 0, tzinfo=UTC))), daemon=True)  # fmt: skip
    worker.start()
    worker.join(timeout=5)
    assert not worker.is_alive() and result[0] is not None
    assert result[0] <= datetime(2026, 11, 1, 7, 0, tzinfo=UTC)
    assert digest_date(ny, result[0]) == "2026-11-01"


def test_a_late_run_posts_the_day_it_was_due_for():
    from bot.scheduler import due_today, job_day

    late = channel("C0LATE", time="23:30", days="*", timezone="UTC", grace_minutes=120)
    assert job_day(late, datetime(2025, 2, 18, 0, 10, tzinfo=UTC)) == "2025-02-17"
    weekdays = channel("C0WD", time="08:00", days="mon-fri", timezone="UTC")
    assert due_today(weekdays, datetime(2025, 2, 17, 9, 0, tzinfo=UTC)) == "2025-02-17"
    assert due_today(weekdays, datetime(2025, 2, 17, 7, 0, tzinfo=UTC)) is None  # not yet
    assert due_today(weekdays, datetime(2025, 2, 15, 9, 0, tzinfo=UTC)) is None  # a Saturday


def test_settings_refuse_what_the_scheduler_would():
    for bad, message in (({"days": "sat-mon"}, "days 'sat-mon'"), ({"grace_minutes": 0}, "grace_minutes")):  # fmt: skip
        with pytest.raises(ConfigError, match=message):
            settings_from({"channels": [{"id": "C0A", **bad}]}, env={})


@pytest.mark.parametrize(
    "links, template",
    [
        (None, None),
        ({"deal_url": "https://crm.example.com/deals/{id}"}, "https://crm.example.com/deals/{id}"),
        ({"deal_url": "http://crm.local/x?id={id}&tab=1"}, "http://crm.local/x?id={id}&tab=1"),
        ({"salesforce": "https://acme.my.salesforce.com"},
         "https://acme.my.salesforce.com/lightning/r/Opportunity/{id}/view"),
        ({"salesforce": "https://acme.my.salesforce.com/"},  # the trailing slash tolerated
         "https://acme.my.salesforce.com/lightning/r/Opportunity/{id}/view"),
        ({"hubspot_portal": 1234567}, "https://app.hubspot.com/contacts/1234567/record/0-3/{id}"),
        ({"hubspot_portal": 7, "hubspot_site": "https://app-eu1.hubspot.com/"},
         "https://app-eu1.hubspot.com/contacts/7/record/0-3/{id}"),
    ],
)  # fmt: skip
def test_links_give_the_crms_deal_url_template(links, template):
    config = {**CONFIG, "links": links} if links is not None else CONFIG
    assert settings_from(config, env={}).deal_url == template


@pytest.mark.parametrize(
    "links, message",
    [
        ({"deal_url": "https://crm.example.com/deals/"}, "deal_url: .* has no {id}: put {id} once"),
        ({"deal_url": "https://x.example/{id}/{id}"}, "has {id} 2 times: put {id} once"),
        ({"deal_url": "ftp://x.example/{id}"}, "must start with https:// .or http://."),
        ({"deal_url": "crm.example.com/{id}"}, "must start with https://"),
        ({"deal_url": "https://x.example/{id}|evil"}, r"contains '\|', which would break a Slack link; percent-encode"),
        ({"deal_url": "https://x.example/{id}>"}, "contains '>'"),
        ({"deal_url": "https://x.example/ {id}"}, "contains a space"),
        ({"deal_url": "https://x.example/{org}/{id}"}, "{org} is not a placeholder revbot fills; only {id}"),
        ({"deal_url": 42}, "42 is not a URL: write one with {id}"),
        ({"deal_url": "https://x.example/{id}", "salesforce": "https://a.my.salesforce.com"},
         "exactly one of deal_url, salesforce or hubspot_portal .found deal_url and salesforce: keep one"),
        ({}, "found none of them; or delete the table"),
        ({"deal_link": "https://x.example/{id}"}, r"\[links\]: unknown keys \['deal_link'\]"),
        ({"salesforce": "http://acme.my.salesforce.com"}, r"\[links\] salesforce: .* is not an https:// address"),
        ({"salesforce": "https://acme.lightning.force.com/lightning/page/home"},
         "write the site only, without a path"),
        ({"hubspot_portal": "1234567"}, r"\[links\] hubspot_portal: '1234567' is not a HubSpot account id .a positive whole number, without quotes"),
        ({"hubspot_portal": "acme"}, "hubspot_portal: 'acme' is not a HubSpot account id"),
        ({"hubspot_portal": 0}, "hubspot_portal: 0 is not"),
        ({"hubspot_portal": True}, "hubspot_portal: True is not"),
        ({"hubspot_portal": 7, "hubspot_site": "app-eu1.hubspot.com"}, "hubspot_site: .* is not an https://"),
        ({"salesforce": "https://a.my.salesforce.com", "hubspot_site": "https://app-eu1.hubspot.com"},
         "hubspot_site goes with hubspot_portal"),
    ],
)  # fmt: skip
def test_bad_links_are_named_with_what_to_write(links, message):
    with pytest.raises(ConfigError, match=message.replace("{", r"\{").replace("}", r"\}")):
        settings_from({**CONFIG, "links": links}, env={})


def test_links_must_be_a_table():
    with pytest.raises(ConfigError, match=r"\[links\] is a table"):
        settings_from({**CONFIG, "links": "https://x.example/{id}"}, env={})
