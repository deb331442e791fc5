"""/deal and /forecast end to end: signed HTTP requests to the served app, answers read back
from the loopback fake Slack (response_url posts, the three-step upload, DMs)."""

from __future__ import annotations

import json
import time

import pytest

from bot.blocks import check_limits
from dataset.money import chance
from tests.bot.slackenv import (
    HOSTILE_ACCOUNT,
    HOSTILE_ID,
    LEADER,
    MANAGER,
    REP,
    STRANGER,
    command_body,
    post,
)


def ask(served, command: str, text: str, user: str = LEADER, channel: str = "C0SALES"):
    """Send a slash command; return (the ack's HTTP reply, the response_url post)."""
    url = served.slack.response_url("cmd")
    reply = post(served.url, command_body(command, text, user, url, channel))
    assert reply.status == 200, reply
    path = "/" + url.split("/", 3)[3]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        answers = [c for c in served.slack.calls_to("response_url") if c.path == path and c.ok]
        if answers:
            return reply, answers[0].params
        time.sleep(0.01)
    raise AssertionError(f"no answer at {path}")


def deal_text(params: dict) -> str:
    return json.dumps(params["blocks"], ensure_ascii=False)


def test_deal_by_id_answers_privately_with_the_runs_numbers(served):
    deal = served.data["scores"].iloc[0]
    reply, answer = ask(served, "/deal", deal["deal_id"].lower())
    assert reply.body == ""  # acked at once, the answer follows on response_url
    assert answer["response_type"] == "ephemeral"
    text = deal_text(answer)
    assert f"*Win probability*\\n{chance(deal['win_prob'])}" in text
    assert f"*Risk*\\n{deal['risk']:.0f} / 100" in text
    assert "*Why*" in text and "*Suggested next steps*" in text
    assert "first scored in this run" in text  # risk history: one run so far
    assert check_limits({"text": answer["text"], "blocks": answer["blocks"]}) == []


def test_deal_share_posts_in_channel(served):
    deal = served.data["scores"].iloc[1]
    _, answer = ask(served, "/deal", f"{deal['deal_id']} share")
    assert answer["response_type"] == "in_channel"


def test_deal_beyond_the_explained_top_says_so_with_its_numbers(served):
    """A reader never computes a reason: a deal the refresh did not explain (a run with a small
    `explain_top`) is answered from its saved scores, saying why there are no reasons."""
    from dataset import score_runs

    db = served.services.reader.db()
    run = score_runs.latest_run(db)["run_id"]
    deal = served.data["scores"].iloc[2]
    db.execute("UPDATE deal_scores SET drivers = NULL, actions = NULL WHERE run_id = ? AND "
               "deal_id = ?", [run, deal["deal_id"]])  # fmt: skip
    db.conn.commit()
    _, answer = ask(served, "/deal", deal["deal_id"])
    text = deal_text(answer)
    assert f"*Risk*\\n{deal['risk']:.0f} / 100" in text and "risk +" not in text
    assert f"this one ranks #{int(deal['rank']):,}, below them" in text


def test_an_account_with_several_deals_lists_them(served):
    scores = served.data["scores"]
    counts = scores["account"].value_counts()
    account = counts.index[0]
    assert counts.iloc[0] > 1
    _, answer = ask(served, "/deal", account.upper())
    text = answer["text"]
    assert f"{counts.iloc[0]} open deals match" in text
    for deal_id in scores.loc[scores["account"] == account, "deal_id"]:
        assert deal_id in text


def test_an_account_with_one_deal_answers_with_the_deal(served):
    scores = served.data["scores"]
    counts = scores["account"].value_counts()
    account = counts.index[counts == 1][0]
    _, answer = ask(served, "/deal", account)
    assert "*Win probability*" in deal_text(answer)


