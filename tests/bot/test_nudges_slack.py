"""Nudges over the loopback Slack: the real Nudger and Bolt app, the real ledger in a copy of the
small pipeline's database (whose run saved its hygiene flags), direct messages through
conversations.open and chat.postMessage, the buttons pressed as Slack sends them."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime

from bot import nudge_ledger
from bot.listeners import ACTION_NUDGE_BUDGET, ACTION_NUDGE_NOT_USEFUL
from bot.nudge_send import Nudger
from bot.nudges import not_useful_rates
from bot.settings import NudgeConfig
from dataset import score_runs
from tests.bot.slackenv import LEADER, REP, post, view_action_body
from tests.bot.test_home_slack import open_home, press

NOON = datetime(2025, 2, 14, 12, 0, tzinfo=UTC)


def rep_flags(served):
    saved = served.services.reader.latest()
    flags = saved.flags()
    owner = saved.scores.set_index("deal_id")["owner"]
    return flags[flags["deal_id"].map(owner) == served.data["who"]["rep"]]


def dms(served) -> list:
    return [c for c in served.slack.calls_to("chat.postMessage") if c.ok]


def test_the_owner_gets_their_budget_worst_first_the_rest_in_one_line_and_never_twice(served):
    served.slack.users[REP] = {"tz": "Europe/Paris"}
    mine = rep_flags(served)
    deals = mine["deal_id"].nunique()
    assert deals > 2, "the fixture's rep should break rules on more deals than the budget"
    nudger = Nudger(served.services.reader, served.client, NudgeConfig(per_day=2))
    done = nudger.run(NOON)
    assert (done.sent, done.rolled, done.failed) == (1, 1, [])  # two messages: one deal, a line
    sent = dms(served)
    assert {c.params["channel"] for c in sent} == {f"D{REP}"}  # a DM, to the rep only
    named = [b["block_id"] for c in sent for b in c.params["blocks"] if b.get("block_id", "").startswith("nudge:")]  # fmt: skip
    assert len(named) == 1
    scores = served.services.reader.latest().scores.set_index("deal_id")
    by_risk = mine.assign(v=mine["deal_id"].map(scores["value_at_risk"]))
    worst = by_risk.groupby("deal_id")["v"].max().sort_values(ascending=False).index[0]
    assert worst in json.dumps(sent[0].params["blocks"])  # the most value at risk first
    assert f"{deals - 1} more deal" in sent[1].params["text"]  # the rest, in one line
    assert len(sent) == 2  # the budget: two messages
    # the next day: nothing new to say, and nothing is said twice
    served.slack.reset()
    again = nudger.run(NOON.replace(day=15))  # a new day: a new budget, yet nothing to say
    assert (again.sent, again.rolled) == (0, 0) and dms(served) == []
    told = nudge_ledger.told(served.services.reader.db())
    assert {(d, r) for d, r in zip(mine["deal_id"], mine["rule"], strict=True)} <= told


def test_nothing_at_night_there_nor_for_someone_who_opted_out(served):
    served.slack.users[REP] = {"tz": "America/Los_Angeles"}  # 04:00 there
    done = Nudger(served.services.reader, served.client).run(NOON)
    assert done.night == [REP] and dms(served) == []
    nudge_ledger.set_budget(served.services.reader.db(), REP, 0)
    served.slack.users[REP] = {"tz": "UTC"}
    done = Nudger(served.services.reader, served.client).run(NOON)
    assert done.sent == 0 and dms(served) == []


def test_a_refused_message_is_tried_again_later_and_sent_once(served):
    served.slack.users[REP] = {"tz": "UTC"}
    served.slack.fail("chat.postMessage", "channel_not_found", times=10)
    nudger = Nudger(served.services.reader, served.client)
    assert nudger.run(NOON).sent == 0
    assert nudge_ledger.told(served.services.reader.db()) == set()  # released: nothing was sent
    served.slack.reset()
    assert nudger.run(NOON.replace(hour=13)).sent == min(3, rep_flags(served)["deal_id"].nunique())


def test_not_useful_is_kept_with_its_rules_and_only_the_owner_may_answer(served):
    served.slack.users[REP] = {"tz": "UTC"}
    Nudger(served.services.reader, served.client).run(NOON)
    first = dms(served)[0]
    message = served.slack.messages[(first.params["channel"], first.response["ts"])]
    button = next(e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
                  if e["action_id"] == ACTION_NUDGE_NOT_USEFUL)  # fmt: skip
    payload = {
        "type": "block_actions", "user": {"id": LEADER}, "trigger_id": "1.2.3",
        "channel": {"id": first.params["channel"]}, "message": message,
        "response_url": served.slack.response_url("other"), "team": {"id": "T0001"},
        "container": {"type": "message", "message_ts": message["ts"]},
        "actions": [button | {"block_id": "x", "action_ts": str(time.time())}],
    }  # fmt: skip
    from urllib.parse import urlencode

    body = lambda p: urlencode({"payload": json.dumps(p)}).encode()  # noqa: E731
    assert post(served.url, body(payload)).status == 200
    assert "someone else" in served.slack.answer_at(payload["response_url"])["text"]
    payload |= {"user": {"id": REP}, "response_url": served.slack.response_url("mine")}
    assert post(served.url, body(payload)).status == 200
    (update,) = served.slack.wait_for("chat.update")
    assert "Marked not useful" in json.dumps(update.params["blocks"])
    assert not [b for b in update.params["blocks"] if b["type"] == "actions"]  # buttons gone
    rates = not_useful_rates(nudge_ledger.history(served.services.reader.db())).set_index("rule")
    nudge = nudge_ledger.nudge(served.services.reader.db(), int(button["value"]))
    for rule in json.loads(nudge["rules"]):
        assert rates.loc[rule, "not_useful"] >= 1
    assert rates["not_useful"].sum() == len(json.loads(nudge["rules"]))


def test_each_person_sets_their_budget_in_the_home_tab(served):
    view = open_home(served, REP)
    menu = next(b["accessory"] for b in view["blocks"] if b.get("block_id") == "home_nudges")
    assert menu["initial_option"]["value"] == "3"  # the configured default
    off = next(o for o in menu["options"] if o["value"] == "0")
    after = press(served, REP, view, {"action_id": ACTION_NUDGE_BUDGET, "type": "static_select",
                                      "block_id": "home_nudges", "selected_option": off})  # fmt: skip
    menu = next(b["accessory"] for b in after["blocks"] if b.get("block_id") == "home_nudges")
    assert menu["initial_option"]["value"] == "0"
    assert nudge_ledger.budget(served.services.reader.db(), REP, 3) == 0
    served.slack.users[REP] = {"tz": "UTC"}
    assert Nudger(served.services.reader, served.client).run(NOON).sent == 0
    # and a forged choice changes nothing
    forged = {"text": {"type": "plain_text", "text": "x"}, "value": "999"}
    assert post(served.url, view_action_body({"action_id": ACTION_NUDGE_BUDGET,
                "type": "static_select", "selected_option": forged}, REP, after)).status == 200  # fmt: skip
    time.sleep(0.3)
    assert nudge_ledger.budget(served.services.reader.db(), REP, 3) == 0


def test_without_a_time_zone_nothing_is_sent_and_a_refused_dm_claims_nothing(served):
    nudger = Nudger(served.services.reader, served.client)
    done = nudger.run(NOON)  # users.info: user_not_found (an app without users:read is alike)
    assert done.no_zone == ["U0REP"] and done.sent == 0 and dms(served) == []
    served.slack.users[REP] = {"tz": "UTC"}
    served.slack.fail("conversations.open", "user_disabled")
    nudger = Nudger(served.services.reader, served.client)
    done = nudger.run(NOON)
    assert done.sent == 0 and len(done.failed) == 1
    db = served.services.reader.db()
    assert nudge_ledger.told(db) == set() and nudge_ledger.sent_on(db, REP, "2025-02-14") == 0
    assert nudger.run(NOON.replace(hour=13)).sent == min(3, rep_flags(served)["deal_id"].nunique())


def _next_run(served, first: int, day: int, risks: dict[str, float]) -> None:
    """A run of the fixture's deals on 2025-02-`day`, these deals at these risks, the others at
    10 (below any threshold), no hygiene flags: only risk crossings are news."""
    scores = served.services.reader.run_scores(first).set_index("deal_id")
    scores["risk"] = scores.index.map(lambda d: risks.get(d, 10.0))
    score_runs.write_score_run(served.services.reader.db(), as_of=date(2025, 2, day),
                               scores=scores, model_hash="m", confidence="high", base_rate=0.5)  # fmt: skip


def _theirs(served, first: int, n: int) -> list[str]:
    scores = served.services.reader.run_scores(first)
    return scores.loc[scores["owner"] == served.data["who"]["rep"], "deal_id"].head(n).tolist()


def test_a_crossing_waits_for_its_owner_s_budget_whatever_runs_come_between(served):
    served.slack.users[REP] = {"tz": "UTC"}
    first = served.services.reader.latest().run_id
    theirs = _theirs(served, first, 3)
    nudger = Nudger(served.services.reader, served.client, NudgeConfig(per_day=1))
    _next_run(served, first, 15, {})
    assert nudger.run(NOON.replace(day=15)).sent == 0  # everything below the threshold
    _next_run(served, first, 16, dict.fromkeys(theirs, 80.0))  # three of theirs cross
    assert nudger.run(NOON.replace(day=16)).sent == 1  # the budget: one a day
    _next_run(served, first, 17, dict.fromkeys(theirs, 80.0))  # still at risk: no new crossing
    assert nudger.run(NOON.replace(day=17)).sent == 1  # yet the second waited for today
    assert nudger.run(NOON.replace(day=18)).sent == 1
    assert nudger.run(NOON.replace(day=19)).sent == 0  # all three told, once each
    sent = [json.dumps(c.params["blocks"]) for c in dms(served)]
    assert len(sent) == 3 and all(
        "risk rose to 80 (of 100), from 10 on 2025-02-15" in s for s in sent
    )
    assert {(d, "risk") for d in theirs} <= nudge_ledger.told(served.services.reader.db())


def test_a_crossing_in_a_run_no_pass_saw_is_still_news(served):
    served.slack.users[REP] = {"tz": "UTC"}
    first = served.services.reader.latest().run_id
    (deal,) = _theirs(served, first, 1)
    nudger = Nudger(served.services.reader, served.client)
    _next_run(served, first, 15, {})
    assert nudger.run(NOON.replace(day=15)).sent == 0
    _next_run(served, first, 16, {deal: 75.0})  # the bot was down all that day
    _next_run(served, first, 17, {deal: 75.0})
    assert nudger.run(NOON.replace(day=17)).sent == 1
    (message,) = dms(served)
    assert "risk rose to 75 (of 100), from 10 on 2025-02-15" in json.dumps(message.params["blocks"])
    # a kept crossing of a deal that closed before its owner could hear of it is let go
    db = served.services.reader.db()
    nudge_ledger.set_budget(db, REP, 0)  # they hear of nothing for now
    (other,) = [d for d in _theirs(served, first, 2) if d != deal]
    _next_run(served, first, 18, {other: 75.0})
    nudger.run(NOON.replace(day=18))
    assert set(nudge_ledger.crossings(db)["deal_id"]) == {other}
    scores = served.services.reader.run_scores(first).set_index("deal_id").drop(index=other)
    score_runs.write_score_run(db, as_of=date(2025, 2, 19), scores=scores.assign(risk=10.0),
                               model_hash="m", confidence="high", base_rate=0.5)  # fmt: skip
    nudger.run(NOON.replace(day=19))
    assert nudge_ledger.crossings(db).empty
