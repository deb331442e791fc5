"""The morning digest as plain text, for the terminal and for `digest.txt`. Pure.

It renders the same `Digest` as the Slack version (Block Kit), so both say the same thing, with
the same numbers: amounts by `dataset.money`, risk out of 100.
"""

from __future__ import annotations

import json
import math

from bot.blocks import estimated, footer_count, gone_detail, named, twins_text, why_text
from bot.digest import AT_RISK, Digest
from bot.target_text import odds_text
from dataset.money import chance, money, plural


def top_driver(drivers: str | None, currency: str | None = None) -> str:
    """The main reasons a deal is at risk, in words."""
    if not drivers:
        return ""
    return why_text(drivers, currency) or "no single factor stands out"


def _names(frame, detail, limit: int = 5) -> str:
    def name(r):
        return r["account"] if isinstance(r.get("account"), str) else r["deal_id"]

    shown = [f"{name(r)} ({detail(r)})" for _, r in frame.head(limit).iterrows()]
    return ", ".join(shown) + (f", +{len(frame) - limit} more" if len(frame) > limit else "")


def _change(risk: float, previous) -> str:
    if previous is None or (isinstance(previous, float) and math.isnan(previous)):
        return ""
    delta = risk - previous
    return f" ({delta:+.0f})" if abs(delta) >= 1 else ""


def render(d: Digest, currency: str | None = None) -> str:
    """Header figures, what's new, then the deals with the most value at risk; amounts in
    `currency` (None: the configured one)."""
    g = d.glance

    def cash(x) -> str:
        return money(x, currency)

    lines = [
        f"revbot digest: {d.scope.label}, pipeline as of {d.as_of}",
        f"  open deals: {g.deals:,}   pipeline value: {cash(g.pipeline_value)}   "
        f"expected value (sum of value x win probability): {cash(g.expected_value)}",
    ]
    if g.quarter:
        lines.append(f"  {g.quarter} forecast (won so far included): P50 {cash(g.p50)}, "
                     f"P10 {cash(g.p10)} - P90 {cash(g.p90)}")  # fmt: skip
    if d.odds is not None and g.quarter:
        lines.append("  " + odds_text(d.odds, g.quarter, currency).replace("*", ""))
    if d.movement:
        lines.append("  " + d.movement.replace("*", ""))
    lines.append(f"  {d.confidence}")
    lines += [f"  warning: {note}" for note in d.notes]
    lines.append("")
    if d.news is None:
        lines.append("What's new: first digest, changes are reported from the next one.")
    else:
        n = d.news
        news = [
            ("newly at risk", n.newly_at_risk, lambda r: f"risk {r['risk']:.0f}"),
            ("risk jumped", n.jumped, lambda r: f"{r['previous_risk']:.0f} -> {r['risk']:.0f}"),
            ("close date pushed", n.pushed,
             lambda r: f"{r['previous_close']} -> {r['expected_close']}"),
            ("lost", n.lost, lambda r: cash(r["value"])),
            ("won", n.won, lambda r: cash(r["value"])),
            ("gone from the CRM", n.removed, gone_detail),
        ]  # fmt: skip
        shown = [f"  {label}: {_names(f, detail)}" for label, f, detail in news if len(f)]
        lines.append(f"What's new since the last digest (at risk = risk {AT_RISK}+):")
        lines += shown or ["  nothing"]
    lines += ["", f"Top {plural(len(d.deals), 'deal')} by value at risk:" if len(d.deals) else
              "No deal in scope is at or above this risk level."]  # fmt: skip
    for _, r in d.deals.iterrows():
        who = r["account"] if isinstance(r["account"], str) else "(no account yet)"
        change = _change(r["risk"], r["previous_risk"]) if d.news is not None else ""
        lines.append(
            f"{int(r['rank']):>3}. {r['deal_id']}  {who} - {named(r['product'], 'no product')} - "
            f"owner {named(r['owner'], 'none')}: "
            f"value {cash(r['value'])}{estimated(r)}, win {chance(r['win_prob'])}, "
            f"risk {r['risk']:.0f}/100{change}"
        )
        driver = top_driver(r["drivers"], currency)
        if driver:
            lines.append(f"       why: {driver}")
        twins = r.get("same_as") or ()
        if len(twins):
            lines.append(f"       also: {twins_text(twins)}")
        actions = json.loads(r["actions"]) if r["actions"] else []
        if actions:
            lines.append(f"       next: {actions[0]}")
    if d.track:
        lines.append("\n" + d.track)
    lines.append(f"\n{footer_count(d)}; `/deal <id or account>` in Slack for any deal")
    return "\n".join(lines) + "\n"
