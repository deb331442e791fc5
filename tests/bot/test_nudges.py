"""Personal nudges, pure: what is news to whom, the budget and the rolled-up rest, the night in
the person's own time zone, the message's words against its numbers, and the settings."""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime

import pandas as pd
import pytest

from bot.config import ConfigError
from bot.nudges import (
    RISK_RULE,
    candidates,
    crossed,
    not_useful_rates,
    nudge_message,
    owners_map,
    plan,
    quiet_now,
    rolled_message,
)
from bot.settings import Member, nudges_of
from tests.bot.hostile import assert_inert

OWNERS = owners_map({"U0ANN": Member("U0ANN", "rep", "Ann Lee"),
                     "U0BO": Member("U0BO", "rep", "Bo Diaz")})  # fmt: skip
NO_FLAGS = pd.DataFrame(columns=["deal_id", "rule", "detail"])


DAY = "2025-02-13"  # the day of the run compared with


def news(now: pd.DataFrame, before: pd.DataFrame | None, flags: pd.DataFrame, owners, risk: float) -> pd.DataFrame:  # fmt: skip
    """The candidates of `now` with the crossings against `before` kept as the sender keeps them."""
    kept = None if before is None else crossed(now, before, owners, risk).assign(since=DAY)
    return candidates(now, kept, flags, owners, risk)


def run(risks: dict[str, float], owner: dict[str, str] | None = None) -> pd.DataFrame:
    ids = list(risks)
    return pd.DataFrame({
        "deal_id": ids, "risk": [risks[i] for i in ids],
        "owner": [(owner or {}).get(i, "Ann Lee") for i in ids],
        "value_at_risk": [1000.0 * (k + 1) for k in range(len(ids))],
        "account": [f"Acct {i}" for i in ids], "product": "GTX", "value": 5000.0,
        "win_prob": 0.3, "drivers": None,
    })  # fmt: skip


def test_only_crossings_since_the_previous_run_are_news_and_only_for_the_roster():
    now = run({"A": 65, "B": 75, "C": 61, "D": 40, "E": 90}, owner={"E": "Stranger"})
    before = run({"A": 50, "B": 70, "D": 30, "E": 10})  # C is new
    found = news(now, before, NO_FLAGS, OWNERS, 60)
    assert set(found["deal_id"]) == {"A", "C"} and set(found["rule"]) == {RISK_RULE}
    assert set(found["user_id"]) == {"U0ANN"}
    assert news(now, None, NO_FLAGS, OWNERS, 60).empty  # no previous run: nothing is new


def test_the_risk_sentence_is_true_of_its_numbers():
    rng = random.Random(3)
    for _ in range(300):
        level = rng.randrange(20, 90)
        ids = [f"D{i}" for i in range(20)]

        def near(lv: float = level) -> float:  # half of them within a point of the level
            return lv + rng.uniform(-1, 1) if rng.random() < 0.5 else rng.uniform(0, 100)

        now = run({i: near() for i in ids})
        before = run({i: near() for i in ids if rng.random() < 0.8})
        found = news(now, before, NO_FLAGS, OWNERS, level)
        for r in found.itertuples():
            m = re.fullmatch(rf"risk rose to ([\d.]+) \(of 100\), from ([\d.]+) on {DAY}", r.detail)  # fmt: skip
            if m:
                assert float(m[1]) > float(m[2]), r.detail  # "rose", as written
                assert abs(float(m[1]) - now.set_index("deal_id").at[r.deal_id, "risk"]) <= 0.5
            else:
                assert r.detail.startswith(f"new in the pipeline since {DAY}, at risk")
                assert r.deal_id not in set(before["deal_id"])


def test_hygiene_flags_reach_the_roster_owner_only():
    now = run({"A": 10, "B": 10}, owner={"B": "Stranger"})
    flags = pd.DataFrame({"deal_id": ["A", "B"], "rule": ["no_activity"] * 2,
                          "detail": ["no activity for 20 days"] * 2})  # fmt: skip
    found = news(now, now, flags, OWNERS, 60)
    assert found[["deal_id", "rule", "user_id"]].values.tolist() == [["A", "no_activity", "U0ANN"]]


def _found(n: int) -> pd.DataFrame:
    now = run({f"D{i}": 70.0 for i in range(n)})
    flags = pd.DataFrame({"deal_id": now["deal_id"], "rule": "no_activity", "detail": "quiet"})
    return news(now, run({f"D{i}": 10.0 for i in range(n)}), flags, OWNERS, 60)


def test_the_budget_takes_the_most_value_at_risk_first_and_rolls_up_the_rest():
    found = _found(6)  # six deals, two reasons each (risk and no activity)
    p = plan(found, "U0ANN", set(), set(), 3)  # three messages: two deals and the rest's line
    assert [d["deal_id"].iloc[0] for d in p.deals] == ["D5", "D4"]  # value at risk
    assert all(set(d["rule"]) == {RISK_RULE, "no_activity"} for d in p.deals)  # one message a deal
    assert sorted(set(p.rolled["deal_id"])) == ["D0", "D1", "D2", "D3"]
    told = {("D5", RISK_RULE), ("D5", "no_activity"), ("D4", RISK_RULE)}
    again = plan(found, "U0ANN", told, {"D3"}, 3)
    assert [d["deal_id"].iloc[0] for d in again.deals] == ["D4", "D2"]
    assert again.deals[0]["rule"].tolist() == ["no_activity"]  # what was not told yet
    one = plan(found, "U0ANN", set(), set(), 1)  # a budget of one: the worst deal, no line
    assert [d["deal_id"].iloc[0] for d in one.deals] == ["D5"] and one.rolled.empty
    few = plan(_found(2), "U0ANN", set(), set(), 3)  # room for every deal: no line
    assert len(few.deals) == 2 and few.rolled.empty
    assert plan(found, "U0ANN", set(), set(), 0) is None  # no budget left today: it waits
    assert plan(found, "U0BO", set(), set(), 3) is None  # nothing of theirs


