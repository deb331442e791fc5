"""The Home tab and the deal modal over the loopback Slack: the real Bolt app served over HTTP,
its WebClient publishing to the fake; events and presses signed as Slack signs them."""

from __future__ import annotations

import json
import time

import pytest

from bot.home import HomeState, read_state
from bot.home_tabs import HomeTabs
from bot.listeners import (
    ACTION_DETAILS,
    ACTION_HOME_PAGE,
    ACTION_HOME_REGION,
    ACTION_WHY,
)
from bot.morning import run_channel
from tests.bot.slackenv import (
    LEADER,
    MANAGER,
    REP,
    STRANGER,
    action_body,
    channel,
    event_body,
    post,
    view_action_body,
)

DIGEST = channel("C0DIGEST", top=5)


def wait(check, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (found := check()) is not None:
            return found
        time.sleep(0.01)
    raise AssertionError("timed out")


def answered(served, method: str) -> int:
    """How many calls to `method` the fake has answered (a call is recorded on arrival)."""
    return len([c for c in served.slack.calls_to(method) if c.status])


def open_home(served, user: str, tab: str = "home") -> dict | None:
    """Open the Home tab as `user`; the view published for them (None for another tab)."""
    before = answered(served, "views.publish")
    event = {"type": "app_home_opened", "user": user, "channel": "D0001", "tab": tab,
             "event_ts": str(time.time())}  # fmt: skip
    reply = post(served.url, event_body(event), content_type="application/json")
    assert reply.status == 200
    if tab != "home":
        return None
    wait(lambda: True if answered(served, "views.publish") > before else None)
    (call,) = served.slack.calls_to("views.publish")[before:]
    assert call.ok, call.response
    return served.slack.home_tabs[user]


def press(served, user: str, view: dict, action: dict) -> dict:
    """Press something in `user`'s Home tab; the view published after it."""
    before = answered(served, "views.publish")
    assert post(served.url, view_action_body(action, user, view)).status == 200
    wait(lambda: True if answered(served, "views.publish") > before else None)
    return served.slack.home_tabs[user]


def listed(view: dict) -> list[str]:
    return [b["accessory"]["value"].split(":", 1)[1] for b in view["blocks"]
            if b.get("accessory", {}).get("action_id") == ACTION_DETAILS]  # fmt: skip


def by_id(served):
    return served.data["scores"].set_index("deal_id")


def test_each_member_sees_their_own_deals_and_a_stranger_is_told_why(served):
    who, rows = served.data["who"], by_id(served)
    rep = listed(open_home(served, REP))
    assert rep and set(rows.loc[rep, "owner"]) == {who["rep"]}
    team = listed(open_home(served, MANAGER))
    assert team and set(rows.loc[team, "manager"]) == {who["manager"]}
    everything = listed(open_home(served, LEADER))
    assert everything == served.data["scores"].sort_values("rank")["deal_id"].head(20).tolist()
    stranger = json.dumps(open_home(served, STRANGER))
    assert "not in it yet" in stranger and STRANGER in stranger and not listed(json.loads(stranger))
    assert open_home(served, LEADER, tab="messages") is None
    time.sleep(0.2)
    assert len(served.slack.calls_to("views.publish")) == 4  # the Messages tab publishes nothing


def test_a_filter_and_the_pager_republish_the_users_view(served):
    view = open_home(served, LEADER)
    region = next(e for b in view["blocks"] if b.get("block_id") == "home_filters"
                  for e in b["elements"] if e["action_id"] == ACTION_HOME_REGION)  # fmt: skip
    biggest = served.data["scores"]["region"].value_counts().index[0]
    option = next(o for o in region["options"] if o["value"] == biggest)
    picked = press(served, LEADER, view, {"action_id": ACTION_HOME_REGION, "type": "static_select",
                                          "block_id": "home_filters", "selected_option": option})  # fmt: skip
    rows = by_id(served)
    in_region = served.data["scores"]
    in_region = in_region[in_region["region"] == option["value"]].sort_values("rank")
    assert listed(picked) == in_region["deal_id"].head(20).tolist()
    assert read_state(picked["private_metadata"]).region == option["value"]
    assert len(in_region) > 20, "the region should fill more than a page"
    nxt = next(e for b in picked["blocks"] if b.get("block_id") == "home_pages" for e in b["elements"])  # fmt: skip
    second = press(served, LEADER, picked, nxt | {"block_id": "home_pages"})
    assert listed(second) == in_region["deal_id"].iloc[20:40].tolist()
    assert set(rows.loc[listed(second), "region"]) == {option["value"]}
    # a view whose state was tampered with: the default dashboard, not an error
    forged = dict(second, private_metadata='{"page": "x", "region": 7}')
    back = press(served, LEADER, forged, {"action_id": ACTION_HOME_PAGE, "value": "junk",
                                          "type": "button", "block_id": "home_pages"})  # fmt: skip
    assert read_state(back["private_metadata"]) == HomeState()


def test_details_opens_the_deal_modal_for_its_own_deals_only(served):
    view = open_home(served, REP)
    button = next(b["accessory"] for b in view["blocks"]
                  if b.get("accessory", {}).get("action_id") == ACTION_DETAILS)  # fmt: skip
    assert post(served.url, view_action_body(button | {"block_id": "x"}, REP, view)).status == 200
    modal = wait(lambda: served.slack.modals[-1] if served.slack.modals else None)
    deal_id = button["value"].split(":", 1)[1]
    assert modal["type"] == "modal" and deal_id in json.dumps(modal)
    assert "*Suggested next steps*" in json.dumps(modal)
    runs = len(served.services.reader.risk_history(deal_id))
    assert ("Risk `" if runs > 1 else "First scored in this run") in json.dumps(modal)
    # another team's deal, by a forged button: a modal saying no, and nothing about the deal
    scores = served.data["scores"]
    other = scores[scores["owner"] != served.data["who"]["rep"]]["deal_id"].iloc[0]
    forged = button | {"value": button["value"].split(":", 1)[0] + ":" + other}
    assert post(served.url, view_action_body(forged, REP, view)).status == 200
    wait(lambda: True if len(served.slack.modals) == 2 else None)
    said = json.dumps(served.slack.modals[-1])
    assert "not one you can see" in said and other not in said


@pytest.mark.bot(channels=[DIGEST])
def test_why_in_the_digest_opens_the_same_modal_or_answers_privately(served):
    assert run_channel(served.services, served.client, DIGEST, "2025-02-17").status == "posted"
    (call,) = served.slack.calls_to("chat.postMessage")
    message = served.slack.messages[(call.params["channel"], call.response["ts"])]
    button = next(e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
                  if e["action_id"] == ACTION_WHY)  # fmt: skip
    url = served.slack.response_url("why")
    assert post(served.url, action_body(ACTION_WHY, button["value"], LEADER, url, message)).status == 200  # fmt: skip
    modal = wait(lambda: served.slack.modals[-1] if served.slack.modals else None)
    assert button["value"].split(":", 1)[1] in json.dumps(modal)
    assert served.slack.calls_to("response_url") == []
    # the trigger expired (Slack gives 3 seconds): the same answer, privately, instead
    served.slack.fail("views.open", "expired_trigger_id")
    url = served.slack.response_url("why2")
    assert post(served.url, action_body(ACTION_WHY, button["value"], LEADER, url, message)).status == 200  # fmt: skip
    answer = served.slack.answer_at(url)
    assert answer["response_type"] == "ephemeral" and "*Suggested next steps*" in json.dumps(answer)
    assert len(served.slack.modals) == 1


def test_each_new_run_publishes_every_roster_members_tab_once(served):
    tabs = HomeTabs(served.services.reader, served.client)
    assert tabs.refresh_all() == 3
    assert set(served.slack.home_tabs) == {LEADER, MANAGER, REP}
    assert tabs.refresh_all() == 0  # the same run: nothing to publish again
    served.slack.fail("views.publish", "internal_error")  # a failure is logged, not raised
    tabs = HomeTabs(served.services.reader, served.client)
    assert tabs.refresh_all() == 2
