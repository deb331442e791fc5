"""What `revbot hygiene` prints from a saved run: deals flagged per rule, then the worst deals of
each rule. Pure.

Why apart from the CLI: the words are decided from the rows the writer saved (the rules' states,
the flags), so a later dashboard or nudge says the same; nothing here evaluates a rule.
"""

from __future__ import annotations

import pandas as pd

from dataset.money import money, plural
from scoring.hygiene import NOT_AVAILABLE, OFF, RULE_BY_NAME, HygieneConfig

WIDTH = max(len(name) for name in RULE_BY_NAME)


def _threshold(x) -> float | None:
    return None if x is None or pd.isna(x) else float(x)


def rule_line(row: pd.Series, deals: int) -> list[str]:
    """A rule's line: how many deals it flagged and what it flags, or why it flagged none."""
    name, rule = row["rule"], RULE_BY_NAME.get(row["rule"])
    head = f"  {name:<{WIDTH}}  "
    if row["state"] == OFF:
        return [head + "off ([hygiene] off in revbot.toml)"]
    if row["state"] == NOT_AVAILABLE:
        return [head + f"not available in this CRM's data: {row['note']}"]
    n = int(row["flagged"])
    share = f" ({n / deals:.0%})" if deals and n else ""
    what = rule.describe(_threshold(row["threshold"])) if rule else ""
    lines = [head + f"{plural(n, 'deal')}{share}: {what}"]
    if isinstance(row["note"], str) and row["note"]:
        lines.append(" " * len(head) + row["note"])
    return lines


def deal_line(flag: pd.Series) -> str:
    """One flagged deal: id, account, owner and value, and the rule's sentence."""
    who = ", ".join(str(x) for x in (flag["owner"], money(flag["deal_value"])) if _known(x))
    account = flag["account"] if _known(flag["account"]) else "no account"
    return f"  {flag['deal_id']}  {account} ({who}): {flag['detail']}"


def _known(x) -> bool:
    return isinstance(x, str) and x not in ("", "-")


def changed(rules: pd.DataFrame, config: HygieneConfig) -> list[str]:
    """The rules configured otherwise now than when the run was saved."""
    out = []
    for _, row in rules.iterrows():
        if row["rule"] not in RULE_BY_NAME:
            continue
        off_now = row["rule"] in config.off
        then = _threshold(row["threshold"])
        if off_now != (row["state"] == OFF) or then != config.threshold(row["rule"]):
            out.append(row["rule"])
    return out


def report(run: dict, rules: pd.DataFrame, flags: pd.DataFrame, limit: int,
           config: HygieneConfig | None = None, only: str | None = None) -> list[str]:  # fmt: skip
    """The report's lines: the counts per rule (one rule with `only`), then up to `limit` deals
    per rule, furthest past its threshold first (`flags` as `Reader.flags` orders them)."""
    deals = int(run["deals"])
    lines = [
        f"deal hygiene in score run #{run['run_id']}: {plural(deals, 'open deal')} as of "
        f"{run['as_of']}"
    ]
    shown = rules if only is None else rules[rules["rule"] == only]
    for _, row in shown.iterrows():
        lines += rule_line(row, deals)
    for _, row in shown.iterrows():
        mine = flags[flags["rule"] == row["rule"]]
        if mine.empty:
            continue
        top = mine.head(limit)
        lines += ["", f"{row['rule']}: {_which(row['rule'], len(top), len(mine))}"]
        lines += [deal_line(flag) for _, flag in top.iterrows()]
    moved = changed(rules, config) if config is not None else []
    if moved:
        lines += ["", f"note: [hygiene] in revbot.toml has changed for {', '.join(moved)} since "
                  "this run was saved; `revbot score` checks the rules again"]  # fmt: skip
    return lines


def _which(rule: str, shown: int, total: int) -> str:
    order = "by value at risk" if RULE_BY_NAME[rule].setting is None else "furthest past the rule"
    return f"all {total}, {order}" if shown == total else f"{shown} of {total}, {order}"
