"""The digest's Block Kit: CRM text made inert, Slack's limits kept, a fallback always there."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pandas as pd

from bot.blocks import MAX_TOTAL, _texts, check_limits, deal_line, digest_message, mark_handled
from bot.crm_links import template_default
from bot.digest import build
from bot.inert import JOINER, inert
from bot.listeners import ACTION_ACK, ACTION_OPEN_CRM, ACTION_SNOOZE, ACTION_WHY
from bot.settings import Scope

RUN = {"run_id": 7, "as_of": "2017-12-31", "confidence": "model confidence: low"}
NO_MARKS = pd.DataFrame(columns=["deal_id", "kind", "risk", "until", "user_id"])
NO_CLOSED = pd.DataFrame(columns=["deal_id", "status", "account", "value", "close_date"])


def scores(n: int, account="Acme") -> pd.DataFrame:
    drivers = json.dumps([{"key": "activity", "text": "no activity for 23 days", "points": -12.0,
                           "risk": 26.6, "money": 1282},
                          {"key": "rep", "text": "rep's win rate 70%", "points": 4.0, "risk": -2.2,
                           "money": -106}])  # fmt: skip
    return pd.DataFrame(
        {
            "deal_id": [f"D{i}" for i in range(n)],
            "rank": range(1, n + 1),
            "account": [account] * n,
            "product": ["GTX Pro"] * n,
            "owner": ["Ann Lee"] * n,
            "manager": ["Mo Park"] * n,
            "region": ["West"] * n,
            "value": [4821.0 + i for i in range(n)],  # distinct deals, not twins
            "win_prob": [0.21] * n,
            "risk": [75.0] * n,
            "expected_close": ["2018-01-15"] * n,
            "drivers": [drivers] * n,
            "actions": [json.dumps(["Book a call"])] * n,
        }
    )


def message(frame: pd.DataFrame, top: int = 10, previous=None) -> dict:
    d = build(run=RUN, scores=frame, scope=Scope("all"), top=top, min_risk=0, marks=NO_MARKS,
              previous=previous, closed=NO_CLOSED, quarter=("2018-Q1", 1e5, 2e5, 3e5))  # fmt: skip
    return digest_message(d)


def test_inert_neutralises_mentions_links_and_formatting():
    assert inert("<!channel>") == "&lt;!channel&gt;"
    assert inert("<http://x|y>") == f"&lt;http:{JOINER}//x|y&gt;"
    assert inert("R&D <b>") == "R&amp;D &lt;b&gt;"
    assert inert("*bold* @here") == f"\u2217bold\u2217 @{JOINER}here"


def test_hostile_account_names_cannot_ping_or_link():
    for name in ("<!channel>", "<!here|here>", "<http://evil.example|Click me>", "<@U123>"):
        m = message(scores(3, name))
        dumped = json.dumps(m)
        assert "<!" not in dumped and "<http" not in dumped and "<@" not in dumped
        deal_sections = [b for b in m["blocks"] if b["type"] == "section" and "text" in b]
        assert any(inert(name) in b["text"]["text"] for b in deal_sections)
        assert inert(name) in m["text"]


def test_header_has_the_glance_and_the_quarter_forecast():
    m = message(scores(4))
    fields = [f["text"] for f in m["blocks"][1]["fields"]]
    assert fields[0] == "*Open deals*\n4" and fields[1] == "*Pipeline value*\n$19.3k"
    assert fields[3] == "*2018-Q1 forecast*\nP50 $200k (P10 $100k - P90 $300k)"
    assert "4 open deals, pipeline $19.3k, 2018-Q1 P50 $200k" in m["text"]


def test_each_deal_has_why_snooze_and_acknowledge_buttons():
    m = message(scores(3))
    actions = [b for b in m["blocks"] if b["type"] == "actions"]
    assert len(actions) == 3
    assert [e["action_id"] for e in actions[0]["elements"]] == [ACTION_WHY, ACTION_SNOOZE, ACTION_ACK]  # fmt: skip
    assert {e["value"] for e in actions[0]["elements"]} == {"7:D0"}
    assert actions[0]["block_id"] == "deal:D0"


def test_limits_hold_for_a_huge_digest():
    m = message(scores(500, "A" * 5000), top=500)
    assert check_limits(m) == []
    assert len(m["blocks"]) <= 50
    assert m["blocks"][-1]["type"] == "context"


def test_a_deal_line_says_value_win_risk_change_and_why():
    row = scores(1).iloc[0]
    text = deal_line(row, previous_risk=60.0)
    assert "*1. Acme* · GTX Pro · Ann Lee · `D0`" in text
    assert "value $4.82k · win 21% · risk 75/100 (▲ 15)" in text
    assert "_why:_ no activity for 23 days — risk +27 (of 100), $1.28k at risk" in text
    old = row.copy()  # a run saved before reasons carried their risk
    old["drivers"] = json.dumps([{"key": "activity", "text": "quiet", "points": -12.0}])
    assert "_why:_ quiet (-12 percentage points of win probability)" in deal_line(old, None)
    assert "(new)" in deal_line(row, previous_risk=None)
    no_account = row.copy()
    no_account["account"] = None
    assert "_no account yet_" in deal_line(no_account, 75.0)


def test_first_digest_shows_no_change_arrows():
    m = message(scores(2))
    dumped = json.dumps(m)
    assert "First digest here" in dumped and "(new)" not in dumped and "▲" not in dumped


def test_mark_handled_replaces_only_that_deals_buttons():
    blocks = message(scores(3))["blocks"]
    marked = mark_handled(blocks, "D1", "Snoozed by <@U1> until 2018-01-07")
    assert len(marked) == len(blocks)
    changed = [b for a, b in zip(blocks, marked, strict=True) if a != b]
    assert len(changed) == 1 and changed[0]["type"] == "context"
    assert changed[0]["block_id"] == "deal:D1"
    assert sum(b["type"] == "actions" for b in marked) == 2


def test_check_limits_catches_what_slack_would_refuse():
    bad = {"blocks": [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}]}
    assert check_limits(bad) == ["no fallback text", "block 0: header over 150"]
    long = {"text": "t", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 2900}}] * 5}  # fmt: skip
    assert check_limits(long) == ["blocks total 14500 characters > 12000"]


def test_identical_deals_are_listed_once_with_the_others_ids():
    frame = scores(4)
    frame.loc[1:2, "value"] = frame.loc[0, "value"]  # D1 and D2: the same as D0 but for the id
    m = message(frame)
    deal_sections = [b["text"]["text"] for b in m["blocks"] if b["type"] == "section" and "text" in b and "`D" in b["text"]["text"]]  # fmt: skip
    assert len(deal_sections) == 2  # D0 (with its twins) and D3
    assert "2 more open deals with exactly these details (D1, D2)" in deal_sections[0]
    assert "exactly these details" not in deal_sections[1]


def test_a_value_that_is_not_the_crms_amount_says_so():
    row = scores(1).iloc[0].copy()
    row["value_known"] = 0
    assert "value $4.82k (estimate) · win" in deal_line(row, previous_risk=None)
    row["value_known"] = 1
    assert "estimate" not in deal_line(row, previous_risk=None)


CRM = "https://crm.example.com/deals/{id}"


def _deal_sections(m: dict) -> list[str]:
    return [b["text"]["text"] for b in m["blocks"] if b["type"] == "section" and "text" in b
            and b["text"]["text"].startswith("*") and ". " in b["text"]["text"][:6]]  # fmt: skip


def test_with_links_every_deal_line_links_its_id_and_has_an_open_in_crm_button():
    frame = scores(4)
    frame.loc[2, "deal_id"] = "a>b|c <!channel>"
    with template_default(CRM):
        m = message(frame)
    lines = _deal_sections(m)
    assert len(lines) == 4
    for line, deal_id in zip(lines, frame["deal_id"], strict=True):
        url = "https://crm.example.com/deals/" + quote(deal_id, safe="")
        assert f"· <{url}|{inert(deal_id)}>\n" in line, line
    assert "<!channel>" not in "".join(lines) and "a%3Eb%7Cc%20%3C%21channel%3E" in lines[2]
    actions = [b for b in m["blocks"] if b["type"] == "actions"]
    assert len(actions) == 4
    for block, deal_id in zip(actions, frame["deal_id"], strict=True):
        ids = [e["action_id"] for e in block["elements"]]
        assert ids == [ACTION_WHY, ACTION_SNOOZE, ACTION_ACK, ACTION_OPEN_CRM]
        opener = block["elements"][-1]
        assert opener["url"] == "https://crm.example.com/deals/" + quote(deal_id, safe="")
        assert opener["text"] == {"type": "plain_text", "text": "Open in CRM"}
    assert check_limits(m) == []


def test_without_links_no_deal_line_links_and_no_button_opens_the_crm():
    m = message(scores(4))
    dumped = json.dumps(m)
    assert "<http" not in dumped and '"url"' not in dumped and ACTION_OPEN_CRM not in dumped
    assert all("· `D" in line for line in _deal_sections(m))


def test_twenty_deals_with_long_ids_and_a_long_template_keep_within_slacks_limits():
    template = "https://crm.example.com/" + "p" * 420 + "/{id}?view=full"
    frame = scores(20, "An account with a long name " * 4)
    frame["deal_id"] = [f"{i:02d}" + "Z&<|>" * 39 for i in range(20)]  # 197 characters each
    with template_default(template):
        m = message(frame, top=20)
    assert check_limits(m) == []
    lines = _deal_sections(m)
    assert 0 < len(lines) < 20
    for line in lines:  # each link whole, its URL clean
        url = re.search(r"<(https://crm\.example\.com/p+/[^<>|\s]+\?view=full)\|[^<>]+>", line)[1]
        assert "Z%26%3C%7C%3E" in url
    assert f"+{20 - len(lines)} more did not fit here" in json.dumps(m)  # dropped, and said so
    buttons = [b["elements"][-1]["url"] for b in m["blocks"] if b["type"] == "actions"]
    assert len(buttons) == len(lines) and all(len(u) > 1000 - 300 for u in buttons)
    # the buttons' URLs count toward the message's size, as the texts do (and the links in them)
    counted = _texts(m["blocks"])
    assert set(buttons) <= set(counted) and sum(map(len, counted)) <= MAX_TOTAL
    assert check_limits({"text": "t", "blocks": [{"type": "actions", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "x"}, "url": "u" * MAX_TOTAL}]}]}) == [
        f"blocks total {MAX_TOTAL + 1} characters > {MAX_TOTAL}"]  # fmt: skip


def test_a_scope_whose_deals_all_closed_since_says_what_became_of_them():
    """No open deal in the channel's scope today, three yesterday: the digest lists none and says
    which were won and lost (mapping ids into an empty run crashed before)."""
    before = scores(3)
    closed = pd.DataFrame({"deal_id": ["D0", "D1", "D2"], "status": ["won", "lost", "lost"],
                           "account": ["Acme"] * 3, "value": [1.0, 2.0, 3.0],
                           "close_date": ["2017-12-30"] * 3})  # fmt: skip
    d = build(run=RUN, scores=scores(3).iloc[:0], scope=Scope("all"), top=10, min_risk=0,
              marks=NO_MARKS, previous=before, closed=closed, quarter=None)  # fmt: skip
    assert d.deals.empty and d.news.newly_at_risk.empty and d.news.jumped.empty
    assert d.news.won["deal_id"].tolist() == ["D0"]
    assert d.news.lost["deal_id"].tolist() == ["D1", "D2"]
    assert "Traceback" not in json.dumps(digest_message(d))
