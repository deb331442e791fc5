"""Monte Carlo revenue forecast: P10 / P50 / P90 by period, vectorised over deals and scenarios.

Pure, seeded and reproducible (generators spawned from the seed, one per chunk of scenarios; same
seed, same numbers, however many threads run the chunks).
In each scenario:
- a shock shared by every deal of the scenario moves all win odds together (logit + e, e ~ N(0,
  sigma)): good and bad quarters hit the whole pipeline at once, which independent draws over
  thousands of deals cannot show (their sum averages out and the band comes out far too narrow;
  sigma is fitted on backtest errors, see `backtest`);
- each open deal is won with its calibrated probability (after the shock) and, if won, closes
  after a time drawn from the timing model given its age;
- a slip shared by the scenario's deals moves their close dates together (d ~ N(0, slip)
  days, none before tomorrow nor, for a new deal, before it appears): a team's deals close
  sooner or later together (a quarter's end, a holiday, a slow procurement season), which
  moves the near weeks' revenue much more than a quarter's (`slip_days`; each deal follows it
  with chance `slip_share`, else keeps its own timing: in lockstep a week could lose every
  close at once; the backtest fits both with the shock, `backtest.GRID`);
- new deals arrive: a Poisson number per week at the recent rate, each with a value drawn from
  recent deals, the base win rate and the same timing from age 0, scaled at each age to what
  the deals born in view won by it (`Arrivals.won_scale`) (a leader's quarter includes deals
  not yet in the pipeline: 42-55% of next quarter's revenue in MavenTech).
Scenarios are drawn in chunks of float32 so memory stays bounded whatever their number.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from statistics import NormalDist

import numpy as np
import pandas as pd

from forecasting.many_small import Atoms, small_deals
from forecasting.quarter_pace import PaceClock
from forecasting.timing import KaplanMeier
from forecasting.warped_draws import Warped, within_columns

QUANTILES = (0.1, 0.5, 0.9)
# every percentile of each quarter's total is kept, so that a reader can tell the chance of
# reaching any target without simulating again (to the nearest percent)
GRID = np.linspace(0.0, 1.0, 101)


@dataclass(frozen=True)
class Periods:
    """Named, contiguous day ranges [start, end) counted from the as-of date (day 0 = tomorrow)."""

    names: tuple[str, ...]
    kind: tuple[str, ...]  # week | month | quarter
    start: np.ndarray
    end: np.ndarray

    @property
    def horizon(self) -> int:
        return int(self.end.max())


@dataclass(frozen=True)
class Arrivals:
    """New deals per week and what they are worth (empty = no new deals)."""

    per_week: float = 0.0
    values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    win_rate: float = 0.0
    groups: np.ndarray | None = None  # timing group (product) of each value: big deals are slow
    # by age from birth (the last for older): what new deals win by that age, as a multiple of
    # win_rate x the "km" timing's curve (`forecasting.inputs.new_deal_scale`); None: 1
    won_scale: np.ndarray | None = None

    def scaled(self, cdf: np.ndarray) -> np.ndarray:
        """`cdf` (by day from a new deal's birth: its chance to be closed, if won) times
        `won_scale` (its last value past its end), kept from falling with age (the scale is the
        pool's: on a product's own curve it can dip where that curve is flat, and a falling
        chance would make a stretch of days win fewer than none) and from making a win more
        than certain; a scale that is no number counts as 1."""
        scale = self.won_scale
        if scale is None or not len(scale) or not len(cdf):
            return cdf
        scale = np.nan_to_num(np.asarray(scale, float), nan=1.0, posinf=1.0, neginf=0.0)
        out = (
            np.asarray(cdf, float)
            * np.maximum(scale, 0.0)[np.minimum(np.arange(len(cdf)), len(scale) - 1)]
        )
        if self.win_rate > 0:
            out = np.minimum(out, 1.0 / self.win_rate)
        return np.maximum.accumulate(out)

    def unscaled(self) -> Arrivals:
        """The same arrivals timed by the curve as it is: the scale is measured against the
        "km" timing, and a forecast drawn with another has none."""
        return replace(self, won_scale=None)

    @property
    def drawn_per_week(self) -> float:
        """The new deals a week the simulation draws: none where no new deal's value is known
        (nothing to draw their worth from), whatever `per_week` counts. Said beside the
        forecast, so it must be what was drawn."""
        return float(self.per_week) if self.per_week > 0 and len(self.values) else 0.0


@dataclass
class Forecast:
    """Revenue quantiles per period (and per breakdown group), in the pipeline's currency."""

    periods: Periods
    table: pd.DataFrame  # one row per period: p10, p50, p90, mean, from_pipeline, from_new
    by_group: pd.DataFrame | None = None  # (group, period) rows: p10, p50, p90, mean
    scenarios: int = 0
    grids: dict[str, list[float]] = field(default_factory=dict)  # quarter -> its GRID percentiles
    totals: np.ndarray | None = None  # (scenarios, periods), only when asked for (`keep`)
    groups: GroupDraws | None = None  # each group's scenarios, only when asked for


@dataclass(frozen=True)
class GroupDraws:
    """Each breakdown group's revenue per scenario and period (new deals and the centre
    correction included): scopes made of groups add up their columns, scenario by scenario."""

    names: list[str]
    totals: np.ndarray  # (scenarios, groups, periods)
    from_pipeline: np.ndarray  # (groups, periods): mean revenue of today's open deals
    from_new: np.ndarray  # (groups, periods): mean revenue of deals not yet in the pipeline


MAX_CELLS = 262_144  # scenario x deal cells per chunk: 1 MB float32 arrays stay in cache
MIN_CHUNK = 16  # scenarios: fewer per chunk and Python's per-chunk overhead dominates
WORKERS = min(2, os.cpu_count() or 1)
SHOCK_LEVELS = 64  # the shared shock is drawn from 64 equiprobable quantiles of N(0, sigma)
SLIP_LEVELS = 9  # the shared slip, from 9 equiprobable quantiles of N(0, days), in whole days
# a pipeline of more open deals than DRAW_ALL: its EXACT_DEALS biggest are drawn one by one and
# the rest summed by their normal law (forecasting.many_small), with a breakdown into at most
# MAX_SUMMED_GROUPS groups (its covariance is per group)
DRAW_ALL, EXACT_DEALS, MAX_SUMMED_GROUPS = 20_000, 4_000, 12
# a group's small deals are summed only where it has this many: a stretch's normal sum is cut at
# zero, and a few hundred deals' (a rep's) would be cut often enough to raise its mean
MIN_SUMMED = 2_000
# new deals won in a stretch of days between period boundaries: where fewer than this many are
# expected, their number is drawn and their values one by one; where more, and enough for the
# sum of their values to be nearly symmetric (its skewness at most MAX_SKEW), the stretch's
# revenue is drawn from its normal law at once
EXACT_SUM_BELOW = 30
MAX_SKEW = 0.25  # a P10 or P90 off by about 2% of the spread at most (Cornish-Fisher)
NEW_CELLS = 1 << 20  # (scenario, group, stretch) cells of new deals drawn at a time: 8 MB arrays
NEW_DRAWS = 1 << 22  # new deals drawn one by one at a time, at most (each a few 8-byte arrays)


def _daily(
    scenario: np.ndarray,
    day: np.ndarray,
    value: np.ndarray,
    size: int,
    horizon: int,
    group: np.ndarray | None = None,
    n_groups: int = 1,
) -> np.ndarray:
    """Revenue per (scenario, group, day) of draws that all close inside the horizon."""
    g = 0 if group is None else group
    flat = (scenario * n_groups + g) * horizon + day.astype(np.int64)
    out = np.bincount(flat, weights=value, minlength=size * n_groups * horizon)
    return out.reshape(size, n_groups, horizon)  # fmt: skip


def shock_levels(sigma: float) -> np.ndarray:
    """Equiprobable quantiles of N(0, sigma): drawing one of them uniformly is drawing the shock
    (discretised finely enough for P10/P90), and lets win probabilities be tabulated per level."""
    if not sigma:
        return np.zeros(1)
    dist = NormalDist(0.0, sigma)
    return np.array([dist.inv_cdf((k + 0.5) / SHOCK_LEVELS) for k in range(SHOCK_LEVELS)])


def slip_levels(days: float) -> np.ndarray:
    """Equiprobable quantiles of N(0, days), rounded to whole days: drawing one uniformly is
    drawing the slip of every close date in a scenario (whole days keep the summed deals' and
    the new deals' close-time chances exact: their stretches are whole days). A slip too small
    to move any level a day is none: no level drawn, the same numbers as without."""
    if not np.isfinite(days) or days < 0:
        raise ValueError(f"slip_days must be a number of days, 0 or more: {days!r}")
    if not days:
        return np.zeros(1, dtype=np.int64)
    dist = NormalDist(0.0, days)
    levels = np.array([round(dist.inv_cdf((k + 0.5) / SLIP_LEVELS)) for k in range(SLIP_LEVELS)],
                      dtype=np.int64)  # fmt: skip
    return levels if levels.any() else np.zeros(1, dtype=np.int64)


def _to_periods(daily: np.ndarray, periods: Periods) -> np.ndarray:
    """(..., horizon) daily sums -> (..., periods) sums through cumulative sums."""
    cum = np.concatenate([np.zeros(daily.shape[:-1] + (1,)), daily.cumsum(axis=-1)], axis=-1)
    return cum[..., periods.end] - cum[..., periods.start]


def simulate(
    deals: pd.DataFrame,
    timing,
    periods: Periods,
    *,
    scenarios: int = 10_000,
    seed: int = 0,
    shock_sigma: float = 0.0,
    slip_days: float = 0.0,
    slip_share: float = 1.0,
    arrivals: Arrivals | None = None,
    by: str | None = None,
    scale: np.ndarray | None = None,
    keep: bool = False,
    group_arrivals: dict[str, Arrivals] | None = None,
    pace: PaceClock | None = None,
    samplers: dict | None = None,
) -> Forecast:
    """deals: columns value, win_prob, age, timing_group (and `by` if given). Day d of the
    horizon is the (d + 1)-th day after the as-of date. `slip_days`: the sd of the shared slip,
    in days, of the close dates of a scenario (none before tomorrow); `slip_share`: the chance
    each deal follows it (independently; 1: every deal). `scale`: a revenue multiplier per
    period (the centre correction fitted on past misses, `forecasting.bands`); `keep`: return
    every scenario's totals too (the backtest refits its bands on them).

    `group_arrivals`: the new deals of each `by` group, in place of `arrivals`; every group's
    scenarios are then returned (`Forecast.groups`), new deals included. `pace`: the calendar's
    pace of wins (`forecasting.quarter_pace`): every close the timing draws is moved to the
    calendar day its pace time falls in, before the slip; None: days as drawn. Not the deals
    timed by stage (`within_*` columns): their chances to close within 4 and 13 calendar weeks
    come from models that know the days to the quarter's end, and the pace would move them a
    second time.

    `samplers`: a dict the caller keeps while it simulates the same `deals` (not changed in
    between) with the same `timing` again (the backtest does at each of the 33 points of its
    shock grid): the deals' close-time samplers are built on the first call and taken from it
    after (they were 5.6 s of the main job's 12 s of simulating; the draws are the same)."""
    if group_arrivals is not None and by is None:
        raise ValueError("group_arrivals needs `by`: the groups they belong to")
    arrivals = arrivals or Arrivals()
    levels = shock_levels(shock_sigma)
    slips = slip_levels(slip_days)
    if not 0.0 <= slip_share <= 1.0:  # NaN too
        raise ValueError(f"slip_share must be a chance from 0 to 1: {slip_share!r}")
    if slip_share == 0.0:
        slips = np.zeros(1, dtype=np.int64)  # no deal follows it: no slip
    if by is not None:
        labels = deals[by].fillna("(none)").astype(str).to_numpy(dtype=object)
        names = sorted(set(labels.tolist()) | set(group_arrivals or ()))
        all_codes = np.searchsorted(np.asarray(names, dtype=object), labels)
    else:
        all_codes, names = None, []
    n_groups = max(1, len(names))
    horizon = periods.horizon
    atoms = Atoms.of(periods)
    exact, small = _split(deals, timing, all_codes, n_groups)
    codes = None if all_codes is None else all_codes[exact]
    kept = _kept(samplers, deals, timing, exact)
    value, p_table, sampler = _tabled(deals.iloc[exact], timing, levels,
                                      sampler=kept.get("exact"))  # fmt: skip
    kept["exact"] = sampler
    # deals timed by stage (all or none of them) are not paced: their models know the quarter
    paced = None if isinstance(sampler, Warped) else pace
    moved = paced is not None or len(slips) > 1  # the won cells' days change
    n = len(exact)
    rest = None
    if len(small):
        small_value, small_p, small_sampler = _tabled(deals.iloc[small], timing, levels,
                                                      lean=True, sampler=kept.get("small"))  # fmt: skip
        kept["small"] = small_sampler
        rest = small_deals(small_value, small_p, small_sampler, atoms,
                           None if all_codes is None else all_codes[small], n_groups, slips,
                           slip_share, paced)  # fmt: skip
    news = [arrivals]
    if group_arrivals is not None:
        news = [group_arrivals.get(g, Arrivals()) for g in names]
    new_deals = [(a, _NewDeals.of(a, timing, atoms, slips, slip_share, pace)) for a in news]
    chunk = int(max(MIN_CHUNK, min(scenarios, MAX_CELLS // max(n, 1))))
    sizes = [min(chunk, scenarios - first) for first in range(0, scenarios, chunk)]
    # one generator per chunk, spawned from the seed: the same numbers whatever runs them, so
    # the chunks can run on both cores (numpy releases the GIL on these array operations)
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(sizes))]

    def run(rng: np.random.Generator, size: int):
        level = rng.integers(0, len(levels), size)
        # no draw without a slip: the same numbers as before it existed
        shift = rng.integers(0, len(slips), size) if len(slips) > 1 else np.zeros(size, np.int64)
        prob = p_table[level]  # (size, n)
        u = rng.random((size, n), dtype=np.float32)
        won = u < prob
        # given a win (u < p), u / p is again uniform: it times the close, no second draw
        with np.errstate(divide="ignore", invalid="ignore"):
            days = sampler.dense_days(u / prob)
        # the won cells closing inside the horizon, by flat index (much cheaper than a 2-D
        # nonzero and 2-D gathers); chunks hold fewer than 2**32 cells
        if moved:  # the won cells alone are moved (a few of every ten), then kept by horizon
            flat = np.flatnonzero(won).astype(np.uint32)
        else:
            flat = np.flatnonzero(won & (days < horizon)).astype(np.uint32)
        sc = flat // np.uint32(n)
        deal = flat - sc * np.uint32(n)
        day = days.ravel()[flat]
        if paced is not None:  # a close on whole day u, spread over [u, u + 1), to the calendar
            x = np.floor(day)
            x += rng.random(len(x), dtype=np.float32)
            day = paced.calendar_days(x)
        if len(slips) > 1:
            slipped = slips[shift[sc]].astype(np.float32)
            if slip_share < 1.0:  # each deal follows the slip or keeps its own timing
                slipped *= rng.random(len(slipped), dtype=np.float32) < slip_share
            day = np.maximum(day + slipped, 0.0)
        if moved:
            inside = day < horizon
            sc, deal, day = sc[inside], deal[inside], day[inside]
        daily = _daily(sc.astype(np.int64), day, value[deal], size, horizon,
                       None if codes is None else codes[deal], n_groups)  # fmt: skip
        group_periods = _to_periods(daily, periods)  # (size, G, P)
        # (size, P), or (size, G, P) when each group has its own new deals
        new = np.stack([_new_deals(rng, size, a, g, periods, levels[level], shift)
                        for a, g in new_deals], axis=1)  # fmt: skip
        if group_arrivals is None:
            new = new[:, 0]
        if rest is not None:
            group_periods += rest.draw(rng, level, shift)
        return group_periods, new

    if len(sizes) == 1 or WORKERS == 1:
        parts = [run(r, size) for r, size in zip(rngs, sizes, strict=True)]
    else:
        with ThreadPoolExecutor(WORKERS) as pool:
            parts = list(pool.map(run, rngs, sizes))
    pipe_parts = [g.sum(axis=1) for g, _ in parts]
    group_parts = [g for g, _ in parts] if by is not None else []
    pipe = np.concatenate(pipe_parts)  # (S, P)
    group_new = None
    if group_arrivals is not None:
        group_new = np.concatenate([new for _, new in parts])  # (S, G, P)
        new = group_new.sum(axis=1)
    else:
        new = np.concatenate([new for _, new in parts])  # (S, P)
    if scale is not None:
        pipe, new = pipe * scale[None, :], new * scale[None, :]
        group_parts = [g * scale[None, None, :] for g in group_parts]
        if group_new is not None:
            group_new *= scale[None, None, :]
    total = pipe + new
    table = summary(periods, total, pipe.mean(axis=0), new.mean(axis=0))
    by_group = None
    if by is not None and group_arrivals is None:  # with them, every scenario is returned
        groups = np.concatenate(group_parts)  # (S, G, P)
        gq = np.quantile(groups, QUANTILES, axis=0)
        by_group = pd.DataFrame(
            [
                {"group": name, "period": periods.names[k], "kind": periods.kind[k],
                 "p10": gq[0, gi, k], "p50": gq[1, gi, k], "p90": gq[2, gi, k],
                 "mean": groups[:, gi, k].mean()}
                for gi, name in enumerate(names) for k in range(len(periods.names))
            ]
        )  # fmt: skip
    drawn = None
    if group_new is not None:
        group_pipe = np.concatenate(group_parts)
        means = group_pipe.mean(axis=0), group_new.mean(axis=0)
        group_pipe += group_new  # in place: (S, G, P) is 60 MB for 12 groups
        drawn = GroupDraws(names, group_pipe, *means)
    return Forecast(periods=periods, table=table, by_group=by_group, scenarios=scenarios,
                    grids=quarter_grids(total, periods), totals=total if keep else None,
                    groups=drawn)  # fmt: skip


def _kept(samplers: dict | None, deals: pd.DataFrame, timing, exact: np.ndarray) -> dict:
    """The samplers kept for these deals and timing, with these deals drawn one by one and the
    rest summed (`simulate`'s `samplers`; the grouping and new deals can change which are):
    the dict given, emptied first if it held another's (the objects themselves are compared,
    and kept in it, so that one freed and replaced at the same address is not mistaken for
    them); a new dict where none is given."""
    if samplers is None:
        return {}
    whose = samplers.get("for")
    if (whose is None or whose[0] is not deals or whose[1] is not timing
            or not np.array_equal(whose[2], exact)):  # fmt: skip
        samplers.clear()
        samplers["for"] = (deals, timing, exact)
    return samplers


def summary(periods: Periods, total: np.ndarray, from_pipeline: np.ndarray,
            from_new: np.ndarray) -> pd.DataFrame:  # fmt: skip
    """One row per period: the quantiles and mean of the scenarios' totals (S, P), and the mean
    revenue from today's pipeline and from new deals."""
    q = np.quantile(total, QUANTILES, axis=0)
    return pd.DataFrame(
        {
            "period": periods.names,
            "kind": periods.kind,
            "p10": q[0],
            "p50": q[1],
            "p90": q[2],
            "mean": total.mean(axis=0),
            "from_pipeline": from_pipeline,
            "from_new": from_new,
        }
    )


def quarter_grids(total: np.ndarray, periods: Periods) -> dict[str, list[float]]:
    """Each quarter's total at every GRID percentile, from the scenarios' totals (S, P)."""
    quarters = [k for k, kind in enumerate(periods.kind) if kind == "quarter"]
    grid = np.quantile(total[:, quarters], GRID, axis=0) if quarters else np.empty((len(GRID), 0))
    return {periods.names[k]: grid[:, i].tolist() for i, k in enumerate(quarters)}


def _tabled(deals: pd.DataFrame, timing, levels: np.ndarray, lean: bool = False,
            sampler=None):  # fmt: skip
    """(values, win probability per (shock level, deal), close-time sampler) of some deals;
    deals the timing says can no longer close get probability 0; `sampler`: theirs, built
    before for the same deals and timing (else built here). `lean`: the probabilities
    worked out one level at a time as they are read (`_ByLevel`: the summed deals, a million
    of them at 64 levels, were a 256 MB table and as much again while it was made)."""
    value = deals["value"].to_numpy(np.float64)
    p = np.clip(deals["win_prob"].to_numpy(np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore"):
        logit = np.log(p) - np.log1p(-p)
    ages, groups = deals["age"].to_numpy(), deals["timing_group"].to_numpy(dtype=object)
    columns = within_columns()
    if sampler is None and isinstance(timing, KaplanMeier) and set(columns) <= set(deals.columns):
        sampler = timing.sampler(ages, groups, deals[columns].to_numpy(float))  # by stage
    elif sampler is None:
        sampler = timing.sampler(ages, groups)
    can_close = np.broadcast_to(sampler.can_close(), (len(deals),))
    if lean:
        return value, _ByLevel(logit, levels, can_close), sampler
    p_table = (1.0 / (1.0 + np.exp(-(logit[None, :] + levels[:, None])))).astype(np.float32)
    p_table *= can_close[None, :]
    return value, p_table, sampler


@dataclass(frozen=True)
class _ByLevel:
    """The deals' win probabilities at each shock level, one level (a float64 row) at a time."""

    logit: np.ndarray
    levels: np.ndarray
    can_close: np.ndarray

    def __len__(self) -> int:
        return len(self.levels)

    def __iter__(self) -> Iterator[np.ndarray]:
        for level in self.levels:
            p = self.logit + level
            np.negative(p, out=p)
            with np.errstate(over="ignore"):
                np.exp(p, out=p)
            p += 1.0
            np.reciprocal(p, out=p)
            p *= self.can_close
            yield p


def _split(deals: pd.DataFrame, timing, codes: np.ndarray | None,
           n_groups: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(deals drawn one by one, deals summed by their normal law), as positions. Every deal is
    drawn up to DRAW_ALL deals; past that, the EXACT_DEALS biggest are, and the rest are summed
    (`forecasting.many_small`), with a timing that can tell each deal's close-time chances and
    a breakdown into few groups (the covariance is per group); a group with fewer than
    MIN_SUMMED deals left to sum has them all drawn."""
    everything = np.arange(len(deals))
    summable = isinstance(timing, KaplanMeier)  # its sampler tells the close-time chances
    if len(deals) <= DRAW_ALL or not summable or n_groups > MAX_SUMMED_GROUPS:
        return everything, everything[:0]
    order = np.argsort(-deals["value"].fillna(0.0).to_numpy(), kind="stable")
    exact, small = order[:EXACT_DEALS], order[EXACT_DEALS:]
    if codes is not None:
        few = np.bincount(codes[small], minlength=n_groups) < MIN_SUMMED
        drawn = few[codes[small]]
        exact, small = np.r_[exact, small[drawn]], small[~drawn]
    return np.sort(exact), np.sort(small)


@dataclass(frozen=True)
class _NewDeals:
    """The new deals of one set of arrivals, by timing group (product), prepared once per
    simulation (not per chunk)."""

    rate: np.ndarray  # (slips, groups, atoms): new deals won per stretch, at a win chance of 1
    mean: np.ndarray  # (groups,): the values' mean
    square: np.ndarray  # (groups,): the mean of the squared values (a sum's variance)
    need: np.ndarray  # (groups,): the wins expected in a stretch for its normal law
    drawn: float  # deals a scenario draws one by one at most (all won, none summed)
    values: np.ndarray  # every group's values, one after the other
    first: np.ndarray  # (groups,): where each group's values start in `values`
    count: np.ndarray  # (groups,): how many values each group has
    atoms: Atoms

    @staticmethod
    def of(arrivals: Arrivals, timing, atoms: Atoms, slips: np.ndarray, share: float = 1.0,
           pace: PaceClock | None = None) -> _NewDeals | None:  # fmt: skip
        """Each timing group (product) with its own close times and values: the quick closers
        of a horizon are the small deals, so one pooled curve with all values would overstate
        it; at each of `slips` (whole days: a close that much later, or sooner but never
        before the deal appears), which each deal follows with chance `share` (a thinned
        Poisson process stays Poisson: its rates mix); in `pace` time where given; each
        age's chance of a win scaled by `Arrivals.won_scale`. None: no new deals."""
        if arrivals.drawn_per_week <= 0:
            return None
        all_values = np.asarray(arrivals.values, np.float64)
        grouped = arrivals.groups is not None
        groups = arrivals.groups if grouped else np.zeros(len(all_values))
        names = pd.unique(groups)
        parts = [all_values[groups == g] for g in names]
        count = np.array([len(v) for v in parts])
        per_day = arrivals.per_week / 7.0 * count / len(all_values)
        horizon = int(atoms.edges[-1])

        def curve(days: int, g) -> np.ndarray:
            return arrivals.scaled(timing.cdf_from_start(days, g if grouped else None))

        if pace is None:
            most = int(max(0, -np.min(slips)))  # a slip sooner reads the curve that much further
            cdfs = np.array([curve(horizon + most, g) for g in names],
                            np.float64).reshape(len(names), horizon + most)  # fmt: skip
            at = lambda d: _slipped(cdfs, d, horizon, atoms.edges)  # noqa: E731
        else:
            at = lambda d: pace.new_deal_rates(curve, list(names), d, atoms.edges)  # noqa: E731
        by_atom = np.stack([at(int(d)) for d in slips])
        if share < 1.0:
            by_atom = share * by_atom + (1.0 - share) * at(0)
        square = np.array([np.mean(v * v) for v in parts])
        # a compound Poisson sum of lam wins has skewness E[v^3] / (E[v^2]^1.5 sqrt(lam)): a few
        # big deals among many small ones need far more wins than equal values before it is normal
        # (one deal of 10,000 among 99 of 1: the P50 of a week of 35 wins was 100 times too high)
        third = np.array([np.mean(v * v * v) for v in parts])
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = np.where(square > 0, third / square**1.5, 1.0)
        rate = per_day[None, :, None] * by_atom
        need = np.maximum(EXACT_SUM_BELOW, (rho / MAX_SKEW) ** 2)
        return _NewDeals(
            rate=rate,
            mean=np.array([v.mean() for v in parts]),
            square=square,
            need=need,
            drawn=float(np.minimum(rate, need[None, :, None]).sum(axis=(1, 2)).max()),
            values=np.concatenate(parts),
            first=np.r_[0, np.cumsum(count)[:-1]],
            count=count,
            atoms=atoms,
        )


def _slipped(cdfs: np.ndarray, slip: int, horizon: int, edges: np.ndarray) -> np.ndarray:
    """(groups, atoms): the new deals won per stretch of days per deal a day, their closes `slip`
    days later (sooner where negative, but never before the deal appeared): on day t, as many
    as closed by day t - slip without it (`cdfs`: P(closed by day d) from the deal's start)."""
    daily = np.zeros((len(cdfs), horizon))
    first = max(0, slip)
    if first < horizon:
        daily[:, first:] = cdfs[:, first - slip : horizon - slip]
    return np.add.reduceat(daily, edges[:-1], axis=1) if horizon else daily[:, :0]


def _new_deals(rng, size, arrivals: Arrivals, new: _NewDeals | None, periods: Periods,
               shock, shift: np.ndarray) -> np.ndarray:  # fmt: skip
    """Revenue per (scenario, period) from deals that do not exist yet.

    Arrivals are a Poisson process, uniform over the horizon; keeping the won ones and splitting
    them by close day keeps them Poisson, so the number of new deals of a group won on day d is
    Poisson(rate per day * P(won | shock) * P(closed by d - birth)), where the last factor summed
    over birth days is the timing CDF F(d); and the number won in a stretch of days between
    period boundaries (`Atoms`: every period is made of them) is Poisson with the days' sum,
    lam. Their values are drawn from recent deals. The groups where EXACT_SUM_BELOW or more wins
    are expected in a stretch, and enough for their sum to be nearly symmetric (`_NewDeals.need`),
    give its revenue a compound Poisson sum each, drawn together from the normal law with their
    summed mean and variance (lam * E[v], lam * E[v^2]); in the others each deal is drawn.
    Why: drawn day by day and deal by deal, new deals took 40% of a backtest's simulations on
    MavenTech and 3.6 s of a million-deal forecast's 7.5.
    """
    if new is None:
        return np.zeros((size, len(periods.names)))
    base = float(np.clip(arrivals.win_rate, 1e-6, 1 - 1e-6))
    p_won = 1.0 / (1.0 + np.exp(-(np.log(base / (1 - base)) + shock)))  # (size,)
    # (scenario, group, stretch) cells: a few thousand scenarios at a time, whatever the groups,
    # and no more deals drawn one by one than NEW_DRAWS (skewed values draw thousands a stretch)
    block = min(NEW_CELLS // max(new.rate[0].size, 1), int(NEW_DRAWS // max(new.drawn, 1.0)))
    block = max(1, block)
    revenue = np.concatenate([_new_revenue(rng, p_won[i : i + block], new, shift[i : i + block])
                              for i in range(0, size, block)])  # fmt: skip
    return revenue @ new.atoms.to_periods


def _new_revenue(rng, p_won: np.ndarray, new: _NewDeals, shift: np.ndarray) -> np.ndarray:
    """New deals' revenue per (scenario, stretch), for the scenarios whose new deals win with
    `p_won` and close at the slip level `shift`."""
    size, n_atoms = len(p_won), new.rate.shape[2]
    lam = p_won[:, None, None] * new.rate[shift]  # (size, groups, atoms)
    many = lam >= new.need[None, :, None]
    out = np.zeros(size * n_atoms)
    if many.any():
        summed = np.where(many, lam, 0.0)
        mean = np.einsum("sga,g->sa", summed, new.mean)
        var = np.einsum("sga,g->sa", summed, new.square)
        # a stretch's revenue is never below zero (the normal law's far tail would be)
        out += np.maximum(mean + np.sqrt(var) * rng.standard_normal((size, n_atoms)), 0.0).ravel()
        lam[many] = 0.0  # drawn: none of their deals is drawn again below
    cells = np.arange(size * n_atoms)
    for g in range(lam.shape[1]):
        counts = rng.poisson(lam[:, g, :]).ravel()
        cell = np.repeat(cells, counts)
        drawn = new.values[new.first[g] + rng.integers(0, new.count[g], len(cell))]
        out += np.bincount(cell, weights=drawn, minlength=size * n_atoms)
    return out.reshape(size, n_atoms)
