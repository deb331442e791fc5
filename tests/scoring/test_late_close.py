"""How late won deals close after the date the CRM showed: learned per day from the deals won
before it, each from its last open export, and what a passed close date adds to risk is judged
against it (a Salesforce org whose close dates only move when pushed wins most deals months
after them: there a passed date is the habit, not a sign that nobody steers the deal)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from scoring.crm import prepare
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


_COLS = [
    "deal_id",
    "as_of",
    "owner",
    "product",
    "account",
    "stage",
    "status",
    "engage_date",
    "close_date",
    "value",
]


def _crm(history: list[tuple], deals: list[tuple]):
    """A Crm from hand-written rows: (deal, day, status, close date shown) and (deal, status,
    close date)."""
    h = pd.DataFrame([(i, day, "rep", "P", "acc", "S1", st, "2023-12-01", close, 100.0)
                      for i, day, st, close in history], columns=_COLS)  # fmt: skip
    d = pd.DataFrame([(i, "rep", "P", "acc", "S1", st, "2023-12-01", close, 100.0)
                      for i, st, close in deals], columns=_COLS[:1] + _COLS[2:])  # fmt: skip
    for frame in (h, d):
        for c in ("as_of", "engage_date", "close_date"):
            if c in frame:
                frame[c] = pd.to_datetime(frame[c])
    none = pd.DataFrame()
    activity = pd.DataFrame({"deal_id": pd.Series([], dtype=str),
                             "activity_date": pd.Series([], dtype="datetime64[us]")})  # fmt: skip
    return prepare({"history": h, "deals": d, "activity": activity, "products": none,
                    "teams": none, "accounts": none})  # fmt: skip


def test_a_deal_reopened_later_is_judged_by_what_was_shown_before_its_first_close():
    """A deal won, reopened with a new date months later and won again counts as won at its
    first close (`closed_on`): its lateness is against the date shown before that, not a date
    shown only after it (which a day between the two would not have known)."""
    crm = _crm(
        [("R", "2024-01-01", "open", "2024-01-20"), ("R", "2024-01-22", "won", "2024-01-21"),
         ("R", "2024-03-01", "open", "2024-09-30"), ("R", "2024-03-15", "won", "2024-03-14"),
         ("S", "2024-01-01", "open", None), ("S", "2024-01-08", "open", "2024-02-01"),
         ("S", "2024-02-20", "lost", "2024-02-19"), ("T", "2024-01-01", "open", "2024-02-01")],
        [("R", "won", "2024-03-14"), ("S", "lost", "2024-02-19"), ("T", "open", None)],
    )  # fmt: skip
    late = crm.deals.set_index("deal_id")["late_days"]
    closed = crm.deals.set_index("deal_id")["closed_on"]
    assert closed["R"] == pd.Timestamp("2024-01-22")
    assert late["R"] == 2.0  # 2024-01-22 against 2024-01-20, not against 2024-09-30
    assert late["S"] == (closed["S"] - pd.Timestamp("2024-02-01")).days  # its last open date
    assert np.isnan(late["T"])  # still open


def test_a_far_date_does_not_wrap_around():
    crm = _crm([("A", "2024-01-01", "open", "9999-12-31"), ("A", "2024-01-26", "won", "2024-01-25")],
               [("A", "won", "2024-01-25")])  # fmt: skip
    assert crm.deals["late_days"].iloc[0] < -2_900_000  # decades early, not wrapped to late


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
