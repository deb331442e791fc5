"""What the CLI's reports print, as lines or JSON, from a saved run. Pure.

Why apart from the CLI: the CLI parses and calls; what it says is decided here from the same
saved run the digest and `/forecast` read, so the terminal and Slack show the same numbers.
"""

from __future__ import annotations

import json
import math

import pandas as pd

from bot.reader import SavedForecast, SavedRun
from bot.settings import Scope
from dataset.money import chance, money

PARTS_NOTE = (
    "P50s of parts do not add up to the P50 of the whole (each is the middle of its own range, "
    "and new deals are forecast per part); the share column is each part's P50 over the sum of "
    "the parts' P50s."
)


def breakdown(saved: SavedRun, by: str) -> list[Scope]:
    """The scopes of a breakdown: every region, manager's team or rep of the run."""
    names = sorted(saved.scores["owner"].dropna().unique()) if by == "rep" else saved.names(by)
    return [Scope(by, n) for n in names]


def _num(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) else round(x, 2)


def _periods(fc: SavedForecast) -> list[dict]:
    shown = fc.table[fc.table["kind"] != "cumulative"]
    return [
        {"period": r["period"], "kind": r["kind"], "start": str(r["start"]), "end": str(r["end"]),
         "won_to_date": _num(r["won_to_date"]), "p10": _num(r["p10"]), "p50": _num(r["p50"]),
         "p90": _num(r["p90"]), "expected_from_open_deals": _num(r["from_pipeline"]),
         "expected_from_new_deals": _num(r["from_new"])}
        for _, r in shown.iterrows()
    ]  # fmt: skip


def target_odds(saved: SavedRun, scopes: list[Scope], given: float | None = None) -> dict:
    """(scope, quarter) -> Odds for every configured target of these scopes' quarters, and
    `given` (`--target`) as the company's target for the quarter under way."""
    out = {}
    for scope in scopes:
        fc = saved.forecast(scope)
        this = str(fc.quarter()["period"])
        for quarter in fc.table.loc[fc.table["kind"] == "quarter", "period"]:
            amount = (
                given if (given is not None and scope.kind == "all" and quarter == this) else None
            )
            o = saved.odds(scope, str(quarter), amount)
            if o is not None:
                out[(scope, str(quarter))] = o
    return out


def forecast_json(saved: SavedRun, whole: SavedForecast, parts: list[tuple[Scope, SavedForecast]],
                  odds: dict | None = None) -> dict:  # fmt: skip
    """The forecast of a run for scripts: the whole and each part, every period, and each
    target's odds."""
    odds = odds or {}
    return {
        "run_id": saved.run_id,
        "as_of": saved.as_of,
        "scenarios": whole.scenarios,
        "scopes": {
            str(scope): {
                "label": scope.label, "open_deals": fc.open_deals,
                "new_deals_per_week": fc.new_per_week, "periods": _periods(fc),
                "targets": {
                    q: {"target": o.target, "chance": round(o.chance, 4), "p50": o.p50,
                        "gap": o.gap, "won_to_date": o.won, "pipeline": o.pipeline, "pipeline_basis": o.basis,
                        "coverage": None if o.coverage is None else round(o.coverage, 3)}
                    for (s, q), o in odds.items() if s == scope
                },
            }
            for scope, fc in [(Scope("all"), whole), *parts]
        },
    }  # fmt: skip


def track_json(record) -> dict:
    """A scope's track record for scripts: each horizon's summary and each checked forecast
    and call (`forecasting.track_record.TrackRecord`)."""
    return {
        "actuals": record.actuals,
        "horizons": [vars(s) for s in record.summaries()],
        "forecasts": [dict(vars(c), as_of=c.as_of.date().isoformat(), error=c.error,
                           held=c.held) for c in record.checked],
        "calls": [dict(vars(c), as_of=c.as_of.date().isoformat(), error=c.error)
                  for c in record.calls],
    }  # fmt: skip


