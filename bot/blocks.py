"""Block Kit for the morning digest: pure functions from a score run to Slack message JSON.

CRM text is untrusted: every value from the CRM goes through `bot.inert.inert` before it enters a
message, so an account named `<!channel>` pings nobody, `<http://x|y>` or `www.evil.example`
stays text, not a link, and `*x*` stays asterisks; every mrkdwn object is `verbatim`, so Slack
does not auto-link or auto-mention inside it either. The only links are ours: with `[links]` set,
a deal's id links to the deal in the CRM and its buttons include "Open in CRM" (`bot.crm_links`,
the id percent-encoded into the URL); and a deal's owner is @-mentioned where the roster has a
member of exactly that name, the member id coming from the roster (`bot.mentions`). Messages stay
within Block Kit's limits (50 blocks, 3000 characters a section, 150 a header, 10 context elements;
slack-notes.md) and always carry a plain `text` fallback for notifications and screen readers.

Amounts are written by `dataset.money` (`$45.8k`, the same in the terminal digest and `/deal`), in
the `currency` a renderer is given, else the configured one. Risk is a score of 0-100: a reason
says how many of those points it adds ("risk +12 (of 100)"); a driver's effect on the win
probability is in percentage points.
"""

from __future__ import annotations

import math

import pandas as pd

from bot.crm_links import deal_id_mrkdwn, open_button
from bot.digest import AT_RISK, Digest, News, top_reasons
from bot.inert import cut as _cut
from bot.inert import inert, short
from bot.listeners import ACTION_ACK, ACTION_SNOOZE, ACTION_WHY
from bot.mentions import Mentions, mention
from bot.target_text import chance_text, odds_text
from dataset.money import chance, money, plural

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_FIELD = 2000
MAX_TEXT = 3000  # the fallback text
MAX_TOTAL = 12000  # all text in a message: Slack refuses ~13k as msg_blocks_too_long
MAX_BLOCK_ID = 255
MAX_BUTTON_ID = 200  # deal ids up to this long get buttons (block_id "deal:<id>" stays < 255)


def mrkdwn(text: str) -> dict:
    """A mrkdwn text object that Slack renders without auto-parsing: no URL, channel name or
    mention in it is turned into a link unless we wrote the `<...>` ourselves."""
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _change(risk: float, previous: float | None) -> str:
    if previous is None or (isinstance(previous, float) and math.isnan(previous)):
        return " (new)"
    delta = risk - previous
    if abs(delta) < 1:
        return ""
    return f" ({'▲' if delta > 0 else '▼'} {abs(delta):.0f})"


def risk_points(points: float) -> str:
    """Risk points a reason adds, said as points of the 0-100 score: "risk +12 (of 100)"."""
    return f"risk {points:+.0f} (of 100)" if round(points) else "risk ±0 (of 100)"


def reason_text(reason: dict, currency: str | None = None) -> str:
    """A reason with what it adds: "no activity for 40 days — risk +12 (of 100), $3.1k at
    risk"."""
    if "risk" not in reason:  # runs saved before reasons carried risk: the effect on the win
        points = reason["points"]  # probability, in percentage points
        return f"{reason['text']} ({points:+.0f} percentage points of win probability)"
    if reason["risk"] <= 0 or reason.get("money") is None:
        return f"{reason['text']} — {risk_points(reason['risk'])}"
    return (f"{reason['text']} — {risk_points(reason['risk'])}, "
            f"{money(reason['money'], currency)} at risk")  # fmt: skip


def why_text(drivers: str | None, currency: str | None = None) -> str | None:
    """The main reasons a deal is at risk, in words (None when none was saved)."""
    reasons = top_reasons(drivers)
    return "; ".join(reason_text(r, currency) for r in reasons) if reasons else None


def estimated(row, long: bool = False) -> str:
    """ " (estimate)" where the value scored is not the CRM's amount but its list price or a
    median of similar deals (the reasons say which)."""
    known = row.get("value_known")
    if known is None or pd.isna(known) or known:
        return ""
    return " (estimate: no amount in the CRM)" if long else " (estimate)"


def named(value: object, missing: str) -> str:
    """A CRM name, or what to say when the CRM has none (a synced deal may have no product)."""
    return value if isinstance(value, str) and value.strip() else missing


def deal_line(
    row: pd.Series,
    previous_risk: float | None,
    currency: str | None = None,
    mentions: Mentions | None = None,
) -> str:
    """One deal in mrkdwn: who and what (inert), its id (a link to the CRM when `[links]` is
    set), value, win probability, risk and its change. The owner is `<@U…>` when a roster
    member's CRM name equals it exactly (`mentions`, see `bot.mentions`), else the inert name."""
    account = row.get("account")
    who = short(account) if isinstance(account, str) and account else "_no account yet_"
    owner = mention(row["owner"], mentions) or short(named(row["owner"], "no owner"))
    text = (
        f"*{int(row['rank'])}. {who}* · {short(named(row['product'], 'no product'))} · "
        f"{owner} · "
        f"{deal_id_mrkdwn(row['deal_id'])}\n"
        f"value {money(row['value'], currency)}{estimated(row)} · win {chance(row['win_prob'])} · "
        f"risk {row['risk']:.0f}/100{_change(row['risk'], previous_risk)}"
    )
    why = why_text(row.get("drivers"), currency)
    if why:
        text += f"\n_why:_ {inert(why)}"
    twins = row.get("same_as") or ()
    if len(twins):
        text += f"\n_also:_ {inert(twins_text(twins))}"
    return _cut(text, MAX_SECTION)


