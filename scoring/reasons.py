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

Every sentence is built from the facts it states, and a comparison ("longer than", "within") is
written only when the numbers it shows make it true (days are compared as shown, a 90th
percentile is shown rounded up); `tests/scoring/test_reasons.py` feeds random deals and checks.
Amounts are written as everywhere else (`dataset.money`: `$45.8k`, in the configured currency),
counts with their plural ("1 day", "3 days") and how often in words ("once", "twice", "3 times").

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
- stage (early: the first open stage, or the second with a default probability up to 40%) ->
  qualify before counting on it;
- deal size, rep, product, account, region, source -> review the deal with the manager (these
  describe its circumstances, not something the rep can change this week).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from dataset.money import money, plural, times
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
    """A number as shown: rounded to a whole number, thousands separated (never "-0")."""
    return f"{int(round(x)):,}"


def _whole(x: float) -> int:
    """A count of days, times or weeks as shown (and compared: a sentence compares the numbers
    it shows, so "open 95 days, longer than ... (95 days)" cannot happen)."""
    return int(round(x))


def _up(x: float) -> int:
    """A 90th percentile of days (fractional: interpolated) as shown, rounded up, so that "90% of
    won deals closed within N days" stays true."""
    return math.ceil(x)


def _plural(n: float, word: str) -> str:
    return plural(_whole(n), word)


def _times(n: float) -> str:
    return times(_whole(n))


def _known(x) -> bool:
    """A fact the CRM gave: not missing, and a finite number where it is a number."""
    if x is None or isinstance(x, str):
        return bool(x and x.strip())
    if pd.isna(x):
        return False
    try:
        return bool(np.isfinite(x))
    except TypeError:  # a date or other non-number
        return True


def _num(row: pd.Series, key: str) -> float:
    x = row.get(key)
    return float(x) if _known(x) else float("nan")


def _cut(change) -> int:
    """The amount cut, in % as shown (0: not cut, or by less than half a percent). A cut of
    99.6% is shown as 99%: the amount is not zero."""
    if not _known(change) or change >= 0:
        return 0
    return min(_whole(-100 * np.expm1(change)), 99)


def _won(row: pd.Series) -> str:
    product = row.get("product")
    return f"won {product} deals" if _known(product) else "won deals"


def _overdue_stage(row: pd.Series) -> bool:
    """In its stage longer than 90% of won deals stayed there, as shown (True where that time
    is not known)."""
    d, m = row.get("days_in_stage"), row.get("typical_stage_days")
    return not _known(m) or (_known(d) and _whole(d) > _up(m))


def _early(row: pd.Series) -> bool:
    """In an early stage: the first open stage, or the second where its default probability says
    so (MavenTech's second and last open stage, Engaging, is not early)."""
    rank, p = _num(row, "stage_rank"), _num(row, "stage_probability")
    return _known(row.get("stage")) and (rank == 0 or (rank == 1 and p <= 40))


