"""Outcome statistics known on a day: win rates and the typical pace of won deals.

Pure. Everything here comes from deals that closed *before* the day t it is computed for, so a
feature built from it never sees the future. Rates are smoothed towards the overall rate of that
time (a rep with two deals is not a 100% rep).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scoring.crm import Crm, among

SMOOTHING = 20.0  # prior weight (in deals) of the overall win rate in smoothed rates
MIN_STAGE_SPELLS = 10  # won deals' stays in a stage needed to call a time in that stage typical
MIN_LATE = 10  # won deals with an expected close date needed to say how late won deals close
SLOW = 0.9  # "slow" is slower than this share of won deals: a median would call half of them slow


def smoothed(wins: pd.Series, counts: pd.Series, prior: float) -> pd.Series:
    return (wins + SMOOTHING * prior) / (counts + SMOOTHING)


@dataclass(frozen=True)
class Rates:
    """Outcome statistics of the deals closed before a day."""

    base: float
    rep: pd.Series
    product: pd.Series
    account: pd.Series
    cycle: pd.Series  # engage-to-close days within which 90% of won deals closed, by product
    cycle_all: float
    stage_days: pd.Series  # days within which 90% of won deals left each open stage
    # days after the expected close date its last open export showed within which 90% of won
    # deals closed (NaN: fewer than MIN_LATE won deals showed a date); 0 or less: on time
    late_days: float = np.nan
    # the most days any deal closed before the day took from engagement to close, won or lost
    # (NaN: none closed): a deal open longer than that is older than any that ever closed
    longest: float = np.nan


def rates_before(crm: Crm, t: pd.Timestamp) -> Rates:
    d = crm.deals
    closed = d[d["closed_on"] < t]
    won = closed["status"].eq("won").astype(float)
    base = float(won.mean()) if len(closed) else 0.5

    def rate(key: str) -> pd.Series:
        g = won.groupby(closed[key])
        return smoothed(g.sum(), g.count(), base)

    wins = closed[closed["status"] == "won"]
    days = (wins["closed_on"] - wins["engage_date"]).dt.days
    return Rates(
        base=base,
        rep=rate("owner"),
        product=rate("product"),
        account=rate("account"),
        cycle=days.groupby(wins["product"]).quantile(SLOW),
        cycle_all=float(days.quantile(SLOW)) if days.notna().any() else np.nan,
        stage_days=_stage_days(crm, wins["deal_id"], t),
        late_days=_late_days(wins),
        longest=float((closed["closed_on"] - closed["engage_date"]).dt.days.max()),
    )


def _late_days(wins: pd.DataFrame) -> float:
    late = wins["late_days"].dropna() if "late_days" in wins else pd.Series(dtype=float)
    # the higher of two neighbours: "90% of won deals closed within N days" must hold
    return float(late.quantile(SLOW, interpolation="higher")) if len(late) >= MIN_LATE else np.nan


def won_stage_stays(crm: Crm, t: pd.Timestamp) -> pd.DataFrame:
    """The completed stays (stage, days) in an open stage of the deals won before day t: what
    "how long do won deals take in this stage" is learned from, here and by the hygiene rules
    (`scoring.hygiene`)."""
    d = crm.deals
    won = d.loc[(d["closed_on"] < t) & d["status"].eq("won"), "deal_id"]
    return _won_stays(crm, won, t)


def _won_stays(crm: Crm, won_ids: pd.Series, t: pd.Timestamp) -> pd.DataFrame:
    s = crm.spells
    if s.empty:
        return pd.DataFrame({"stage": pd.Series(dtype=object), "days": pd.Series(dtype=float)})
    s = s[among(s["deal_id"], won_ids) & (s["end"] < t).to_numpy()]
    return pd.DataFrame({"stage": s["stage"], "days": (s["end"] - s["start"]).dt.days})


def _stage_days(crm: Crm, won_ids: pd.Series, t: pd.Timestamp) -> pd.Series:
    stays = _won_stays(crm, won_ids, t)
    if stays.empty:
        return pd.Series(dtype=float)
    g = stays["days"].groupby(stays["stage"])
    slow = g.quantile(SLOW)
    return slow[g.size() >= MIN_STAGE_SPELLS].astype(float)
