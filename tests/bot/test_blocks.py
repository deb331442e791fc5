"""The digest's Block Kit: CRM text made inert, Slack's limits kept, a fallback always there."""

from __future__ import annotations

import json

import pandas as pd

from bot.blocks import check_limits, deal_line, digest_message, escape

RUN = {"as_of": "2017-12-31", "deals": 2089, "pipeline_value": 4966215.0, "expected_value": 3.1e6}


def _scores(n: int, account="Acme") -> pd.DataFrame:
    drivers = json.dumps([{"key": "activity", "text": "no activity for 23 days", "points": -12.0},
                          {"key": "rep", "text": "rep's win rate 70%", "points": 4.0}])  # fmt: skip
    return pd.DataFrame(
        {
            "deal_id": [f"D{i}" for i in range(n)],
            "rank": range(1, n + 1),
            "account": [account] * n,
            "product": ["GTX Pro"] * n,
            "owner": ["Ann Lee"] * n,
            "value": [4821.0] * n,
            "win_prob": [0.21] * n,
            "risk": [75.0] * n,
            "drivers": [drivers] * n,
        }
    )


def test_escape_neutralises_mentions_and_links():
    assert escape("<!channel>") == "&lt;!channel&gt;"
    assert escape("<http://x|y>") == "&lt;http://x|y&gt;"
    assert escape("R&D <b>") == "R&amp;D &lt;b&gt;"


def test_hostile_account_names_cannot_ping_or_link():
    for name in ("<!channel>", "<!here|here>", "<http://evil.example|Click me>", "<@U123>"):
        message = digest_message(RUN, _scores(3, name), "model confidence: low")
        dumped = json.dumps(message)
        assert "<!" not in dumped and "<http" not in dumped and "<@" not in dumped
        assert escape(name) in message["blocks"][4]["text"]["text"]
        assert escape(name) in message["text"]


def test_limits_hold_for_a_huge_digest():
    message = digest_message(RUN, _scores(500, "A" * 5000), "model confidence: high", top=500)
    assert check_limits(message) == []
    assert len(message["blocks"]) == 50
    assert message["blocks"][-1]["type"] == "context" and "more open deals" in json.dumps(
        message["blocks"][-1]
    )


def test_a_deal_line_says_value_win_risk_change_and_why():
    row = _scores(1).iloc[0]
    text = deal_line(row, previous_risk=60.0)
    assert "*1. Acme* · GTX Pro · Ann Lee" in text
    assert "value 5k · win 21% · risk 75 (▲ 15)" in text
    assert "_why:_ no activity for 23 days (-12 pts)" in text
    assert "(new)" in deal_line(row, previous_risk=None)
    no_account = row.copy()
    no_account["account"] = None
    assert "_no account yet_" in deal_line(no_account, 75.0)


def test_check_limits_catches_what_slack_would_refuse():
    bad = {"blocks": [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}]}
    assert check_limits(bad) == ["no fallback text", "block 0: header over 150"]