def describe(key: str, row: pd.Series, refs: dict) -> str | None:
    """The reason in words, quoting the deal's numbers (None: nothing true to say)."""
    if key == "activity":
        d, m = row.get("days_since_activity"), refs.get("days_since_activity_p90")
        if not _known(d):
            return None
        text = f"no activity for {_plural(d, 'day')}" if _whole(d) >= 1 else "activity logged today"
        share, age = row.get("active_weeks"), row.get("age_days")
        if _known(share):
            weeks = int(np.clip(np.ceil((age if _known(age) else 56) / 7), 1, 8))
            active = int(np.clip(round(share * weeks), 0, weeks))
            if weeks == 1:
                text += ", activity in the last week" if active else ", none in the last week"
            elif active:
                text += f", activity in {active} of the last {weeks} weeks"
            else:
                text += f", none in the last {weeks} weeks"
        if _known(m):  # the 90th percentile of won deals, compared as "time in stage" does
            p90 = _up(m)
            within = _plural(p90, "day") if p90 >= 1 else "a day"  # not "within 0 days"
            if p90 >= 1 and _whole(d) > p90:
                text += f", longer than 90% of won deals went without activity ({within})"
            else:
                text += f"; 90% of won deals had activity within {within}"
        return text
    if key == "time in stage":
        d, m, stage = row.get("days_in_stage"), row.get("typical_stage_days"), row.get("stage")
        if not _known(d) or not _known(stage):
            return None
        text = f"in {stage} for {_plural(d, 'day')}"
        if _known(m) and _whole(d) > _up(m):
            text += f", longer than 90% of won deals stayed there ({_plural(_up(m), 'day')})"
        elif _known(m):
            text += f"; 90% of won deals left it within {_plural(_up(m), 'day')}"
        back = row.get("regressions")
        if _known(back) and _whole(back) >= 1:
            text += f"; moved back a stage {_times(back)}"
        return text
    if key == "time open":
        age, typical = row.get("age_days"), row.get("typical_cycle")
        if not _known(age):
            return "time open unknown: no engage date in the CRM"
        text = f"open {_plural(age, 'day')}"
        if _older_than_any(row):
            return text + f", longer than any deal took to close ({_longest(row)})"
        if _known(typical) and _whole(age) > _up(typical):
            return text + f", longer than 90% of {_won(row)} took ({_plural(_up(typical), 'day')})"
        if _known(typical):
            return text + f"; 90% of {_won(row)} closed within {_plural(_up(typical), 'day')}"
        return text
    if key == "pushes":
        n, days = row.get("close_pushes"), row.get("push_days")
        if not _known(n):
            return None
        if _whole(n) < 1:
            return "no close-date push on record"
        text = f"close date pushed {_times(n)}"
        if _known(days) and _whole(days) >= 1:
            text += f", {_plural(days, 'day')} later in all"
        return text
    if key == "expected close":
        d = row.get("days_to_expected_close")
        if not _known(d):
            return "no expected close date"
        if _whole(d) < 0:
            text = f"expected close date passed {_plural(-d, 'day')} ago"
            late = row.get("typical_late_days")
            if _known(late) and _up(late) >= 1:  # won deals here often close after their date
                if _whole(-d) > _up(late):
                    return text + (", later than 90% of won deals closed after theirs "
                                   f"({_plural(_up(late), 'day')})")  # fmt: skip
                within = _plural(_up(late), "day")
                return text + f"; 90% of won deals closed at most {within} after theirs"
            return text
        if _whole(d) == 0:
            return "expected to close today"
        return f"expected to close in {_plural(d, 'day')}"
    if key == "next step":
        has = row.get("has_next_step")
        if not _known(has):
            return None
        missing = row.get("next_step_missing")
        usually = _known(missing) and missing >= 0.5  # in most of the states the CRM showed
        if has < 0.5:
            return "no next step recorded" + (", as for most of its history" if usually else "")
        if usually:
            return "a next step is recorded, though it was missing for most of its history"
        share = _whole(100 * missing) if _known(missing) else 0
        # a recorded next step can still weigh on a deal: say what does (its gaps before)
        if share >= 1:
            return f"a next step is recorded, though it was missing in {share}% of its exports"
        return "a next step is recorded"
    if key == "amount":
        change = row.get("value_change")
        if not _known(change):
            no_amount = row.get("value_source") in ("list price", "median")
            return "no amount in the CRM yet" if no_amount else None
        if change == 0:
            return "amount unchanged since first recorded"
        pct = _cut(change) if change < 0 else _whole(100 * np.expm1(change))
        if pct == 0:
            return "amount changed by less than 1% since first recorded"
        return f"amount {'cut' if change < 0 else 'raised'} {pct:,}% since first recorded"
    if key == "deal size":
        v, median = row.get("value_used"), row.get("median_value")
        if not _known(v):
            return None
        text = f"deal size {money(v)}"
        source = row.get("value_source", "amount")
        if source == "list price":
            text += " (list price: no amount in the CRM)"
        elif source == "median":
            text += " (no amount in the CRM: the median of similar deals)"
        if _known(median) and median > 0 and v >= 1.5 * median:
            return text + f", {v / median:,.1f} times the median open deal ({money(median)})"
        return text + (f"; the median open deal is {money(median)}" if _known(median) else "")
    if key == "owner change":
        n, owner = row.get("owner_changes"), row.get("owner")
        if not _known(n):
            return None
        if _whole(n) < 1:
            return "no change of owner on record"
        return f"handed over: owner changed {_times(n)}" + (
            f", now {owner}" if _known(owner) else ""
        )
    if key in ("rep", "product"):
        name = row.get("owner" if key == "rep" else "product")
        rate = row.get("rep_win_rate" if key == "rep" else "product_win_rate")
        base = row.get("base_rate")
        if not _known(name):
            text = f"{key} not recorded"
        elif not _known(rate):
            text = f"{name}: no win rate yet"
        elif key == "rep":
            text = f"{name}'s past win rate {rate:.0%}"
        else:
            text = f"{name} deals win {rate:.0%}"
        return text + (f" (all {key}s: {base:.0%})" if _known(base) else "")
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
            text += f" (CRM probability {_n(p)}%)"
        elif _known(default):
            text += f" (default probability {_n(default)}%)"
        return text + (f", forecast category {cat}" if _known(cat) else "")
    if key == "source":
        kind, lead = row.get("deal_type"), row.get("lead_source")
        parts = [f"{kind}" if _known(kind) else "", f"lead source {lead}" if _known(lead) else ""]
        return ", ".join(p for p in parts if p) or None
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
        # the risk of a deal at the base rate; where that is none (no base rate, or no deal
        # closed so far was lost) the deal's own risk, which no single factor explains
        base = row.get("base_rate")
        lost = 100 * WEIGHTS["loss"] * (1 - base) if _known(base) else 0.0
        text = "no single factor stands out"
        if lost > 0:
            text += f": {1 - base:.0%} of the deals closed so far were lost"
        else:
            total = row.get("risk")
            lost = float(total) if _known(total) and total > 0 else 0.0
        out = [Reason("base rate", text, 0.0, lost, value * lost / 100), *out[: top - 1]]
    return out