def test_unknown_id_suggests_the_closest(served):
    deal_id = served.data["scores"].iloc[0]["deal_id"]
    typo = deal_id[:-1] + ("X" if deal_id[-1] != "X" else "Y")
    _, answer = ask(served, "/deal", typo)
    assert "I found no open deal" in answer["text"] and f"`{deal_id}`" in answer["text"]
    assert answer["response_type"] == "ephemeral"


def test_empty_text_gives_usage(served):
    _, answer = ask(served, "/deal", "   ")
    assert answer["text"].startswith("*Usage:* `/deal &lt;deal id or account name&gt;`")


def test_a_closed_deal_says_so(served):
    from dataset import database

    lost = next(iter(database.read_frame(served.services.reader.db(), "SELECT deal_id FROM deals WHERE status = 'lost' LIMIT 1")["deal_id"]))  # fmt: skip
    _, answer = ask(served, "/deal", lost)
    assert f"Deal `{lost}`" in answer["text"] and "was lost on" in answer["text"]


def test_someone_not_in_the_roster_is_refused(served):
    deal = served.data["scores"].iloc[0]
    _, answer = ask(served, "/deal", deal["deal_id"], user=STRANGER)
    assert "not in it yet" in answer["text"] and STRANGER in answer["text"]
    assert "Win probability" not in answer["text"]
    _, answer = ask(served, "/forecast", "", user=STRANGER)
    assert "not in it yet" in answer["text"]
    assert served.slack.calls_to("files.completeUploadExternal") == []


def test_reps_see_their_deals_only_and_managers_their_team(served):
    scores, who = served.data["scores"], served.data["who"]
    own = scores[scores["owner"] == who["rep"]].iloc[0]["deal_id"]
    other = scores[(scores["owner"] != who["rep"]) & (scores["manager"] == who["manager"])]
    _, answer = ask(served, "/deal", own, user=REP)
    assert "*Win probability*" in deal_text(answer)
    _, answer = ask(served, "/deal", other.iloc[0]["deal_id"], user=REP)
    assert answer["text"] == f"That deal is outside what you can see ({who['rep']}'s deals)."
    _, answer = ask(served, "/deal", other.iloc[0]["deal_id"], user=MANAGER)
    assert "*Win probability*" in deal_text(answer)
    _, answer = ask(served, "/deal", own, user=MANAGER)  # the rep is in another team
    assert "outside what you can see" in answer["text"]


@pytest.mark.bot(roster=False)
def test_without_a_roster_everyone_may_ask(served):
    _, answer = ask(served, "/deal", served.data["scores"].iloc[0]["deal_id"], user=STRANGER)
    assert "*Win probability*" in deal_text(answer)


def test_hostile_crm_text_is_inert_in_the_reply(served):
    _, answer = ask(served, "/deal", HOSTILE_ID)
    dumped = json.dumps(answer)
    assert "&lt;!channel&gt;" in dumped and "&lt;!here&gt; Eve" in dumped
    assert "<!channel>" not in dumped and "<!here>" not in dumped and "<http" not in dumped
    _, answer = ask(served, "/deal", "evil.example")  # found by a piece of the account name
    assert HOSTILE_ACCOUNT not in json.dumps(answer)


def _upload(served, count: int = 1):
    completes = served.slack.wait_for("files.completeUploadExternal", count, timeout=15)
    return completes[-1]


def test_forecast_acks_then_uploads_the_chart_to_the_channel(served):
    url = served.slack.response_url("fc")
    reply = post(served.url, command_body("/forecast", "", LEADER, url, channel="C0SALES"))
    assert reply.status == 200
    assert reply.body == "Working on the forecast; the chart follows in a moment."
    done = _upload(served)
    assert done.params["channel_id"] == "C0SALES"
    comment = done.params["initial_comment"]
    assert "*Forecast for " in comment and "all teams" in comment and "P50 *" in comment
    (png,) = served.slack.uploads.values()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    assert served.slack.calls_to("conversations.open") == []
    time.sleep(0.2)
    assert served.slack.calls_to("response_url") == []  # nothing more to say


