"""Plain-words drivers and suggested actions from SHAP contributions.

Pure. LightGBM's TreeSHAP (`pred_contrib=True`) gives each feature's contribution to the raw score
(log-odds); it equals shap's TreeExplainer here (tests check it) and is several times faster, so it
is the one used. Contributions are summed into drivers a manager recognises (time open, activity,
pushes...), and each driver's effect is told in probability points: the shipped probability minus
the probability without that driver's contribution, through the same calibration and blend.

Suggested actions follow from the drivers that lower the probability, by these rules (decision
support only: revbot never acts on the CRM or contacts anyone):
- activity  -> re-engage: book a call with the buyer this week;
- pushes    -> confirm the decision date and the steps to signature with the champion;
- time open -> requalify (budget, authority, need, timing) or agree a mutual close plan;
- expected close passed -> update the close date with the buyer's real timeline;
- rep / product / account / size / region / calendar -> review the deal with the manager
  (these describe the deal's circumstances, not something the rep can change this week).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scoring.features import FEATURES
from scoring.model import WinModel

DRIVERS: dict[str, tuple[str, ...]] = {
    "activity": ("days_since_activity",),
    "pushes": ("close_pushes",),
    "time open": ("age_days", "cycle_ratio", "days_in_stage"),
    "expected close": ("days_to_expected_close",),
    "deal size": ("log_value",),
    "rep": ("rep_win_rate", "rep_open_deals"),
    "product": ("product", "product_win_rate"),
    "account": ("account_win_rate", "log_account_revenue", "sector"),
    "region": ("region",),
    "calendar": ("days_to_quarter_end",),
}
_INDEX = {f: i for i, f in enumerate(FEATURES)}
GROUP_INDEX = {g: [_INDEX[f] for f in fs] for g, fs in DRIVERS.items()}
MIN_POINTS = 0.5  # drivers smaller than half a probability point are not worth a line

ACTIONS = {
    "activity": "Re-engage: no activity for {quiet} days. Book a call with the buyer this week.",
    "pushes": "Close date moved {pushes} time(s): confirm the decision date and the steps to "
    "signature with your champion.",
    "time open": "Open {age} days, longer than the {typical} days won {product} deals usually "
    "take: requalify (budget, authority, need, timing) or agree a mutual close plan.",
    "expected close": "The expected close date passed {overdue} days ago: update it with the "
    "buyer's real timeline.",
    "review": "Review this deal with your manager: its circumstances ({what}) weigh on it.",
    "none": "On track: keep the next step with the buyer in the calendar.",
}


def top_risk(drivers: list[Driver]) -> Driver | None:
    """The driver that lowers the win probability most (None if none lowers it)."""
    negative = [d for d in drivers if d.points < 0]
    return min(negative, key=lambda d: d.points) if negative else None


@dataclass(frozen=True)
class Driver:
    """One reason behind a deal's score, in words, with its effect in probability points."""

    key: str
    text: str
    points: float  # signed: negative lowers the win probability

    def sentence(self) -> str:
        verb = "lowers" if self.points < 0 else "raises"
        return f"{self.text} ({verb} the win probability by {abs(self.points):.0f} pts)"


def group_contributions(contrib: np.ndarray) -> np.ndarray:
    """(n, features + 1) SHAP values -> (n, drivers) sums, in DRIVERS order."""
    return np.column_stack([contrib[:, idx].sum(axis=1) for idx in GROUP_INDEX.values()])


def driver_points(model: WinModel, contrib: np.ndarray) -> np.ndarray:
    """Each driver's effect in probability points: p - p(without that driver)."""
    raw = contrib.sum(axis=1)
    p = model.from_raw(raw)
    groups = group_contributions(contrib)
    without = model.from_raw(raw[:, None] - groups)
    return 100.0 * (p[:, None] - without)


def _fmt_days(x: float) -> str:
    return f"{x:.0f}"


