"""Hostile CRM text end to end: what the loopback Slack actually received from the digest, the
"Why?" button, `/deal` and `/forecast` (scoped by a region and a manager named with every trick,
`$x^{$` included, which matplotlib would read as math) links, mentions and formats nothing."""

from __future__ import annotations

import pytest

from bot.morning import run_channel
from tests.bot.hostile import assert_inert, live
from tests.bot.slackenv import (
    HOSTILE_ACCOUNT,
    HOSTILE_ID,
    HOSTILE_MANAGER,
    HOSTILE_OWNER,
    HOSTILE_REGION,
    LEADER,
    MANAGER,
    REP,
    action_body,
    channel,
    command_body,
    post,
)
from tests.bot.test_commands import ask

EVERYTHING = " ".join([HOSTILE_ACCOUNT, HOSTILE_OWNER, HOSTILE_REGION, HOSTILE_MANAGER])
OURS = (REP, MANAGER)  # the roster's members: a deal line may @-mention them (bot.mentions)
BY_REGION = channel("C0HREGION", scope=f"region:{HOSTILE_REGION}")
BY_MANAGER = channel("C0HMANAGER", scope=f"manager:{HOSTILE_MANAGER}")


@pytest.mark.bot(channels=[BY_REGION, BY_MANAGER])
def test_digest_and_why_button_on_hostile_names(served):
    for ch in (BY_REGION, BY_MANAGER):
        assert run_channel(served.services, served.client, ch, "2025-02-17").status == "posted"  # fmt: skip
    posts = [c for c in served.slack.calls_to("chat.postMessage") if c.ok]
    assert {c.params["channel"] for c in posts} == {"C0HREGION", "C0HMANAGER"}
    for call in posts:
        message = {"text": call.params["text"], "blocks": call.params["blocks"]}
        assert HOSTILE_ID in str(message)  # the hostile deal is listed, not dropped
        assert_inert(message, EVERYTHING)
    ts = posts[0].response["ts"]
    stored = served.slack.messages[(posts[0].params["channel"], ts)]
    button = next(e for b in stored["blocks"] if b["type"] == "actions" for e in b["elements"]
                  if e["action_id"] == "revbot_why" and e["value"].endswith(HOSTILE_ID))  # fmt: skip
    url = served.slack.response_url("why")
    body = action_body("revbot_why", button["value"], LEADER, url, stored, channel=posts[0].params["channel"])  # fmt: skip
    assert post(served.url, body).status == 200
    modal = served.slack.wait_for("views.open")[0].params["view"]
    assert "*Suggested next steps*" in str(modal["blocks"])
    assert_inert(modal, EVERYTHING)


def test_deal_reply_on_hostile_names(served):
    _, answer = ask(served, "/deal", HOSTILE_ID)
    assert "*Win probability*" in str(answer["blocks"])
    assert_inert(answer, EVERYTHING)
    _, answer = ask(served, "/deal", "www.evil.example")  # not found: the query is quoted back
    assert "I found no open deal" in answer["text"]
    assert_inert(answer, EVERYTHING + " www.evil.example")


@pytest.mark.parametrize("scope", [HOSTILE_REGION, HOSTILE_MANAGER])
def test_forecast_scoped_by_a_hostile_name(served, scope):
    url = served.slack.response_url("fc")
    reply = post(served.url, command_body("/forecast", scope, LEADER, url))
    assert reply.status == 200
    done = served.slack.wait_for("files.completeUploadExternal", timeout=20)[0]
    (png,) = served.slack.uploads.values()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "*Forecast for " in done.params["initial_comment"]
    assert_inert({"initial_comment": done.params["initial_comment"]}, EVERYTHING)
    (title,) = [f["title"] for f in done.params["files"]]  # plain text, not mrkdwn
    assert scope.split()[0] in title  # the name is there, readable
    assert [w for w, _ in live(title) if w not in ("angle bracket", "quote")] == [], title
    assert served.slack.calls_to("response_url") == []  # no "something went wrong"


def test_home_tab_and_its_modal_on_hostile_names(served):
    from bot.home import option_value
    from bot.listeners import ACTION_DETAILS, ACTION_HOME_REGION
    from tests.bot.slackenv import view_action_body
    from tests.bot.test_home_slack import open_home, press

    view = open_home(served, LEADER)
    assert_inert(view, EVERYTHING, OURS)
    option = {"text": {"type": "plain_text", "text": "x"}, "value": option_value(HOSTILE_REGION)}
    picked = press(served, LEADER, view, {"action_id": ACTION_HOME_REGION, "type": "static_select",
                                          "block_id": "home_filters", "selected_option": option})  # fmt: skip
    assert HOSTILE_ID in str(picked)  # the hostile deal is listed, in its region
    assert_inert(picked, EVERYTHING)
    button = next(b["accessory"] for b in picked["blocks"]
                  if b.get("accessory", {}).get("value", "").endswith(HOSTILE_ID))  # fmt: skip
    assert button["action_id"] == ACTION_DETAILS
    assert post(served.url, view_action_body(button, LEADER, picked)).status == 200
    modal = served.slack.wait_for("views.open")[0].params["view"]
    assert HOSTILE_ID in str(modal)
    assert_inert(modal, EVERYTHING)
