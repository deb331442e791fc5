"""The morning digest as plain text, for the terminal and for `digest.txt`. Pure.

The Slack version (Block Kit) is built from the same score run, so both say the same thing.
"""

from __future__ import annotations

import json

import pandas as pd

from bot.blocks import worst_driver


def _money(x: float) -> str:
    return f"{x:,.0f}"


def top_driver(drivers: str | None) -> str:
    """The reason that lowers the win probability most, in words."""
    if not drivers:
        return ""
    return worst_driver(drivers) or "no single risk stands out"


def render(run: dict, scores: pd.DataFrame, confidence: str, top: int = 10) -> str:
    """Header figures, then the deals with the most value at risk."""
    lines = [
        f"revbot digest: pipeline as of {run['as_of']}",
        f"  open deals: {run['deals']:,}   pipeline value: {_money(run['pipeline_value'])}   "
        f"expected value (sum of value x win probability): {_money(run['expected_value'])}",
        f"  {confidence}",
        "",
        f"Top {min(top, len(scores))} deals by value at risk:",
    ]
    for _, r in scores.head(top).iterrows():
        who = r["account"] if isinstance(r["account"], str) else "(no account yet)"
        lines.append(
            f"{int(r['rank']):>3}. {r['deal_id']}  {who} - {r['product']} - owner {r['owner']}: "
            f"value {_money(r['value'])}, win {r['win_prob']:.0%}, risk {r['risk']:.0f}"
        )
        driver = top_driver(r["drivers"])
        if driver:
            lines.append(f"       why: {driver}")
        actions = json.loads(r["actions"]) if r["actions"] else []
        if actions:
            lines.append(f"       next: {actions[0]}")
    return "\n".join(lines) + "\n"
