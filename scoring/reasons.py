"""Why a deal is at risk, in plain words with its own numbers, and what to do about it.

Pure. A deal's risk (see `risk`) is explained against a reference deal: one at the base win
rate, within its typical cycle, not stagnating, of median size. Each reason adds (or removes)
risk points:
- what moved the win probability (`explain`: SHAP drivers in probability points), times the
  loss weight 0.55: a driver that lowers the probability by 10 points adds 5.5 risk points;
- the risk score's own parts: velocity (told as "time open"), stagnation (told as the sign that
  is largest: activity, time in stage, pushes or expected close) and size ("deal size").
A driver and a part about the same thing are one reason ("no activity for 40 days" both lowers
the probability and counts as stagnation). Each reason also says how much of the deal's value at
risk it accounts for (value x risk points / 100). Reasons are ordered by the risk they add.

Every sentence is built from the facts it states, and a comparison ("longer than") is written
only when the numbers make it true; `tests/scoring/test_reasons.py` feeds random deals and checks.

Suggested actions follow from the reasons that add risk (decision support only: revbot never
acts on the CRM or contacts anyone):
- activity -> re-engage: book a call with the buyer this week;
- time in stage -> agree the step that moves the deal forward, or requalify;
- next step -> record the next step with a date;
- pushes -> confirm the decision date and the steps to signature with the champion;
- time open (past the typical cycle) -> requalify or agree a mutual close plan;
- expected close passed -> update the close date with the buyer's real timeline;
- amount cut -> confirm the scope and that the discount is approved;
- owner change -> make sure the buyer knows the new owner and the handover is complete;
- stage (early) -> qualify before counting on it;
- deal size, rep, product, account, region, source -> review the deal with the manager (these
  describe its circumstances, not something the rep can change this week).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from scoring.explain import DRIVERS
from scoring.risk import WEIGHTS

MIN_RISK = 0.5  # reasons adding less than half a risk point are not worth a line
TOP = 5


@dataclass(frozen=True)
class Reason:
    """One reason behind a deal's risk, in words, with its effects."""

    key: str
    text: str
    points: float  # effect on the win probability, in points (negative lowers it)
    risk: float  # risk points it adds (negative: it lowers the risk)
    money: float  # the part of the value at risk it accounts for

    def as_dict(self) -> dict:
        d = asdict(self)
        money = round(self.money) if np.isfinite(self.money) else None
        d.update(points=round(self.points, 1), risk=round(self.risk, 1), money=money)
        return d


def _n(x: float) -> str:
    return f"{x:,.0f}"


def _plural(n: float, word: str) -> str:
    return f"{_n(n)} {word}{'' if round(n) == 1 else 's'}"


def _known(x) -> bool:
    return x is not None and not (isinstance(x, float) and np.isnan(x)) and not pd.isna(x)