def describe(key: str, row: pd.Series, refs: dict) -> str:
    """The driver in words, quoting the deal's value and the reference it is judged against."""
    product = row.get("product") or "this product"
    if key == "activity":
        return (
            f"no activity for {_fmt_days(row['days_since_activity'])} days "
            f"(deals that win: a median of {_fmt_days(refs.get('days_since_activity', 0))})"
        )
    if key == "pushes":
        n = int(row["close_pushes"])
        return f"close date pushed {n} time{'s' if n != 1 else ''} (deals that win: usually none)"
    if key == "time open":
        if np.isnan(row["age_days"]):
            return "still prospecting: no engage date yet"
        return (
            f"open {_fmt_days(row['age_days'])} days; {product} deals that win close in a "
            f"median of {_fmt_days(row['typical_cycle'])}"
        )
    if key == "expected close":
        d = row["days_to_expected_close"]
        if np.isnan(d):
            return "no expected close date"
        if d < 0:
            return f"expected close date passed {_fmt_days(-d)} days ago"
        return f"expected to close in {_fmt_days(d)} days"
    if key == "deal size":
        return f"deal size {row['value_used']:,.0f} (median won deal: {refs.get('value', 0):,.0f})"
    if key == "rep":
        return (
            f"{row['owner']}'s past win rate {row['rep_win_rate']:.0%} "
            f"(everyone: {row['base_rate']:.0%})"
        )
    if key == "product":
        return f"{product} deals win {row['product_win_rate']:.0%} (all products: {row['base_rate']:.0%})"
    if key == "account":
        if pd.isna(row.get("account")):
            return "account not yet recorded"
        rate = row["account_win_rate"]
        sector = row.get("sector")
        extra = f", sector {sector}" if isinstance(sector, str) else ""
        return (
            f"{row['account']}: past win rate {rate:.0%}{extra}"
            if not np.isnan(rate)
            else f"{row['account']}: no closed deals yet{extra}"
        )
    if key == "region":
        return f"region {row.get('region') or 'unknown'}"
    return f"{_fmt_days(row['days_to_quarter_end'])} days to the quarter's end"


def drivers_for(row: pd.Series, points: np.ndarray, refs: dict, top: int = 5) -> list[Driver]:
    """The biggest drivers of one deal, largest effect first."""
    order = np.argsort(-np.abs(points))
    keys = list(DRIVERS)
    out = []
    for i in order[:top]:
        if abs(points[i]) < MIN_POINTS:
            break
        out.append(Driver(keys[i], describe(keys[i], row, refs), float(points[i])))
    return out


def actions_for(row: pd.Series, drivers: list[Driver]) -> list[str]:
    """Suggested next steps, from the drivers that lower the probability (rules above)."""
    out: list[str] = []
    review: list[str] = []
    for d in (d for d in drivers if d.points < 0):
        if d.key == "activity":
            out.append(ACTIONS["activity"].format(quiet=_fmt_days(row["days_since_activity"])))
        elif d.key == "pushes":
            out.append(ACTIONS["pushes"].format(pushes=int(row["close_pushes"])))
        elif d.key == "time open" and not np.isnan(row["age_days"]):
            out.append(
                ACTIONS["time open"].format(
                    age=_fmt_days(row["age_days"]),
                    typical=_fmt_days(row["typical_cycle"]),
                    product=row.get("product") or "",
                )
            )
        elif d.key == "expected close" and row["days_to_expected_close"] < 0:
            out.append(
                ACTIONS["expected close"].format(overdue=_fmt_days(-row["days_to_expected_close"]))
            )
        elif d.key not in ("time open", "expected close"):
            review.append(d.key)
    if review:
        out.append(ACTIONS["review"].format(what=", ".join(review)))
    return out or [ACTIONS["none"]]


def explain_rows(
    model: WinModel, features: pd.DataFrame, refs: dict, top: int = 5
) -> tuple[list[list[Driver]], list[list[str]]]:
    """Drivers and actions for each row of `features` (one contributions call for all)."""
    if features.empty:
        return [], []
    contrib = model.contributions(model.matrix(features))
    points = driver_points(model, contrib)
    drivers = [
        drivers_for(row, points[i], refs, top) for i, (_, row) in enumerate(features.iterrows())
    ]
    actions = [
        actions_for(row, d) for (_, row), d in zip(features.iterrows(), drivers, strict=True)
    ]
    return drivers, actions