def forecast_lines(saved: SavedRun, whole: SavedForecast, parts: list[tuple[Scope, SavedForecast]],
                   by: str | None) -> list[str]:  # fmt: skip
    """The forecast table of the whole, then each part's quarters with its share."""
    lines = [
        f"forecast of score run #{saved.run_id}, as of {saved.as_of}: {whole.open_deals:,} open "
        f"deals, {whole.scenarios:,} scenarios (won so far included in every figure)",
        f"{'period':<22}{'won so far':>12}{'P10':>12}{'P50':>12}{'P90':>12}",
    ]
    for _, r in whole.table[whole.table["kind"] != "cumulative"].iterrows():
        lines.append(f"{r['period']:<22}{money(r['won_to_date']):>12}{money(r['p10']):>12}"
                     f"{money(r['p50']):>12}{money(r['p90']):>12}")  # fmt: skip
    if not parts:
        return lines
    quarters = whole.table.loc[whole.table["kind"] == "quarter", "period"].tolist()
    lines += ["", f"by {by} (each with its own new deals and revenue won so far):"]
    for quarter in quarters:
        rows = [(scope, fc.quarter(quarter)) for scope, fc in parts]
        total = sum(float(r["p50"]) for _, r in rows)
        lines.append(f"  {quarter:<26}{'P10':>10}{'P50':>10}{'P90':>10}{'share':>8}")
        for scope, r in rows:
            share = float(r["p50"]) / total if total > 0 else float("nan")
            lines.append(f"    {str(scope.name)[:24]:<24}{money(r['p10']):>10}{money(r['p50']):>10}"
                         f"{money(r['p90']):>10}{share:>8.0%}")  # fmt: skip
    lines.append(f"  {PARTS_NOTE}")
    return lines


def score_lines(top: pd.DataFrame) -> list[str]:
    """The deals with the most value at risk, one line each, with the first reason."""
    from bot.blocks import named
    from bot.digest import top_reasons

    lines = []
    for _, r in top.iterrows():
        reasons = top_reasons(r["drivers"], limit=1)
        why = f": {reasons[0]['text']}" if reasons else ""
        lines.append(
            f"#{int(r['rank'])} {r['deal_id']} {named(r['account'], '(no account yet)')}, value "
            f"{money(0 if pd.isna(r['value']) else r['value'])}, win {chance(r['win_prob'])}, risk {r['risk']:.0f}{why}"
        )
    return lines


def score_json(saved: SavedRun, top: pd.DataFrame) -> dict:
    """The run's header and its top deals, for scripts."""
    keep = ("deal_id", "rank", "account", "owner", "value", "win_prob", "risk", "value_at_risk")
    return {
        "run_id": saved.run_id,
        "as_of": saved.as_of,
        "open_deals": len(saved.scores),
        "confidence": saved.run["confidence"],
        "top": [
            {k: (None if pd.isna(r[k]) else r[k]) for k in keep}
            | {"reasons": json.loads(r["drivers"]) if isinstance(r["drivers"], str) else []}
            for _, r in top.iterrows()
        ],
    }


def plain(message: dict) -> str:
    """A Block Kit reply as terminal text: the same sentences, without mrkdwn's markers."""
    import html
    import re

    def clean(text: str) -> str:
        text = re.sub(r"<(https?://[^<>|\s]+)\|([^<>]*)>", r"\2 (\1)", text)  # a link: label (url)
        text = re.sub(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])", r"\1", text)  # *bold*
        text = re.sub(r"(?<![\w_])_([^_\n]+)_(?![\w_])", r"\1", text)  # _italic_
        return html.unescape(text.replace("`", ""))

    lines: list[str] = []
    for block in message.get("blocks", []):
        if block.get("type") == "section":
            if "text" in block:
                lines.append(clean(block["text"]["text"]))
            for f in block.get("fields", []):
                label, _, value = clean(f["text"]).partition("\n")
                lines.append(f"  {label}: {value}")
        elif block.get("type") == "context":
            lines.append(" · ".join(clean(e.get("text", "")) for e in block.get("elements", [])))
    return "\n".join(lines) if lines else clean(message.get("text", ""))