def describe(key: str, row: pd.Series, refs: dict) -> str | None:
    """The reason in words, quoting the deal's numbers (None: nothing true to say)."""
    product = row.get("product") if _known(row.get("product")) else "this product"
    if key == "activity":
        d, m = row.get("days_since_activity"), refs.get("days_since_activity")
        if not _known(d):
            return None
        text = f"no activity for {_plural(d, 'day')}" if d >= 1 else "activity logged today"
        share, age = row.get("active_weeks"), row.get("age_days")
        if _known(share):
            weeks = int(np.clip(np.ceil((age if _known(age) else 56) / 7), 1, 8))
            text += f", activity in {round(share * weeks)} of the last {_plural(weeks, 'week')}"
        return text + (f"; won deals had a median of {_plural(m, 'day')}" if _known(m) else "")
    if key == "time in stage":
        d, m, stage = row.get("days_in_stage"), row.get("typical_stage_days"), row.get("stage")
        if not _known(d) or not _known(stage):
            return None
        text = f"in {stage} for {_plural(d, 'day')}"
        if _known(m) and d > m:
            text += f", longer than the {_plural(m, 'day')} won deals usually spend there"
        elif _known(m):
            text += f"; won deals usually spend {_plural(m, 'day')} there"
        back = row.get("regressions", 0)
        if _known(back) and back >= 1:
            text += f"; moved back a stage {_plural(back, 'time')}"
        return text
    if key == "time open":
        age, typical = row.get("age_days"), row.get("typical_cycle")
        if not _known(age):
            return "still prospecting: no engage date yet"
        text = f"open {_plural(age, 'day')}"
        if _known(typical) and age > typical:
            return (
                text
                + f", longer than the {_plural(typical, 'day')} won {product} deals usually take"
            )
        if _known(typical):
            return text + f"; won {product} deals usually take {_plural(typical, 'day')}"
        return text
    if key == "pushes":
        n, days = row.get("close_pushes", 0), row.get("push_days", 0)
        if not _known(n) or n < 1:
            return "close date never pushed"
        text = f"close date pushed {_plural(n, 'time')}"
        return text + (
            f", {_plural(days, 'day')} later in all" if _known(days) and days >= 1 else ""
        )
    if key == "expected close":
        d = row.get("days_to_expected_close")
        if not _known(d):
            return "no expected close date"
        if d < 0:
            return f"expected close date passed {_plural(-d, 'day')} ago"
        return f"expected to close in {_plural(d, 'day')}"
    if key == "next step":
        has = row.get("has_next_step")
        if not _known(has):
            return None
        return "no next step recorded" if has < 0.5 else "a next step is recorded"
    if key == "amount":
        change = row.get("value_change")
        if not _known(change) or abs(change) < 0.005:
            return "amount unchanged since first recorded"
        pct = abs(np.expm1(change)) * 100
        return f"amount {'cut' if change < 0 else 'raised'} {pct:.0f}% since first recorded"
    if key == "deal size":
        v, median = row.get("value_used"), row.get("median_value")
        if not _known(v):
            return None
        text = f"deal size {_n(v)}"
        source = row.get("value_source", "amount")
        if source == "list price":
            text += " (list price: no amount in the CRM)"
        elif source == "median":
            text += " (no amount in the CRM: the median of similar deals)"
        if _known(median) and median > 0 and v >= 1.5 * median:
            return text + f", {v / median:.1f} times the median open deal ({_n(median)})"
        return text + (f"; the median open deal is {_n(median)}" if _known(median) else "")
    if key == "owner change":
        n = row.get("owner_changes", 0)
        if not _known(n) or n < 1:
            return "same owner since it was created"
        return f"handed over: owner changed {_plural(n, 'time')}, now {row.get('owner')}"
    if key == "rep":
        return f"{row.get('owner')}'s past win rate {row['rep_win_rate']:.0%} (all reps: {row['base_rate']:.0%})"
    if key == "product":
        return f"{product} deals win {row['product_win_rate']:.0%} (all products: {row['base_rate']:.0%})"
    if key == "account":
        account, rate = row.get("account"), row.get("account_win_rate")
        if not _known(account):
            return "account not yet recorded"
        sector = row.get("sector")
        extra = f", sector {sector}" if _known(sector) else ""
        if _known(rate):
            return f"{account}: past win rate {rate:.0%}{extra}"
        return f"{account}: no closed deals yet{extra}"
    if key == "region":
        return f"region {row.get('region') if _known(row.get('region')) else 'unknown'}"
    if key == "stage":
        stage = row.get("stage")
        if not _known(stage):
            return None
        p, default, cat = (
            row.get("crm_probability"),
            row.get("stage_probability"),
            row.get("forecast_category"),
        )
        text = f"stage {stage}"
        if _known(p):
            text += f" (CRM probability {p:.0f}%)"
        elif _known(default):
            text += f" (default probability {default:.0f}%)"
        return text + (f", forecast category {cat}" if _known(cat) else "")
    if key == "source":
        parts = [str(row[c]) for c in ("deal_type", "lead_source") if _known(row.get(c))]
        return "from " + ", ".join(parts) if parts else None
    return None


def _part_risk(row: pd.Series) -> dict[str, float]:
    """Risk points of the risk score's own parts, by the reason they are told under."""
    out = {
        "time open": 100 * WEIGHTS["velocity"] * float(row.get("risk_velocity", 0.0)),
        "deal size": 100 * WEIGHTS["size"] * (float(row.get("risk_size", 0.5)) - 0.5),
    }
    stagnation = 100 * WEIGHTS["stagnation"] * float(row.get("risk_stagnation", 0.0))
    if stagnation > 0:
        key = row.get("stagnation_key", "activity")
        out[key] = out.get(key, 0.0) + stagnation
    return out


def reasons_for(row: pd.Series, points: np.ndarray, refs: dict, top: int = TOP) -> list[Reason]:
    """A deal's reasons (row: features + score columns), the most risk first: those adding
    risk, then those lowering it; never more than `top`. A deal at risk with none above
    MIN_RISK gets the base rate as its reason, so no deal is listed without one."""
    value = float(row.get("value", row.get("value_used", 0.0)) or 0.0)
    risk = dict.fromkeys(DRIVERS, 0.0)
    effect = dict(zip(DRIVERS, (float(p) for p in points), strict=True))
    for key, p in effect.items():
        risk[key] -= 100 * WEIGHTS["loss"] * p / 100
    for key, r in _part_risk(row).items():
        risk[key] += r
    out = []
    for key in sorted(risk, key=lambda k: -abs(risk[k])):
        if abs(risk[key]) < MIN_RISK or len(out) >= top:
            break
        text = describe(key, row, refs)
        if text is None:
            continue
        out.append(Reason(key, text, effect[key], risk[key], value * risk[key] / 100))
    out.sort(key=lambda r: -r.risk)
    if not any(r.risk > 0 for r in out):
        base = float(row.get("base_rate", np.nan))
        lost = 100 * WEIGHTS["loss"] * (1 - base) if _known(base) else 0.0
        text = "no single factor stands out" + (
            f": the average open deal here is lost {1 - base:.0%} of the time"
            if _known(base)
            else ""
        )
        out.insert(0, Reason("base rate", text, 0.0, lost, value * lost / 100))
    return out