ACTIONS = {
    "activity": "Re-engage: no activity for {quiet}. Book a call with the buyer this week.",
    "time in stage": "In {stage} for {in_stage}: agree the step that moves it forward with the "
    "buyer, or requalify it.",
    "next step": "Record the next step with the buyer, with a date.",
    "pushes": "Close date moved {pushes}: confirm the decision date and the steps to signature "
    "with your champion.",
    "time open": "Open {age}, longer than 90% of {won} took ({typical}): requalify "
    "(budget, authority, need, timing) or agree a mutual close plan.",
    "older than any": "Open {age}, longer than any deal took to close ({longest}): close it as "
    "lost, or requalify it (budget, authority, need, timing) and agree a close date with the "
    "buyer.",
    "expected close": "The expected close date passed {overdue} ago: update it with the buyer's "
    "real timeline.",
    "amount": "The amount was cut {cut}%: confirm the scope and that the discount is approved.",
    "owner change": "New owner: make sure the buyer knows who runs the deal now and that the "
    "handover notes are complete.",
    "stage": "Still early ({stage}): qualify it (budget, authority, need, timing) before counting "
    "on it.",
    "review": "Review this deal with your manager: its circumstances ({what}) weigh on it.",
    "none": "Keep a dated next step with the buyer.",
}


def _older_than_any(row) -> bool:
    """Open longer than any deal closed so far took (MavenTech's stale deals): the model's
    near-zero chance for them needs these words, not "longer than 90% of won deals"."""
    age, longest = row.get("age_days"), row.get("longest_cycle")
    return _known(age) and _known(longest) and _whole(age) > _whole(longest)


def _longest(row) -> str:
    return _plural(_whole(row["longest_cycle"]), "day")


def _time_open_action(row) -> str:
    age = _plural(row["age_days"], "day")
    if _older_than_any(row):
        return ACTIONS["older than any"].format(age=age, longest=_longest(row))
    typical = _plural(_up(row["typical_cycle"]), "day")
    return ACTIONS["time open"].format(age=age, won=_won(row), typical=typical)


# key -> (when the action applies, given the deal's facts as shown; the action's words)
_RULES = {
    "activity": (lambda r: _known(r.get("days_since_activity")) and _whole(r["days_since_activity"]) >= 7,
                 lambda r: ACTIONS["activity"].format(quiet=_plural(r["days_since_activity"], "day"))),
    "time in stage": (lambda r: _known(r.get("days_in_stage")) and _known(r.get("stage"))
                      and _overdue_stage(r),
                      lambda r: ACTIONS["time in stage"].format(
                          stage=r["stage"], in_stage=_plural(r["days_in_stage"], "day"))),
    "next step": (lambda r: _num(r, "has_next_step") == 0, lambda r: ACTIONS["next step"]),
    "pushes": (lambda r: _known(r.get("close_pushes")) and _whole(r["close_pushes"]) >= 1,
               lambda r: ACTIONS["pushes"].format(pushes=_times(r["close_pushes"]))),
    "time open": (lambda r: _older_than_any(r) or (
                      _known(r.get("age_days")) and _known(r.get("typical_cycle"))
                      and _whole(r["age_days"]) > _up(r["typical_cycle"])),
                  _time_open_action),
    "expected close": (lambda r: _known(r.get("days_to_expected_close"))
                       and _whole(r["days_to_expected_close"]) < 0,
                       lambda r: ACTIONS["expected close"].format(
                           overdue=_plural(-r["days_to_expected_close"], "day"))),
    "amount": (lambda r: _cut(r.get("value_change")) >= 1,
               lambda r: ACTIONS["amount"].format(cut=_cut(r.get("value_change")))),
    "owner change": (lambda r: _known(r.get("owner_changes")) and _whole(r["owner_changes"]) >= 1,
                     lambda r: ACTIONS["owner change"]),
    "stage": (_early, lambda r: ACTIONS["stage"].format(stage=r["stage"])),
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
