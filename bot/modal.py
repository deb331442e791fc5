"""A deal's details in a modal: what `/deal` answers, plus a small chart of its risk and win
probability over the last runs. Pure.

Opened from the Home tab's "Details" and the digest's "Why?": a modal is read by one person and
stays open while they think, where an ephemeral reply scrolls away. The chart is text (block
characters on a fixed 0-100 or 0-100% scale), so it needs no image upload, cannot break on CRM
text, and two deals' charts compare at a glance.
"""

from __future__ import annotations

import math

import pandas as pd

from bot.blocks import MAX_SECTION, _cut, mrkdwn
from bot.listeners import MODAL_CALLBACK
from dataset.money import chance

LEVELS = "▁▂▃▄▅▆▇█"
MAX_BLOCKS = 100
TITLE = "Deal details"  # a modal title takes 24 characters


def level(value: float, low: float, high: float) -> int:
    """The index in LEVELS of `value` on the scale low-high (clipped): higher never lower."""
    if not math.isfinite(value):
        return 0
    share = (min(max(value, low), high) - low) / (high - low)
    return min(len(LEVELS) - 1, int(share * len(LEVELS)))


def sparkline(values, low: float, high: float) -> str:
    return "".join(LEVELS[level(float(v), low, high)] for v in values)


def trend_text(history: pd.DataFrame) -> str:
    """The deal's risk and win probability over its last runs, oldest first, as two small
    charts with the first and last values; says so when there is only this run."""
    if len(history) < 2:
        return "*Over time*\n_First scored in this run: the chart starts with the next one._"
    risk, win = history["risk"].astype(float), history["win_prob"].astype(float)
    first, last = history["as_of"].iloc[0], history["as_of"].iloc[-1]
    return (
        f"*Over the last {len(history)} runs* ({first} to {last})\n"
        f"Risk `{sparkline(risk, 0, 100)}` {risk.iloc[0]:.0f} → {risk.iloc[-1]:.0f} (of 100)\n"
        f"Win probability `{sparkline(win, 0, 1)}` {chance(win.iloc[0])} → {chance(win.iloc[-1])}"
    )


def _modal(blocks: list[dict]) -> dict:
    return {
        "type": "modal",
        "callback_id": MODAL_CALLBACK,
        "title": {"type": "plain_text", "text": TITLE},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": blocks[:MAX_BLOCKS],
    }


def deal_modal(reply: dict, history: pd.DataFrame) -> dict:
    """The modal of one deal: the `/deal` answer's blocks (`bot.replies.deal_reply`) with the
    chart after its reasons and next steps."""
    chart = {"type": "section", "text": mrkdwn(_cut(trend_text(history), MAX_SECTION))}
    blocks = list(reply["blocks"])
    return _modal(blocks[:-1] + [chart] + blocks[-1:])


def notice_modal(text: str) -> dict:
    """A modal that only says something (the deal is not one you can see, and so on)."""
    return _modal([{"type": "section", "text": mrkdwn(_cut(text, MAX_SECTION))}])
