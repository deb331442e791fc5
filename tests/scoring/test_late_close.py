"""How late won deals close after the date the CRM showed: learned per day from the deals won
before it, each from its last open export, and what a passed close date adds to risk is judged
against it (a Salesforce org whose close dates only move when pushed wins most deals months
after them: there a passed date is the habit, not a sign that nobody steers the deal)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from scoring.rates import MIN_LATE, SLOW, _late_days, rates_before
from scoring.risk import risk_parts


def _late_by_hand(crm, t: pd.Timestamp) -> list[float]:
    """Each deal won before t: its close day minus the close date of its last open row."""
    h, d = crm.history, crm.deals
    shown = h[h["status"] == "open"].drop_duplicates("deal_id", keep="last")
    shown = shown.set_index("deal_id")["close_date"]
    won = d[(d["status"] == "won") & (d["closed_on"] < t)].set_index("deal_id")["closed_on"]
    late = (won - shown.reindex(won.index)).dt.days
    return [float(x) for x in late.dropna()]


def test_won_deals_lateness_is_learned_from_deals_won_before_the_day(generated):
    crm = generated["crm"]
    days = np.sort(crm.history["as_of"].unique())
    for t in (pd.Timestamp(days[len(days) // 3]), crm.data_end):
        late = _late_by_hand(crm, t)
        assert len(late) >= MIN_LATE
        learned = rates_before(crm, t).late_days
        # the 90th percentile as "90% of won deals closed within N days" needs it
        assert learned in late
        assert np.mean(np.array(late) <= learned) >= SLOW
        assert np.mean(np.array(late) < learned) < SLOW
    # deals won on or after a day change nothing said about it
    early = pd.Timestamp(days[len(days) // 3])
    before = rates_before(crm, early).late_days
    later = crm.deals["closed_on"] >= early
    assert (later & crm.deals["late_days"].notna()).any()
    saved = crm.deals["late_days"].copy()
    try:
        crm.deals.loc[later, "late_days"] = 1000.0
        assert rates_before(crm, early).late_days == before
        assert rates_before(crm, crm.data_end).late_days == 1000.0  # and the last day sees them
    finally:
        crm.deals["late_days"] = saved


def test_too_few_won_deals_say_nothing():
    wins = pd.DataFrame({"late_days": [5.0] * (MIN_LATE - 1) + [np.nan] * 5})
    assert math.isnan(_late_days(wins))
    assert _late_days(pd.DataFrame({"late_days": [5.0] * MIN_LATE})) == 5.0


def _overdue_points(days_past: float, late) -> float:
    one = np.array([1.0])
    parts = risk_parts(win_prob=one, value=one, median_value=1.0, age_days=one,
                       typical_cycle=one * 100, days_since_activity=one * 0,
                       days_in_stage=one * 0, typical_stage_days=one * 10,
                       close_pushes=one * 0, days_to_expected_close=-days_past * one,
                       late_days=late)  # fmt: skip
    return float(parts["stagnation"][0])


def test_a_passed_date_counts_only_beyond_how_late_won_deals_close():
    assert _overdue_points(45, 0.0) == 0.5  # as before: a quarter behind is the full sign
    assert _overdue_points(45, np.nan) == _overdue_points(45, 0.0)  # unknown: as before
    assert _overdue_points(45, -30.0) == _overdue_points(45, 0.0)  # early closers: as before
    assert _overdue_points(45, 60.0) == 0.0  # within the org's habit: no sign
    assert _overdue_points(105, 60.0) == 0.5
    assert _overdue_points(500, 60.0) == 1.0
    # the later won deals usually close, the less a passed date weighs; never more
    lates = np.linspace(-50, 300, 36)
    points = [_overdue_points(120, x) for x in lates]
    assert all(a >= b for a, b in zip(points, points[1:], strict=False))
