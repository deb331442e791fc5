"""The forecast's track record (issue 14): each closed quarter's actual against the forecast and
the calls in force 13, 8 and 4 weeks before its end, on constructed cases whose answers are
known."""

from __future__ import annotations

import pandas as pd
import pytest

from forecasting.track_record import (
    TOLERANCE_DAYS,
    closed_quarters,
    in_force,
    quarter_end,
    track_record,
)

Q = "2025-Q1"
END = pd.Timestamp("2025-03-31")
CALLS = ["quarter", "caller", "user_id", "amount", "as_of"]


def day(weeks: int, days_before: int = 0) -> str:
    """The day `weeks` weeks before the quarter's end, `days_before` days earlier."""
    return (END - pd.Timedelta(weeks=weeks, days=days_before)).date().isoformat()


def made(*rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["quarter", "as_of", "p10", "p50", "p90", "target"])


def test_quarter_end_and_which_quarters_are_over():
    assert quarter_end(Q) == END and quarter_end("2024-Q4") == pd.Timestamp("2024-12-31")
    assert closed_quarters({Q, "2024-Q4", "2025-Q2"}, END) == ["2024-Q4", Q]
    assert closed_quarters({Q}, END - pd.Timedelta(days=1)) == []


def test_the_forecast_in_force_is_the_latest_made_by_the_horizons_day_and_not_too_old():
    rows = made(
        (Q, day(13, 20), 1, 2, 3, None),  # too old for 13 weeks (over the tolerance)
        (Q, day(13, 3), 1, 3, 5, None),  # 13 weeks out
        (Q, day(12), 1, 4, 5, None),  # after the 13-week day: not 13 weeks out
        (Q, day(8, TOLERANCE_DAYS), 1, 5, 9, None),  # exactly the tolerance: too old
        (Q, day(4), 1, 6, 9, None),  # on the 4-week day itself
    )
    assert in_force(rows, Q, 13)["p50"] == 3
    assert in_force(rows, Q, 8) is None
    assert in_force(rows, Q, 4)["p50"] == 6


def test_a_closed_quarter_is_compared_with_each_forecast_and_call():
    forecasts = made(
        (Q, day(13), 80.0, 100.0, 120.0, 150.0),
        (Q, day(8), 100.0, 130.0, 140.0, 150.0),
        (Q, day(4), 121.0, 123.0, 125.0, 150.0),  # a narrow band that missed
        ("2025-Q2", day(4), 1.0, 2.0, 3.0, None),  # not over: not checked
    )
    calls = pd.DataFrame(
        [
            (Q, "Ann", "U1", 90.0, day(14)),  # Ann's call by the 13-week day
            (Q, "Bo", "U2", 150.0, day(10)),  # Bo calls after it: only from 8 weeks out
            (Q, "Ann", "U1", 125.0, day(6)),  # Ann changes her call: from 4 weeks out
        ],
        columns=CALLS,
    )
    record = track_record("all", forecasts, calls, {Q: 120.0})
    by_weeks = {c.weeks: c for c in record.checked}
    assert set(by_weeks) == {13, 8, 4} and all(c.quarter == Q for c in record.checked)
    assert by_weeks[13].error == pytest.approx(-1 / 6) and by_weeks[13].held
    assert by_weeks[8].error == pytest.approx(1 / 12) and by_weeks[8].held
    assert not by_weeks[4].held and by_weeks[4].error == pytest.approx(3 / 120)
    s13, s8, s4 = record.summaries()
    assert (s13.quarters, s13.held, s13.above) == (1, 1, 0)
    assert (s8.quarters, s8.held, s8.above) == (1, 1, 1)
    assert (s4.quarters, s4.held, s4.above) == (1, 0, 1)
    assert s13.p50_error == pytest.approx(1 / 6)
    said = {(c.weeks, c.caller): c.amount for c in record.calls}
    assert said == {(13, "Ann"): 90.0, (8, "Ann"): 90.0, (8, "Bo"): 150.0,
                    (4, "Ann"): 125.0, (4, "Bo"): 150.0}  # fmt: skip
    assert s8.calls == 2 and s8.call_error == pytest.approx((30 / 120 + 30 / 120) / 2)
    assert s4.call_error == pytest.approx((5 / 120 + 30 / 120) / 2)
    assert by_weeks[13].target == 150.0


def test_nothing_won_gives_no_percentage_and_no_forecast_no_row():
    record = track_record("all", made((Q, day(8), 0.0, 10.0, 20.0, None)),
                          pd.DataFrame(columns=CALLS), {Q: 0.0})  # fmt: skip
    (only,) = record.checked
    assert only.weeks == 8 and only.error is None and only.held
    s13, s8, _ = record.summaries()
    assert s13.quarters == 0 and s8.quarters == 1 and s8.p50_error is None


def test_a_quarter_with_no_forecast_at_any_horizon_has_no_record():
    late = made((Q, day(2), 1.0, 2.0, 3.0, None))  # two weeks out only: no horizon's forecast
    record = track_record("all", late, pd.DataFrame(columns=CALLS), {Q: 2.0})
    assert record.actuals == {} and record.checked == [] and record.summaries()[0].quarters == 0
