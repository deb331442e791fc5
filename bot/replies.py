"""Block Kit for the answers to `/deal`, `/forecast` and the digest's buttons. Pure.

CRM text goes through `bot.inert.inert` and mrkdwn objects are `verbatim`; every message carries a
plain `text` fallback and stays within Block Kit's limits (checked by `check_limits` in the tests).
Amounts are written by `dataset.money`, as in the digest, in the `currency` given (None: the
configured one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from bot.blocks import MAX_SECTION, _cut, estimated, mrkdwn, reason_text, short
from bot.crm_links import deal_id_mrkdwn, open_button
from bot.inert import fold, inert
from bot.settings import Scope
from bot.target_text import odds_text
from dataset.money import chance, money, plural
from forecasting.targets import Odds

DEAL_USAGE = (
    "*Usage:* `/deal &lt;deal id or account name&gt;` (add `share` to post the answer in the channel)\n"
    "Examples: `/deal 1C1I7A6R`, `/deal Acme`, `/deal Acme share`"
)
FORECAST_USAGE = (
    "*Usage:* `/forecast [quarter] [region or manager]`\n"
    "Examples: `/forecast`, `/forecast next`, `/forecast 2025-Q1 West`, `/forecast Melvin Marxen`\n"
    "Your call for a quarter: `/forecast call 1.2M [quarter] [region or manager]`\n"
    "What moved in the pipeline: `/forecast movement [quarter] [region or manager]`\n"
    "How right past forecasts were: `/forecast accuracy [region or manager]`"
)


def text_message(text: str) -> dict:
    return {"text": _cut(text, MAX_SECTION), "blocks": [
        {"type": "section", "text": mrkdwn(_cut(text, MAX_SECTION))}]}  # fmt: skip


def _trend(history: pd.DataFrame) -> str:
    if len(history) < 2:
        return "first scored in this run"
    values = " → ".join(f"{r:.0f}" for r in history["risk"])
    return f"risk over the last {len(history)} runs: {values}"


def deal_reply(deal: dict, drivers: list[dict], actions: list[str], history: pd.DataFrame,
               confidence: str, as_of: str, currency: str | None = None) -> dict:  # fmt: skip
    """One deal: who and what, win probability, risk, drivers in words, actions, risk trend; with
    `[links]` set, its id links to the CRM and an "Open in CRM" button follows the next steps."""
    account = short(deal["account"]) if deal.get("account") else "_no account yet_"
    title = f"*{account}* · {short(deal['product'])} · owner {short(deal['owner'])} · {deal_id_mrkdwn(deal['deal_id'])}"  # fmt: skip
    value = deal.get("value")
    fields = [
        f"*Win probability*\n{chance(deal['win_prob'])}",
        f"*Risk*\n{deal['risk']:.0f} / 100 (rank {int(deal['rank']):,})",
        f"*Value*\n{money(value, currency)}{estimated(deal, long=True)}",
        f"*Stage*\n{short(deal.get('stage') or '-')}",
        f"*Expected close*\n{short(deal.get('expected_close') or '-')}",
        f"*Team*\n{short(deal.get('manager') or '-')}, {short(deal.get('region') or '-')}",
    ]
    if drivers:
        why = "\n".join(
            f"{'🔺' if (d['risk'] if 'risk' in d else -d['points']) > 0 else '🔻'} {inert(reason_text(d, currency))}"
            for d in drivers
        )
    elif not isinstance(deal.get("drivers"), str):  # below the run's explained top
        why = (f"_Reasons are worked out each morning for the deals with the most value at risk; "
               f"this one ranks #{int(deal['rank']):,}, below them._")  # fmt: skip
    else:
        why = "_No single reason stands out: the score is close to the team's base rate._"
    todo = "\n".join(f"• {inert(a)}" for a in actions) or "_No action suggested._"
    blocks = [
        {"type": "section", "text": mrkdwn(_cut(title, MAX_SECTION))},
        {"type": "section", "fields": [mrkdwn(f) for f in fields]},
        {"type": "section", "text": mrkdwn(_cut("*Why*\n" + why, MAX_SECTION))},
        {"type": "section", "text": mrkdwn(_cut("*Suggested next steps*\n" + todo, MAX_SECTION))},
    ]
    link = open_button(deal["deal_id"])
    if link is not None:
        blocks.append({"type": "actions", "elements": [link]})
    blocks.append({"type": "context", "elements": [
        mrkdwn(_cut(f"{_trend(history)} · as of {as_of} · {inert(confidence)}", MAX_SECTION))]})  # fmt: skip
    fallback = (
        f"Deal {short(deal['deal_id'])}: win probability {chance(deal['win_prob'])}, risk "
        f"{deal['risk']:.0f}/100"
    )
    return {"text": fallback, "blocks": blocks}


def several_reply(query: str, deals: pd.DataFrame, limit: int = 15) -> dict:
    """An account with several open deals: list them so the rep can pick one by id (each id a
    link to the CRM with `[links]` set). As many as fit one section whole: a line is never cut,
    so neither is a link."""
    head = (
        f"{plural(len(deals), 'open deal')} match *{short(query)}*; ask for one by id, e.g. "
        f"`/deal {inert(deals.iloc[0]['deal_id'])}`:"
    )
    room = MAX_SECTION - len(head) - 40  # kept for "…and N more"
    lines: list[str] = []
    for _, r in deals.head(limit).iterrows():
        line = (f"• {deal_id_mrkdwn(r['deal_id'])} {short(r['account'])} · {short(r['product'])} · "
                f"{short(r['owner'])} · win {chance(r['win_prob'])} · risk {r['risk']:.0f}")  # fmt: skip
        room -= len(line) + 1
        if room < 0:
            break
        lines.append(line)
    more = f"\n…and {len(deals) - len(lines)} more" if len(deals) > len(lines) else ""
    return text_message(head + "\n" + "\n".join(lines) + more)


def not_found_reply(query: str, suggestions: list[str]) -> dict:
    text = f"I found no open deal with id or account *{short(query)}*."
    if suggestions:
        text += " Did you mean: " + ", ".join(f"`{inert(s)}`" for s in suggestions) + "?"
    return text_message(text + "\n" + DEAL_USAGE)


def closed_reply(state: dict) -> dict:
    if state["status"] in ("deleted", "merged"):
        into = state.get("merged_into")
        how = f"merged into `{inert(into)}`" if into else state["status"]
        return text_message(
            f"Deal `{inert(state['deal_id'])}` ({inert(state.get('account') or 'no account')}) "
            f"was {how} in the CRM (noticed {inert(state.get('removed_on') or 'at a sync')}); "
            "I only score open deals."
        )
    when = state.get("close_date") or "an unknown date"
    return text_message(
        f"Deal `{inert(state['deal_id'])}` ({inert(state.get('account') or 'no account')}) "
        f"was {inert(state['status'])} on {inert(when)}; I only score open deals."
    )


@dataclass(frozen=True)
class ForecastQuery:
    quarter: str | None  # "2025-Q1", "this", "next" or None (this quarter)
    scope_text: str | None  # the rest: a region or a manager's name


QUARTER = re.compile(r"^(?:(\d{4})[- ]?)?q([1-4])$|^(this|next)$", re.IGNORECASE)


def parse_forecast(text: str) -> ForecastQuery:
    """Split `/forecast` text into a quarter (first word, if it looks like one) and a scope."""
    words = text.split()
    quarter = None
    if words and (m := QUARTER.match(words[0])):
        quarter = (m.group(3) or "").lower() or (f"{m.group(1)}-Q{m.group(2)}" if m.group(1) else f"Q{m.group(2)}")  # fmt: skip
        words = words[1:]
    return ForecastQuery(quarter, " ".join(words) or None)


def pick_quarter(wanted: str | None, quarters: list[str]) -> str | None:
    """The forecast quarter the user meant (None if it is not one the forecast covers)."""
    if wanted in (None, "this"):
        return quarters[0]
    if wanted == "next":
        return quarters[1] if len(quarters) > 1 else None
    if wanted.startswith("Q"):
        return next((q for q in quarters if q.endswith(wanted)), None)
    return wanted if wanted in quarters else None


def match_scope(text: str, regions: list[str], managers: list[str]) -> Scope | None:
    """A region or manager named in free text, case-insensitively, and whether typed, escaped by
    Slack or pasted from one of our messages (None if none matches)."""
    t = " ".join(fold(text).split()).lower()
    for kind, names in (("region", regions), ("manager", managers)):
        for name in names:
            if " ".join(name.split()).lower() == t:
                return Scope(kind, name)
    return None


def forecast_summary(table: pd.DataFrame, quarter: str, scope: Scope, as_of: str,
                     currency: str | None = None, odds: Odds | None = None,
                     categories: str | None = None, calls: str | None = None,
                     sources: str | None = None) -> str:  # fmt: skip
    """The figures that go with the chart, in mrkdwn (with the target's odds, if one is set;
    `sources`: where the revenue still to come is expected from)."""
    row = table[(table["kind"] == "quarter") & (table["period"] == quarter)].iloc[0]
    won = row["won_to_date"]

    def cash(x) -> str:
        return money(x, currency)

    return (
        f"*Forecast for {quarter}, {inert(scope.label)}* (as of {as_of}): "
        f"P50 *{cash(row['p50'])}*, P10 {cash(row['p10'])}, P90 {cash(row['p90'])}"
        + (f" (won so far {cash(won)})" if won else "")
        + ("\n" + odds_text(odds, quarter, currency) if odds is not None else "")
        + ("\n" + calls if calls else "")
        + "\n_There is a 10% chance of less than P10 and a 10% chance of more than P90._"
        + ("\n" + sources if sources else "")
        + ("\n" + categories if categories else "")
    )
