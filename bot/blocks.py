"""Block Kit for the morning digest: pure functions from a score run to Slack message JSON.

CRM text is untrusted: every value from the CRM goes through `escape` before it enters mrkdwn, so
an account named `<!channel>` pings nobody and `<http://x|y>` stays text, not a link. Messages stay
within Block Kit's limits (50 blocks, 3000 characters a section, 150 a header, 10 context elements;
slack-notes.md) and always carry a plain `text` fallback for notifications and screen readers.
"""

from __future__ import annotations

import json
import math

import pandas as pd

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_FIELD = 2000
MAX_TEXT = 3000  # the fallback text


def escape(text: object) -> str:
    """Make CRM text inert in mrkdwn: Slack's three control characters become entities."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def money(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if abs(x) >= 1e6:
        return f"{x / 1e6:.1f}M"
    if abs(x) >= 1e3:
        return f"{x / 1e3:.0f}k"
    return f"{x:.0f}"


def _change(risk: float, previous: float | None) -> str:
    if previous is None or (isinstance(previous, float) and math.isnan(previous)):
        return " (new)"
    delta = risk - previous
    if abs(delta) < 1:
        return ""
    return f" ({'▲' if delta > 0 else '▼'} {abs(delta):.0f})"


def worst_driver(drivers: str | None) -> str | None:
    """The saved driver that lowers the win probability most, in words (None if none does)."""
    if not drivers:
        return None
    negative = [d for d in json.loads(drivers) if d["points"] < 0]
    if not negative:
        return None
    worst = min(negative, key=lambda d: d["points"])
    return f"{worst['text']} (-{abs(worst['points']):.0f} pts)"


def deal_line(row: pd.Series, previous_risk: float | None) -> str:
    """One deal in mrkdwn: who and what (escaped), value, win probability, risk and its change."""
    account = row.get("account")
    who = escape(account) if isinstance(account, str) and account else "_no account yet_"
    text = (
        f"*{int(row['rank'])}. {who}* · {escape(row['product'])} · {escape(row['owner'])}\n"
        f"value {money(row['value'])} · win {row['win_prob']:.0%} · "
        f"risk {row['risk']:.0f}{_change(row['risk'], previous_risk)}"
    )
    why = worst_driver(row.get("drivers"))
    if why:
        text += f"\n_why:_ {escape(why)}"
    return _cut(text, MAX_SECTION)


def digest_message(
    run: dict, scores: pd.DataFrame, confidence: str, previous: dict[str, float] | None = None,
    top: int = 10,
) -> dict:  # fmt: skip
    """chat.postMessage arguments (`text` and `blocks`) for a digest of the top deals at risk.

    `previous`: deal id -> risk in the last digest's run, for the change column."""
    previous = previous or {}
    header = _cut(f"Pipeline digest: as of {run['as_of']}", MAX_HEADER)
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": header}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Open deals*\n{run['deals']:,}"},
                {"type": "mrkdwn", "text": f"*Pipeline value*\n{money(run['pipeline_value'])}"},
                {"type": "mrkdwn", "text": f"*Expected value*\n{money(run['expected_value'])}"},
            ],
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": escape(confidence)}]},
        {"type": "divider"},
    ]
    room = MAX_BLOCKS - len(blocks) - 1  # one block kept for the "more" note
    shown = scores.head(min(top, room))
    for _, row in shown.iterrows():
        text = deal_line(row, previous.get(row["deal_id"]))
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    if len(scores) > len(shown):
        more = f"{len(scores) - len(shown):,} more open deals scored; `/deal <id>` for any of them"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
    if len(shown):
        first = shown.iloc[0]
        name = first["account"] if isinstance(first["account"], str) else first["deal_id"]
        worst = f"top deal at risk: {escape(name)}"
    else:
        worst = "no open deals"
    fallback = (
        f"Pipeline digest as of {run['as_of']}: {run['deals']:,} open deals, "
        f"pipeline {money(run['pipeline_value'])}; {worst}"
    )
    return {"text": _cut(fallback, MAX_TEXT), "blocks": blocks}


def check_limits(message: dict) -> list[str]:
    """Problems with a message against Block Kit's limits (empty when it is fine)."""
    problems = []
    blocks = message.get("blocks", [])
    if not message.get("text"):
        problems.append("no fallback text")
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"{len(blocks)} blocks > {MAX_BLOCKS}")
    for i, b in enumerate(blocks):
        if b["type"] == "header" and len(b["text"]["text"]) > MAX_HEADER:
            problems.append(f"block {i}: header over {MAX_HEADER}")
        if b["type"] == "section":
            if "text" in b and len(b["text"]["text"]) > MAX_SECTION:
                problems.append(f"block {i}: section over {MAX_SECTION}")
            for f in b.get("fields", []):
                if len(f["text"]) > MAX_FIELD:
                    problems.append(f"block {i}: field over {MAX_FIELD}")
            if len(b.get("fields", [])) > 10:
                problems.append(f"block {i}: more than 10 fields")
        if b["type"] == "context" and len(b["elements"]) > 10:
            problems.append(f"block {i}: more than 10 context elements")
    return problems