def test_night_is_the_persons_own():
    quiet = ("20:00", "08:00")
    at = lambda h: datetime(2025, 2, 14, h, 30, tzinfo=UTC)  # noqa: E731
    assert quiet_now(at(5), "America/Los_Angeles", quiet)  # 21:30 there
    assert not quiet_now(at(17), "America/Los_Angeles", quiet)  # 09:30 there
    assert not quiet_now(at(12), "Asia/Tokyo", ("01:00", "06:00"))  # 21:30: not in 01-06
    assert quiet_now(at(18), "Asia/Tokyo", ("01:00", "06:00"))  # 03:30 there
    assert quiet_now(at(22), None, quiet) and quiet_now(at(22), "Not/AZone", quiet)  # UTC


def test_messages_are_inert_and_name_every_reason():
    hostile = "<!channel> *Acme* <http://evil.example|x>"
    deal = {"deal_id": "D<1>", "account": hostile, "product": "<@U0BOSS>", "value": 4500.0,
            "win_prob": 0.25, "risk": 71.0, "drivers": None}  # fmt: skip
    rules = pd.DataFrame({"deal_id": ["D<1>"] * 2, "rule": [RISK_RULE, "stage_too_long"],
                          "detail": ["risk rose to 71 (of 100), from 40 at the previous run",
                                     "in <!here> Negotiation for 61 days"]})  # fmt: skip
    message = nudge_message(7, deal, rules)
    assert_inert(message, hostile + " <!here> <@U0BOSS>")
    text = json.dumps(message)
    assert "risk rose to 71" in text and "Negotiation for 61 days" in text
    values = {
        e["value"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
    }
    assert values == {"7"}
    rolled = rolled_message(rules.assign(deal_id="D<1>"), pd.DataFrame(
        {"deal_id": ["D<1>"], "account": [hostile]}))  # fmt: skip
    assert_inert(rolled, hostile)


def test_not_useful_rates_add_up():
    history = pd.DataFrame({"rule": ["a", "a", "a", "b"], "feedback": ["not_useful", None, "done", None]})  # fmt: skip
    rates = not_useful_rates(history).set_index("rule")
    assert rates.loc["a", "sent"] == 3 and rates.loc["a", "not_useful"] == 1
    assert rates.loc["a", "rate"] == pytest.approx(1 / 3) and rates.loc["b", "rate"] == 0


@pytest.mark.parametrize("raw, message", [
    ({"per_day": 0}, "per_day"), ({"per_day": "3"}, "per_day"), ({"risk": 0}, "risk"),
    ({"quiet_from": "8pm"}, "HH:MM"), ({"quiet_from": "08:00", "quiet_until": "08:00"}, "same time"),
    ({"enabled": "yes"}, "true or false"), ({"budget": 3}, "unknown keys"),
])  # fmt: skip
def test_bad_nudge_settings_say_what_to_write(raw, message):
    with pytest.raises(ConfigError, match=message):
        nudges_of({"nudges": raw})


def test_nudge_settings():
    c = nudges_of({"nudges": {"per_day": 5, "quiet_from": "19:00", "quiet_until": "07:30"}})
    assert (c.per_day, c.quiet, c.risk, c.enabled) == (5, ("19:00", "07:30"), 60.0, True)


def test_a_nudge_goes_only_to_someone_who_may_see_the_deal():
    deal = run({"X1": 70}, owner={"X1": "Pat Kim"}).assign(manager="Lee Boss")
    before = run({"X1": 10})
    manager = {"U0MGR": Member("U0MGR", "manager", "Pat Kim")}  # another team's manager
    assert news(deal, before, NO_FLAGS, owners_map(manager), 60).empty
    both = manager | {"U0REP": Member("U0REP", "rep", "Pat Kim")}
    found = news(deal, before, NO_FLAGS, owners_map(both), 60)
    assert found["user_id"].tolist() == ["U0REP"]
    coach = {
        "U0PAT": Member("U0PAT", "manager", "Pat Kim")
    }  # a manager owning their own team's deal
    own = deal.assign(manager="Pat Kim")
    assert news(own, before, NO_FLAGS, owners_map(coach), 60)["user_id"].tolist() == ["U0PAT"]


def test_a_kept_crossing_is_news_while_the_deal_stays_at_risk():
    kept = pd.DataFrame({"deal_id": ["A", "B", "C"], "from_risk": [40.0, 55.0, None],
                         "since": "2025-02-10"})  # fmt: skip
    now = run({"A": 72, "B": 50, "C": 65})  # B fell back below the threshold since
    found = candidates(now, kept, NO_FLAGS, OWNERS, 60).set_index("deal_id")["detail"]
    assert found.to_dict() == {
        "A": "risk rose to 72 (of 100), from 40 on 2025-02-10",
        "C": "new in the pipeline since 2025-02-10, at risk 65 (of 100)",
    }
    # the threshold lowered since: a deal now above it but below its kept risk did not "rise"
    lowered = candidates(
        run({"A": 38}), kept.assign(from_risk=[40.0, 55.0, 20.0]), NO_FLAGS, OWNERS, 30
    )
    assert lowered.empty