ACTIONS = {
    "activity": "Re-engage: no activity for {quiet}. Book a call with the buyer this week.",
    "time in stage": "In {stage} for {in_stage}: agree the step that moves it forward with the "
    "buyer, or requalify it.",
    "next step": "Record the next step with the buyer, with a date.",
    "pushes": "Close date moved {pushes}: confirm the decision date and the steps to signature "
    "with your champion.",
    "time open": "Open {age}, longer than the {typical} won {product} deals usually take: "
    "requalify (budget, authority, need, timing) or agree a mutual close plan.",
    "expected close": "The expected close date passed {overdue} ago: update it with the buyer's "
    "real timeline.",
    "amount": "The amount was cut: confirm the scope and that the discount is approved.",
    "owner change": "New owner: make sure the buyer knows who runs the deal now and that the "
    "handover notes are complete.",
    "stage": "Still early ({stage}): qualify it (budget, authority, need, timing) before counting "
    "on it.",
    "review": "Review this deal with your manager: its circumstances ({what}) weigh on it.",
    "none": "Keep the next step with the buyer in the calendar.",
}


def _num(row: pd.Series, key: str) -> float:
    x = row.get(key)
    return float(x) if _known(x) else float("nan")


# key -> (when the action applies, given the deal's facts; the action's words)
_RULES = {
    "activity": (lambda r: _num(r, "days_since_activity") >= 7,
                 lambda r: ACTIONS["activity"].format(quiet=_plural(r["days_since_activity"], "day"))),
    "time in stage": (lambda r: _num(r, "days_in_stage") >= 0 and _known(r.get("stage")),
                      lambda r: ACTIONS["time in stage"].format(
                          stage=r["stage"], in_stage=_plural(r["days_in_stage"], "day"))),
    "next step": (lambda r: _num(r, "has_next_step") == 0, lambda r: ACTIONS["next step"]),
    "pushes": (lambda r: _num(r, "close_pushes") >= 1,
               lambda r: ACTIONS["pushes"].format(pushes=_plural(r["close_pushes"], "time"))),
    "time open": (lambda r: _num(r, "age_days") > _num(r, "typical_cycle"),
                  lambda r: ACTIONS["time open"].format(
                      age=_plural(r["age_days"], "day"), typical=_plural(r["typical_cycle"], "day"),
                      product=r.get("product") or "")),
    "expected close": (lambda r: _num(r, "days_to_expected_close") < 0,
                       lambda r: ACTIONS["expected close"].format(
                           overdue=_plural(-r["days_to_expected_close"], "day"))),
    "amount": (lambda r: _num(r, "value_change") < 0, lambda r: ACTIONS["amount"]),
    "owner change": (lambda r: _num(r, "owner_changes") >= 1, lambda r: ACTIONS["owner change"]),
    "stage": (lambda r: _num(r, "stage_rank") <= 1 and _known(r.get("stage")),
              lambda r: ACTIONS["stage"].format(stage=r["stage"])),
}  # fmt: skip
_REVIEW = ("deal size", "rep", "product", "account", "region", "source")


def actions_for(row: pd.Series, reasons: list[Reason]) -> list[str]:
    """Suggested next steps from the reasons that add risk (rules in the module docstring); an
    action is suggested only where the facts it quotes hold."""
    out: list[str] = []
    review: list[str] = []
    for r in (r for r in reasons if r.risk > 0):
        if r.key in _RULES and _RULES[r.key][0](row):
            out.append(_RULES[r.key][1](row))
        elif r.key in _REVIEW:
            review.append(r.key)
    if review:
        out.append(ACTIONS["review"].format(what=", ".join(review)))
    return list(dict.fromkeys(out)) or [ACTIONS["none"]]


def explain_frame(frame: pd.DataFrame, points: np.ndarray, refs: dict,
                  top: int = TOP) -> tuple[list[list[Reason]], list[list[str]]]:  # fmt: skip
    """Reasons and actions for each row of `frame` (features joined with score columns)."""
    reasons, actions = [], []
    for i, (_, row) in enumerate(frame.iterrows()):
        rs = reasons_for(row, points[i], refs, top)
        reasons.append(rs)
        actions.append(actions_for(row, rs))
    return reasons, actions
