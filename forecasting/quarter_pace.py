"""Wins bunch at the end of a quarter: the calendar's pace for the forecast's close days.

Pure. The time-to-win curve (`forecasting.timing`) counts days from a deal's start and knows
nothing of the calendar. A sales team's wins do: in MavenTech, 2,076 of the 4,238 wins closed in
a quarter's last month and 872 in its first (the quarter-end push). Forecast from early in a
quarter, the curve timed too many wins in the next 4 weeks and too few at the quarter's end, and
the bands widened to hold both kinds of miss.

How: a time change. Each calendar day runs at the pace of its month of the quarter (the months'
relative daily rates of wins, 1 on average over a quarter). A close the curve times x days out,
in pace days, falls on the calendar day where the running sum of the paces passes x. A close
the curve times on whole day u is first spread evenly over [u, u + 1): rounded to whole days,
a week at a pace of 0.7 would hold 4 or 5 pace days instead of 4.9, 20% of its closes too few
or too many. The paces come from the wins of the complete quarters before the as-of date, and
only where the bunching is clear: a company whose wins are even gets a pace of 1 everywhere and
the same numbers as without (on the generated worlds, which have no bunching, paces fitted from
chance alone, 0.93-1.11, made the Salesforce-style worlds' pooled 4-week interval score 5% worse).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MONTHS = 3  # months in a quarter
# the bunching is clear when the months' wins depart from their days' shares by more than chance
# would in 1 case of 100 (chi-square, 2 degrees of freedom); the paces are then shrunk towards 1
# by 1 - 2 / chi-square (James-Stein), nearly nothing where it is as plain as MavenTech's
CLEAR = 9.21
MIN_PACE = 0.2  # no month is that quiet; keeps the clock moving
CLOCK_DAYS = 1100  # the clock's table: past any forecast's horizon (two quarters and more)


@dataclass(frozen=True)
class PaceClock:
    """Pace time at the start of each calendar day after the as-of date: `tau[d]` for day d
    (day 0 is the day after the as-of date, as in `montecarlo.Periods`); `tau[0]` is 0."""

    tau: np.ndarray  # (days + 1,), increasing

    def _last(self) -> float:
        return float(self.tau[-1] - self.tau[-2])

    def at(self, days: np.ndarray) -> np.ndarray:
        """Calendar days (whole, any) -> pace time at their start; beyond the table at its last
        day's pace, before day 0 at 1 a day."""
        d = np.asarray(days, float)
        n = len(self.tau) - 1
        inside = np.interp(d, np.arange(n + 1), self.tau)
        return np.where(d > n, self.tau[-1] + (d - n) * self._last(), np.where(d < 0, d, inside))

    def calendar_days(self, x: np.ndarray) -> np.ndarray:
        """Pace times -> the calendar day each falls in (`tau[d] <= x < tau[d + 1]`), float32;
        an infinite or missing time stays as it is."""
        x = np.asarray(x, np.float64)
        n = len(self.tau) - 1
        d = np.searchsorted(self.tau, x, side="right") - 1.0
        with np.errstate(invalid="ignore"):
            beyond = n + np.floor((x - self.tau[-1]) / self._last())
        d = np.where(x >= self.tau[-1], beyond, d)
        return np.where(np.isfinite(x), d, x).astype(np.float32)

    def chances(self, sampler, edge_sets: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """As `sampler.atom_chances_at(edge_sets)` (calendar days, the first edge at 0 or
        before), for closes drawn on whole day u, spread over [u, u + 1) and moved to the
        calendar: the chance of closing before pace time f is C(floor f) plus the share
        frac(f) of day floor(f)'s, C read at whole days."""
        cuts = [self.at(edges) for edges in edge_sets]
        whole = [np.unique(np.r_[min(0.0, np.floor(f[0])), np.floor(f), np.floor(f) + 1.0])
                 for f in cuts]  # fmt: skip
        cls, parts = sampler.atom_chances_at(whole)
        out = []
        for f, w, ch in zip(cuts, whole, parts, strict=True):
            cum = np.hstack([np.zeros((len(ch), 1)), np.cumsum(ch, axis=1)])  # P(u < w[k])
            lo = np.searchsorted(w, np.floor(f))
            frac = (f - np.floor(f))[None, :]
            below = cum[:, lo] + (cum[:, lo + 1] - cum[:, lo]) * frac
            below[:, 0] = 0.0  # the first stretch takes every close before it
            out.append(np.diff(below, axis=1))
        return cls, out

    def new_deal_rates(self, cdf_from_start, groups: list, slip: int,
                       edges: np.ndarray) -> np.ndarray:  # fmt: skip
        """(groups, stretches): the new deals won per stretch of calendar days per deal born a
        day over the horizon (days 0 to edges[-1] - 1), each closing its curve's time after its
        birth in pace days, then `slip` days later (sooner where negative, never before its
        birth). `cdf_from_start(days, group)`: P(closed by day d), d = 0..days-1."""
        horizon = int(edges[-1])
        births = np.arange(horizon)
        start = self.at(births)[:, None]
        ends = np.asarray(edges, float)[None, :]
        took = np.maximum(self.at(ends - slip) - start, 0.0)  # pace days from birth to the edge
        after = ends > births[:, None]  # an edge at or before the birth: nothing closed by then
        longest = int(np.ceil(took.max())) + 2 if took.size else 2
        out = np.zeros((len(groups), len(edges) - 1))
        for g, group in enumerate(groups):
            # P(D + v < y) for whole-day D and v uniform on [0, 1): P(D < k) between whole k
            before = np.r_[0.0, cdf_from_start(longest, group)]
            closed = np.interp(took, np.arange(len(before)), before) * after
            out[g] = np.diff(closed.sum(axis=0))
        return out


@dataclass(frozen=True)
class QuarterPace:
    """The relative daily pace of wins in each month of a quarter (1 on average over one), from
    `quarters` complete quarters."""

    months: tuple[float, ...] = (1.0,) * MONTHS
    quarters: int = 0

    @staticmethod
    def fit(deals: pd.DataFrame, as_of) -> QuarterPace:
        """From the deals' wins (`status`, `closed_on`) in the quarters that ended by `as_of`
        and began on or after the first close the CRM knows (a quarter half seen would look
        bunched): each month's wins over those its share of days would give (each quarter's
        wins spread by its months' days, summed over the quarters), where that is clear
        (`CLEAR`)."""
        as_of = pd.Timestamp(as_of)
        closed = deals["closed_on"]
        known = closed[closed <= as_of]
        if known.empty:
            return QuarterPace()
        won = closed[(deals["status"] == "won") & (closed <= as_of)]
        # wins per calendar month, counted once (a million deals: no per-quarter scans)
        month = won.to_numpy(dtype="datetime64[M]").astype(np.int64)
        base = int(month.min()) if len(month) else 0
        per_month = np.bincount(month - base) if len(month) else np.zeros(0, np.int64)
        seen, even = np.zeros(MONTHS), np.zeros(MONTHS)
        n = 0
        for q in pd.period_range(known.min(), as_of, freq="Q"):  # with a win or not
            if q.start_time < known.min() or q.end_time.normalize() > as_of:
                continue
            first = q.asfreq("M", "start")
            at = (
                int(np.datetime64(first.start_time, "M").astype(np.int64))
                - base
                + np.arange(MONTHS)
            )
            counts = np.array([per_month[a] if 0 <= a < len(per_month) else 0 for a in at], float)
            days = np.array([(first + k).days_in_month for k in range(MONTHS)], float)
            seen += counts
            even += counts.sum() * days / days.sum()
            n += 1
        if n == 0:
            return QuarterPace()
        if even.sum() == 0:  # whole quarters without a win
            return QuarterPace(quarters=n)
        chi2 = float(((seen - even) ** 2 / even).sum())
        if chi2 < CLEAR:
            return QuarterPace(quarters=n)
        pace = np.maximum(1.0 + (seen / even - 1.0) * (1.0 - (MONTHS - 1) / chi2), MIN_PACE)
        pace /= (pace * even).sum() / even.sum()  # 1 on average again, after the floor
        return QuarterPace(tuple(float(p) for p in pace), n)

    def text(self) -> str:
        """The pace in words, for the forecast's reports."""
        if self.quarters == 0:
            return "No whole quarter of wins yet: closes are timed without the calendar."
        whole = "quarter" if self.quarters == 1 else "quarters"
        if self.flat:
            return (f"Wins come about evenly through a quarter's months (from {self.quarters} whole "
                    f"{whole}): closes are timed without the calendar.")  # fmt: skip
        a, b, c = self.months
        return (f"Wins in a quarter's first, second and third months came at {a:.2f} / {b:.2f} / "
                f"{c:.2f} times its average daily pace (the wins of {self.quarters} whole {whole}, "
                "drawn towards an even pace by how sure they are); the forecast times the "
                "closes of deals not timed by stage, and of new deals, by it.")  # fmt: skip

    @property
    def flat(self) -> bool:
        return all(p == 1.0 for p in self.months)

    def clock(self, as_of, days: int = CLOCK_DAYS) -> PaceClock | None:
        """The clock from the day after `as_of` over `days` days; None where the pace is flat."""
        if self.flat:
            return None
        dates = pd.date_range(pd.Timestamp(as_of) + pd.Timedelta(days=1), periods=days)
        pace = np.asarray(self.months)[(dates.month.to_numpy() - 1) % MONTHS]
        return PaceClock(np.r_[0.0, np.cumsum(pace)])