def twins_text(twins) -> str:
    """Open deals identical to the one shown, by id: likely the same deal entered twice."""
    shown = ", ".join(str(t) for t in twins[:5]) + (
        f" and {len(twins) - 5} more" if len(twins) > 5 else ""
    )
    return (f"{plural(len(twins), 'more open deal', 'more open deals')} with exactly these "
            f"details ({shown}): possibly entered twice in the CRM")  # fmt: skip


def _deal_name(row: pd.Series) -> str:
    account = row.get("account")
    return short(account) if isinstance(account, str) and account else short(row["deal_id"])


def _names(frame: pd.DataFrame, detail, limit: int = 5) -> str:
    shown = [f"{_deal_name(r)} ({detail(r)})" for _, r in frame.head(limit).iterrows()]
    more = f", +{len(frame) - limit} more" if len(frame) > limit else ""
    return ", ".join(shown) + more


def gone_detail(row: pd.Series) -> str:
    """Why a deal left the digest without being won or lost."""
    if row["status"] == "merged" and isinstance(row.get("merged_into"), str):
        return f"merged into {short(row['merged_into'])}"
    return "deleted in the CRM" if row["status"] == "deleted" else "merged in the CRM"


def news_text(news: News, level: float, currency: str | None = None) -> str:
    """The "what's new" lines, most urgent first; empty when nothing changed."""
    lines = []
    if len(news.newly_at_risk):
        lines.append(f"*Newly at risk* (risk {level:.0f}+): "
                     + _names(news.newly_at_risk, lambda r: f"risk {r['risk']:.0f}"))  # fmt: skip
    if len(news.jumped):
        lines.append("*Risk jumped*: " + _names(
            news.jumped, lambda r: f"{r['previous_risk']:.0f} → {r['risk']:.0f}"))  # fmt: skip
    if len(news.pushed):
        lines.append("*Close date pushed*: " + _names(
            news.pushed, lambda r: f"{r['previous_close']} → {r['expected_close']}"))  # fmt: skip
    if len(news.lost):
        lines.append("*Lost*: " + _names(news.lost, lambda r: money(r["value"], currency)))
    if len(news.won):
        lines.append("*Won*: " + _names(news.won, lambda r: money(r["value"], currency)))
    if len(news.removed):
        lines.append("*Gone from the CRM*: " + _names(news.removed, gone_detail))
    return _cut("\n".join(lines), MAX_SECTION)


def _buttons(run_id: int, deal_id: str) -> dict:
    """The deal's actions: Why?, Snooze, Acknowledge, and Open in CRM when `[links]` is set."""
    value = f"{run_id}:{deal_id}"
    button = lambda action, label, **kw: {  # noqa: E731
        "type": "button", "action_id": action, "value": value,
        "text": {"type": "plain_text", "text": label}, **kw,
    }  # fmt: skip
    elements = [
        button(ACTION_WHY, "Why?"),
        button(ACTION_SNOOZE, "Snooze 7 days"),
        button(ACTION_ACK, "Acknowledge", style="primary"),
    ]
    link = open_button(deal_id)
    if link is not None:
        elements.append(link)
    return {"type": "actions", "block_id": f"deal:{deal_id}", "elements": elements}


def mark_handled(blocks: list[dict], deal_id: str, note: str) -> list[dict]:
    """The digest's blocks with one deal's buttons replaced by a note of who handled it."""
    block_id = f"deal:{deal_id}"
    context = {"type": "context", "block_id": block_id,
               "elements": [mrkdwn(_cut(note, MAX_SECTION))]}  # fmt: skip
    return [context if isinstance(b, dict) and b.get("block_id") == block_id else b for b in blocks]


def footer_count(d: Digest) -> str:
    deals = plural(d.at_risk, "open deal")
    if d.min_risk > 0:
        return f"{deals} in scope at risk {d.min_risk:.0f} or more"
    return f"{deals} in scope"


