"""People, not names (issue 15, item 5): a deal line @-mentions its owner when, and only when, a
roster member's CRM name equals the owner exactly; the member id is the roster's, never the CRM's.
Rendered pure, then posted to the loopback Slack and shown in the Home tab."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.blocks import check_limits, deal_line, digest_message
from bot.digest import build
from bot.inert import inert, short
from bot.mentions import mention, mentions_of
from bot.morning import run_channel
from bot.services import build as build_services
from bot.settings import Member, Scope
from tests.bot.hostile import HOSTILE, assert_inert, live
from tests.bot.slackenv import HOSTILE_OWNER, MANAGER, REP, channel
from tests.bot.test_blocks import NO_CLOSED, NO_MARKS, RUN, scores

ROSTER = {
    "U0ANN": Member("U0ANN", "rep", "Ann Lee"),
    "U0MO": Member("U0MO", "manager", "Mo Park"),
    "U0LEAD": Member("U0LEAD", "leader"),
}


def line(owner, mentions) -> str:
    row = scores(1).iloc[0].copy()
    row["owner"] = owner
    return deal_line(row, None, mentions=mentions)


def test_a_roster_owner_is_mentioned_and_anyone_else_is_named():
    mentions = mentions_of(ROSTER)
    assert mentions == {"Ann Lee": "U0ANN", "Mo Park": "U0MO"}
    assert "*1. Acme* · GTX Pro · <@U0ANN> · `D0`" in line("Ann Lee", mentions)
    assert "Ann Lee" not in line("Ann Lee", mentions)
    assert "· Bo Wu ·" in line("Bo Wu", mentions)  # not in the roster: the name, as today
    for near in ("ann lee", "Ann  Lee", "Ann Lee ", "Ann Lee\u200b"):  # exact names only
        assert "<@" not in line(near, mentions), near
    assert "· no owner ·" in line(None, mentions)
    assert "<@U0ANN>" not in line("Ann Lee", None)  # no mapping given (the terminal's case)


def test_a_name_two_members_share_mentions_neither():
    twins = {**ROSTER, "U0ANN2": Member("U0ANN2", "rep", "Ann Lee")}
    assert mentions_of(twins) == {"Mo Park": "U0MO"}
    assert "· Ann Lee ·" in line("Ann Lee", mentions_of(twins))


@pytest.mark.parametrize("owner", ["<@U0LEADER>", "<!channel>", "<!here> Eve", "&lt;!here&gt;",
                                   "@channel Bob", "Eve <http://evil.example|x>"])  # fmt: skip
def test_crm_text_never_produces_a_mention(owner):
    """Owned by "<@U0LEADER>" or "<!channel>": the name stays inert, even with a roster member
    named exactly that (a roster copied from the CRM by `revbot roster --build` may have one)."""
    roster = {**ROSTER, "U0IMP": Member("U0IMP", "rep", owner)}
    mentions = mentions_of(roster)
    assert owner not in mentions
    text = line(owner, mentions)
    assert short(owner) in text and live(text) == [], text
    # a mapping built by hand, bypassing mentions_of, still cannot smuggle syntax in
    assert mention(owner, {owner: "U0IMP"}) is None
    assert mention("Ann Lee", {"Ann Lee": "U0ANN> <!channel"}) is None


def test_hostile_names_never_mention_anyone():
    roster = {f"U0H{i:03d}": Member(f"U0H{i:03d}", "rep", name) for i, name in enumerate(HOSTILE)}
    mentions = mentions_of(roster)
    for name in HOSTILE:
        text = line(name, mentions)
        ours = tuple(v for k, v in mentions.items() if k == name)
        assert_inert({"text": text}, name, ours)
        if not ours:
            assert inert(name.replace("\n", " ").strip()) in text


def test_a_digest_with_mentions_stays_within_slacks_limits():
    frame = scores(500, "A" * 5000)
    frame["owner"] = [f"Owner {i % 40}" for i in range(500)]
    roster = {f"U0R{i:03d}": Member(f"U0R{i:03d}", "rep", f"Owner {i}") for i in range(40)}
    d = build(run=RUN, scores=frame, scope=Scope("all"), top=500, min_risk=0, marks=NO_MARKS,
              previous=None, closed=NO_CLOSED, quarter=("2018-Q1", 1e5, 2e5, 3e5))  # fmt: skip
    message = digest_message(d, mentions=mentions_of(roster))
    assert check_limits(message) == []
    lines = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section" and "text" in b]  # fmt: skip
    assert sum("<@U0R" in t for t in lines) >= 5


# --- posted to the loopback Slack ------------------------------------------------------------


def test_the_posted_digest_mentions_the_roster_rep_on_their_deals(served):
    rep = served.data["who"]["rep"]
    ch = channel("C0REPS", scope=f"rep:{rep}", top=5)
    assert run_channel(served.services, served.client, ch, "2025-02-17").status == "posted"
    (call,) = [c for c in served.slack.calls_to("chat.postMessage") if c.ok]
    message = {"text": call.params["text"], "blocks": call.params["blocks"]}
    assert check_limits(message) == []
    deals = [b["text"]["text"] for b in message["blocks"]
             if b["type"] == "section" and "text" in b and "\nvalue " in b["text"]["text"]]  # fmt: skip
    assert deals and all(f" · <@{REP}> · " in t for t in deals)
    assert not any(rep in t for t in deals)  # the member, not the name
    assert_inert(message, ours=(REP, MANAGER))


def test_the_home_tab_shows_the_owner_as_the_member(served):
    from tests.bot.test_home_slack import open_home

    view = open_home(served, REP)  # a rep's own deals
    deals = [b["text"]["text"] for b in view["blocks"]
             if b["type"] == "section" and "\nvalue " in b.get("text", {}).get("text", "")]  # fmt: skip
    assert deals and all(f" · <@{REP}> · " in t for t in deals)


def test_a_roster_member_named_like_slack_syntax_is_shown_not_mentioned(served):
    """The hostile owner '<!here> Eve' is given a roster entry of exactly that name, as
    `revbot roster --build` would write it from the CRM: their deal is listed with the inert
    name; no `<@…>`, no `<!here>` reaches Slack."""
    roster = {**served.settings.roster, "U0EVE": Member("U0EVE", "rep", HOSTILE_OWNER),
              "U0IMP": Member("U0IMP", "leader", "<@U0LEADER>")}  # fmt: skip
    settings = replace(served.settings, roster=roster)
    services = build_services(served.db_path, served.data["artifacts"], settings)
    ch = channel("C0EVE", scope=f"rep:{HOSTILE_OWNER}")
    assert run_channel(services, served.client, ch, "2025-02-17").status == "posted"
    (call,) = [c for c in served.slack.calls_to("chat.postMessage") if c.ok]
    message = {"text": call.params["text"], "blocks": call.params["blocks"]}
    assert "&lt;!here&gt; Eve" in str(message) and "U0EVE" not in str(message)
    assert_inert(message, HOSTILE_OWNER)
    services.refresher.close()