def test_forecast_falls_back_to_a_dm_when_not_in_the_channel(served):
    served.slack.not_member("C0PRIVATE")
    _, answer = ask(served, "/forecast", "next", channel="C0PRIVATE")
    assert "direct message" in answer["text"] and "/invite @revbot" in answer["text"]
    done = _upload(served)
    assert done.params["channel_id"] == f"D{LEADER}"
    assert served.slack.wait_for("conversations.open")[0].params["users"] == LEADER
    failed = [c for c in served.slack.calls_to("files.completeUploadExternal") if not c.ok]
    assert [c.error for c in failed] == ["not_in_channel"]


def test_forecast_for_a_region_and_a_quarter(served):
    region = served.data["who"]["region"]
    url = served.slack.response_url("fc")
    post(served.url, command_body("/forecast", f"next {region.lower()}", LEADER, url))
    comment = _upload(served).params["initial_comment"]
    assert f"{region} region" in comment
    table = (
        served.services.reader.latest()
        .forecast(__import__("bot.settings").settings.Scope("region", region))
        .table
    )  # noqa: E501
    quarters = table.loc[table["kind"] == "quarter", "period"].tolist()
    assert f"*Forecast for {quarters[1]}," in comment


def test_forecast_bad_input_gets_help(served):
    _, answer = ask(served, "/forecast", "Atlantis")
    assert "I don't know a region or manager called *Atlantis*" in answer["text"]
    assert "*Usage:* `/forecast" in answer["text"]
    _, answer = ask(served, "/forecast", "1999-Q1")
    assert "not 1999-Q1" in answer["text"]
    assert served.slack.calls_to("files.completeUploadExternal") == []


def test_a_manager_cannot_forecast_another_region(served):
    scores, who = served.data["scores"], served.data["who"]
    other = scores.loc[scores["region"] != who["region"], "region"].dropna().iloc[0]
    _, answer = ask(served, "/forecast", other, user=MANAGER)
    assert answer["text"].startswith(f"You can see {who['manager']}'s team, so I can't show {other} region")  # fmt: skip


def test_bad_signature_and_stale_timestamp_get_401(served):
    url = served.slack.response_url("x")
    body = command_body("/deal", "anything", LEADER, url)
    assert post(served.url, body, secret="not-the-secret").status == 401
    assert post(served.url, body, ts=str(int(time.time()) - 600)).status == 401
    time.sleep(0.3)
    assert served.slack.calls_to("response_url") == []


def test_healthz(served):
    import urllib.request

    with urllib.request.urlopen(served.root + "/healthz", timeout=5) as r:
        body = json.loads(r.read())
    assert r.status == 200 and body["ok"] and body["latest_run"]["run_id"] == 1


def test_suggestions_and_account_search_stay_within_what_you_can_see(served):
    scores, who = served.data["scores"], served.data["who"]
    theirs = scores[(scores["owner"] != who["rep"]) & scores["account"].notna()].iloc[0]
    typo = theirs["account"][:-1] + "x"
    _, answer = ask(served, "/deal", typo, user=REP)
    assert theirs["account"] not in answer["text"] and "I found no open deal" in answer["text"]
    _, answer = ask(served, "/deal", typo, user=LEADER)
    assert theirs["account"] in answer["text"]  # a leader gets the suggestion


def test_a_manager_sees_a_closed_deal_of_the_team(served):
    from dataset import database

    who = served.data["who"]
    lost = database.read_frame(
        served.services.reader.db(),
        "SELECT d.deal_id FROM deals d JOIN sales_teams t ON t.sales_agent = d.owner "
        "WHERE d.status = 'lost' AND t.manager = ? LIMIT 1",
        [who["manager"]],
    )["deal_id"].iloc[0]
    _, answer = ask(served, "/deal", lost, user=MANAGER)
    assert "was lost on" in answer["text"]
    _, answer = ask(served, "/deal", lost, user=REP)
    assert "outside what you can see" in answer["text"]
