"""The calendar of a forecast: weeks (Monday to Sunday), months and quarters from the as-of date to
the end of next quarter. Pure; day offsets count from the day after the as-of date."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.montecarlo import Periods


def quarter_name(day: pd.Timestamp) -> str:
    return f"{day.year}-Q{day.quarter}"


def current_quarter(as_of: pd.Timestamp) -> pd.Period:
    """The quarter still to play: the as-of date's, or the next one when the as-of date is a
    quarter's last day (MavenTech ends on 2017-12-31: its "this quarter" is 2018-Q1)."""
    return (pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)).to_period("Q")


def calendar(as_of: pd.Timestamp, quarters: int = 2) -> tuple[Periods, pd.DataFrame]:
    """Periods for this quarter and the next `quarters - 1`, and their calendar bounds (the
    current ones start before the as-of date: their revenue won so far is actual, not forecast).
    Kinds: week, month, quarter, and cumulative (from this quarter's start to each week's end)."""
    as_of = pd.Timestamp(as_of).normalize()
    q_start = current_quarter(as_of).start_time
    end = (current_quarter(as_of) + (quarters - 1)).end_time.normalize()
    first = as_of + pd.Timedelta(days=1)
    rows = []
    for kind, freq in (("week", "W-SUN"), ("month", "M"), ("quarter", "Q")):
        for period in pd.period_range(first, end, freq=freq):
            start, stop = period.start_time.normalize(), period.end_time.normalize()
            if kind == "week":
                name = f"week of {start.date()}"
            elif kind == "month":
                name = f"{start:%Y-%m}"
            else:
                name = quarter_name(start)
            rows.append({"name": name, "kind": kind, "start": start, "end": stop})
    # cumulative periods (quarter start to each week's end), for a fan chart of the running total
    weeks = [r for r in rows if r["kind"] == "week"]
    for r in weeks:
        rows.append({"name": f"to {r['end'].date()}", "kind": "cumulative", "start": q_start,
                     "end": r["end"]})  # fmt: skip
    bounds = pd.DataFrame(rows)
    offset = lambda d: (max(d, first) - first).days  # noqa: E731
    periods = Periods(
        names=tuple(bounds["name"]),
        kind=tuple(bounds["kind"]),
        start=np.array([offset(d) for d in bounds["start"]], dtype=np.int64),
        end=np.array([(d - first).days + 1 for d in bounds["end"]], dtype=np.int64),
    )
    assert q_start <= first
    return periods, bounds


def won_to_date(deals: pd.DataFrame, bounds: pd.DataFrame, as_of: pd.Timestamp) -> np.ndarray:
    """Revenue already won in each period, up to and including the as-of date. Summed by day
    first, then each period's days: a period a boolean pass over the wins was 60 passes over a
    million-deal quarter's 240,000 wins per scope."""
    won = deals[(deals["status"] == "won") & (deals["close_date"] <= as_of)]
    if won.empty:
        return np.zeros(len(bounds))
    by_day = won["value"].fillna(0).groupby(won["close_date"].dt.normalize()).sum()
    days = by_day.index.to_numpy()
    # a period's revenue: the difference of the days' running totals at its two ends
    cum = np.r_[0.0, by_day.to_numpy(float).cumsum()]
    start = bounds["start"].dt.normalize().to_numpy(days.dtype)
    end = np.minimum(bounds["end"], pd.Timestamp(as_of)).dt.normalize().to_numpy(days.dtype)
    lo, hi = np.searchsorted(days, start, "left"), np.searchsorted(days, end, "right")
    return np.where(hi > lo, cum[hi] - cum[np.minimum(lo, hi)], 0.0)


def won_this_quarter(deals: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The deals won in the quarter under way up to the as-of date, by close date: the fan
    chart's "won so far"."""
    start = current_quarter(as_of).start_time
    won = deals[(deals["status"] == "won") & (deals["close_date"] >= start)
                & (deals["close_date"] <= as_of)]  # fmt: skip
    return won.sort_values("close_date")