def digest_message(
    d: Digest, level: float = AT_RISK, currency: str | None = None, mentions: Mentions | None = None
) -> dict:
    """chat.postMessage arguments (`text` and `blocks`) for a channel's digest; amounts in
    `currency` (None: the configured one); each deal's owner @-mentioned where `mentions` (the
    roster's, `bot.mentions.mentions_of`) has their exact name."""
    g = d.glance
    cash = lambda x: money(x, currency)  # noqa: E731
    header = _cut(f"Pipeline digest: {short(d.scope.label)}, as of {d.as_of}", MAX_HEADER)
    fields = [
        mrkdwn(f"*Open deals*\n{g.deals:,}"),
        mrkdwn(f"*Pipeline value*\n{cash(g.pipeline_value)}"),
        mrkdwn(f"*Expected value*\n{cash(g.expected_value)} (value × win chance, any close date)"),
    ]
    if g.quarter:
        fields.append(mrkdwn(f"*{g.quarter} forecast*\nP50 {cash(g.p50)} "
                             f"(P10 {cash(g.p10)} - P90 {cash(g.p90)})"))  # fmt: skip
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": header}},
        {"type": "section", "fields": fields},
    ]
    if d.odds is not None and g.quarter:
        blocks.append({"type": "section", "text": mrkdwn(odds_text(d.odds, g.quarter, currency))})
    if d.movement:
        blocks.append({"type": "section", "text": mrkdwn(_cut(d.movement, MAX_SECTION))})
    blocks.append({"type": "context", "elements": [mrkdwn(inert(d.confidence))]})
    if d.notes:
        warn = _cut("⚠️ " + inert(" · ".join(d.notes)), MAX_SECTION)
        blocks.append({"type": "context", "elements": [mrkdwn(warn)]})
    if d.news is None:
        new = "_First digest here: changes are reported from the next one._"
    else:
        new = news_text(d.news, level, currency) or "_Nothing new since the last digest._"
    blocks.append({"type": "section", "text": mrkdwn(new)})
    blocks.append({"type": "divider"})
    # two blocks a deal, one kept for the footer and one for the track record's line
    room = (MAX_BLOCKS - len(blocks) - 1 - bool(d.track)) // 2
    budget = MAX_TOTAL - 500 - len(d.track or "") - sum(len(t) for t in _texts(blocks))
    listed = []
    for _, row in d.deals.head(room).iterrows():
        # on a channel's first digest there is no "since the last digest": no change shown
        previous = row.get("previous_risk") if d.news is not None else row["risk"]
        pair = [{"type": "section", "text": mrkdwn(deal_line(row, previous, currency, mentions))}]
        if len(str(row["deal_id"])) <= MAX_BUTTON_ID:  # longer ids would not fit a button value
            pair.append(_buttons(d.run_id, str(row["deal_id"])))
        budget -= sum(len(t) for t in _texts(pair))
        if budget < 0:
            break
        blocks += pair
        listed.append(row)
    shown = pd.DataFrame(listed)
    if shown.empty:
        blocks.append({"type": "section",
                       "text": mrkdwn("No deal in scope is at or above this channel's risk level.")})  # fmt: skip
    footer = [footer_count(d)]
    if len(shown) < len(d.deals):  # Block Kit's limits: never drop deals silently
        rest = len(d.deals) - len(shown)
        footer.append(
            f"+{rest} more did not fit here: `revbot digest --top {len(d.deals)}` lists them"
        )
    if d.hidden:
        footer.append(f"{d.hidden} snoozed or acknowledged here")
    footer.append("`/deal &lt;id or account&gt;` for any deal")
    if d.track:
        blocks.append({"type": "context", "elements": [mrkdwn(_cut(d.track, MAX_SECTION))]})
    blocks.append({"type": "context", "elements": [mrkdwn(" · ".join(footer))]})
    top = f"top deal at risk: {_deal_name(shown.iloc[0])}" if len(shown) else "no deal listed"
    forecast = f", {g.quarter} P50 {cash(g.p50)}" if g.quarter else ""
    if d.odds is not None and g.quarter:
        forecast += f" ({chance_text(d.odds.chance)} chance of the {cash(d.odds.target)} target)"
    fallback = (
        f"Pipeline digest ({inert(d.scope.label)}) as of {d.as_of}: "
        f"{plural(g.deals, 'open deal')}, pipeline {cash(g.pipeline_value)}{forecast}; {top}"
    )
    return {"text": _cut(fallback, MAX_TEXT), "blocks": blocks}


_COUNTED = ("text", "url")  # what a message's size is reckoned by: its texts and link URLs


def _texts(node) -> list[str]:
    """Every `text` and `url` string in a block tree (a link button's URL is as long as a text,
    and Slack's ~13k aggregate limit is not documented: counting it keeps the margin)."""
    if isinstance(node, list):
        return [t for item in node for t in _texts(item)]
    if isinstance(node, dict):
        out = [node[k] for k in _COUNTED if isinstance(node.get(k), str)]
        return out + [t for k, v in node.items() if k not in _COUNTED or not isinstance(v, str) for t in _texts(v)]  # fmt: skip
    return []


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
        if b["type"] == "actions" and len(b["elements"]) > 25:
            problems.append(f"block {i}: more than 25 actions")
    total = sum(len(t) for t in _texts(blocks))
    if total > MAX_TOTAL:
        problems.append(f"blocks total {total} characters > {MAX_TOTAL}")
    return problems
