"""The forecast's track record (issue 14): each closed quarter's actual against what the bot and
the managers said of it 13, 8 and 4 weeks before it ended. Pure.

Why: a forecast nobody can check is a forecast nobody should trust; Gong publishes its accuracy
and leaders ask "how good was it last time?" before they lean on this quarter's number. Every
forecast a run gives is saved (`dataset.score_runs.save_forecast`: scope, as-of, quantiles,
target), every call is kept (`bot.calls`); when a quarter is over, its actual (revenue won in it,
as the forecast counted it) is compared with the forecast in force at each horizon: the latest
one made on or before the day `weeks` weeks before the quarter's end, if one was made within
`TOLERANCE_DAYS` of that day (a forecast a month older than the horizon is not that horizon's).
A manager's call is checked the same way: each caller's latest call made by then.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

HORIZONS = (13, 8, 4)  # weeks before the quarter's end
TOLERANCE_DAYS = 14  # a forecast older than the horizon's day by more than this is not its


@dataclass(frozen=True)
class Checked:
    """One forecast of a closed quarter against its actual."""

    quarter: str
    weeks: int
    as_of: pd.Timestamp  # the day the forecast was made (its data's day)
    p10: float
    p50: float
    p90: float
    actual: float
    target: float | None = None

    @property
    def error(self) -> float | None:
        """(P50 - actual) / actual: above 0 when the forecast was too high; None for a quarter
        with nothing won (no percentage of nothing)."""
        return (self.p50 - self.actual) / self.actual if self.actual > 0 else None

    @property
    def held(self) -> bool:
        """The P10-P90 band held the actual."""
        return self.p10 <= self.actual <= self.p90


@dataclass(frozen=True)
class CallChecked:
    """One manager's call of a closed quarter against its actual."""

    quarter: str
    weeks: int
    caller: str
    amount: float
    as_of: pd.Timestamp
    actual: float

    @property
    def error(self) -> float | None:
        return (self.amount - self.actual) / self.actual if self.actual > 0 else None


@dataclass
class TrackRecord:
    """A scope's record over its closed quarters."""

    scope: str
    actuals: dict[str, float] = field(default_factory=dict)  # closed quarter -> revenue won
    checked: list[Checked] = field(default_factory=list)
    calls: list[CallChecked] = field(default_factory=list)

    def at(self, weeks: int) -> Summary:
        """The model's and the calls' record `weeks` weeks out."""
        mine = [c for c in self.checked if c.weeks == weeks]
        errors = [abs(c.error) for c in mine if c.error is not None]
        call_errors = [abs(c.error) for c in self.calls if c.weeks == weeks and c.error is not None]
        return Summary(
            weeks=weeks,
            quarters=len(mine),
            p50_error=sum(errors) / len(errors) if errors else None,
            held=sum(c.held for c in mine),
            above=sum(c.p50 > c.actual for c in mine),
            calls=len(call_errors),
            call_error=sum(call_errors) / len(call_errors) if call_errors else None,
        )

    def summaries(self) -> list[Summary]:
        return [self.at(w) for w in HORIZONS]


@dataclass(frozen=True)
class Summary:
    weeks: int
    quarters: int  # closed quarters with a forecast this far out
    p50_error: float | None  # mean |P50 - actual| / actual
    held: int  # of `quarters`, how many the P10-P90 band held
    above: int  # of `quarters`, how many the P50 was above the actual (bias: about half is fair)
    calls: int  # managers' calls checked this far out
    call_error: float | None  # their mean |call - actual| / actual


def quarter_end(quarter: str) -> pd.Timestamp:
    """ "2025-Q1" -> 2025-03-31."""
    return pd.Period(quarter, freq="Q").end_time.normalize()


def closed_quarters(quarters, today: pd.Timestamp) -> list[str]:
    """The quarters over by `today` (their last day is `today` or earlier), oldest first."""
    today = pd.Timestamp(today).normalize()
    return sorted({q for q in quarters if quarter_end(q) <= today})


def in_force(made: pd.DataFrame, quarter: str, weeks: int) -> pd.Series | None:
    """Of `made` (rows with an `as_of` column), the latest made on or before the day `weeks`
    weeks before the quarter's end and no more than TOLERANCE_DAYS before it; else None."""
    day = quarter_end(quarter) - pd.Timedelta(weeks=weeks)
    when = pd.to_datetime(made["as_of"])
    ok = made[(when <= day) & (when > day - pd.Timedelta(days=TOLERANCE_DAYS))]
    if ok.empty:
        return None
    return ok.loc[pd.to_datetime(ok["as_of"]).idxmax()]


def track_record(
    scope: str,
    forecasts: pd.DataFrame,
    calls: pd.DataFrame,
    actuals: dict[str, float],
) -> TrackRecord:
    """`forecasts`: a scope's saved quarter forecasts (quarter, as_of, p10, p50, p90, target);
    `calls`: its calls (quarter, caller, user_id, amount, as_of, in the order made); `actuals`:
    the revenue won in each closed quarter. Quarters not in `actuals` are not yet over; those
    with no forecast or call at any horizon are left out of the record's `actuals` too."""
    record = TrackRecord(scope, dict(actuals))
    for quarter, actual in sorted(actuals.items()):
        made = forecasts[forecasts["quarter"] == quarter]
        said = calls[calls["quarter"] == quarter] if len(calls) else calls
        for weeks in HORIZONS:
            row = None if made.empty else in_force(made, quarter, weeks)
            if row is not None:
                target = row.get("target")
                record.checked.append(
                    Checked(quarter, weeks, pd.Timestamp(row["as_of"]), float(row["p10"]),
                            float(row["p50"]), float(row["p90"]), float(actual),
                            None if target is None or pd.isna(target) else float(target))
                )  # fmt: skip
            day = quarter_end(quarter) - pd.Timedelta(weeks=weeks)
            if len(said):
                by_then = said[pd.to_datetime(said["as_of"]) <= day]
                # each caller's latest call by then (calls come in the order they were made)
                for _, c in by_then.groupby("user_id", sort=False).tail(1).iterrows():
                    record.calls.append(CallChecked(quarter, weeks, str(c["caller"]),
                                                    float(c["amount"]), pd.Timestamp(c["as_of"]),
                                                    float(actual)))  # fmt: skip
    # a quarter nobody forecast or called at any of the horizons has no record to show
    checked = {c.quarter for c in record.checked} | {c.quarter for c in record.calls}
    record.actuals = {q: v for q, v in record.actuals.items() if q in checked}
    return record
