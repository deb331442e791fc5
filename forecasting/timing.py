"""When will an open deal close? Time-to-close distributions that respect how old a deal already is.

Pure. Chosen design, from the backtests (`forecasting/backtest.py`) and the measurements in
modeling-notes.md (engage-to-close days are bimodal; exponential, gamma, log-normal and Weibull fit
badly; an empirical distribution fits):

- `KaplanMeier`: the empirical survival curve S(d) = P(not closed after d days engaged), estimated
  with closed deals as events and open deals as *censored* at their current age (ignoring them
  would keep only the deals that closed, which are the fast ones, and make every deal look
  quicker than it is). One curve per product where it has enough events, else the pooled curve
  stretched to the pace of the product's own few deals (`time_scale`).
  A deal already open a days closes after d more days with probability 1 - S(a + d) / S(a); the
  mass the curve never sheds (S stays above 0 beyond the oldest closed deal) is the chance it
  never closes: stale deals (most of MavenTech's old "Engaging" ones) then forecast nothing.
  The forecast fits it on the time to a *win* (`time_to_win`, losses a competing end): it times
  only the deals it has drawn as won, and wins and losses take different times (the curve of any
  close timed the wins of the stages world too soon and of the inbound world too late; see
  benchmarks/forecast_error_parts.py).
- `Exponential`: the seed design's baseline (memoryless, mean = mean engage-to-close days), kept
  for the backtest comparison.
- `Fixed`: given close days, for tests and for known-timing scenarios.

Each gives a sampler for a set of deals; `sampler.days(u, deal)` turns uniforms into days from the
as-of date for the chosen deals (`np.inf`: does not close).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecasting.warped_draws import WITHIN_DAYS, Warped
from scoring.samples import at_risk_by_day

MAX_DAYS = 730  # the survival curves are kept on a daily grid up to two years
MIN_EVENTS = 50  # a product needs this many closed deals for a curve of its own
LEVELS = 4096  # resolution of the inverse-CDF tables used for sampling
NEVER = np.inf


def kaplan_meier(durations: np.ndarray, closed: np.ndarray, max_days: int = MAX_DAYS,
                 entry: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """S(d) for d = 0..max_days from durations (days) and event flags (False = censored); `entry`:
    the age each deal came under watch (`scoring.samples.entry_days`), 0 where None."""
    durations = np.clip(np.asarray(durations, dtype=float), 0, max_days).astype(int)
    closed = np.asarray(closed, dtype=bool)
    events = np.bincount(durations[closed], minlength=max_days + 1).astype(float)
    at_risk = at_risk_by_day(durations, max_days + 1, entry)  # still open at the start of day d
    with np.errstate(divide="ignore", invalid="ignore"):
        hazard = np.where(at_risk > 0, events / at_risk, 0.0)
    return np.cumprod(1.0 - hazard)


def time_to_win(durations: np.ndarray, closed: np.ndarray, won: np.ndarray,
                max_days: int = MAX_DAYS, entry: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """S_w(d) for d = 0..max_days: the share of the wins still to come after d days engaged, among
    deals that are won some day. Aalen-Johansen, with losses a competing end and deals still open
    censored: CIF_w(d) = sum over k <= d of S(k - 1) h_won(k); the wins of deals still open past
    the oldest age seen are counted as the oldest third of ages split their closes (as
    `scoring.samples.open_win_chance` does), and S_w(d) = 1 - CIF_w(d) / all wins. A deal open a
    days that is won closes within d more days with probability 1 - S_w(a + d) / S_w(a).

    Wins and losses do not take the same time: on the stages world lost deals close quickly and
    won ones slowly, so the curve of any close, applied to a deal's win, timed its win too soon.
    """
    durations = np.clip(np.asarray(durations, dtype=float), 0, max_days).astype(int)
    alive, h_won, h_end, _ = _win_hazards(durations, closed, won, max_days, entry)
    cif = np.cumsum(alive * h_won)
    if cif[-1] <= 0:
        return np.ones(max_days + 1)
    oldest = int(durations.max()) if len(durations) else 0
    tail = slice(2 * oldest // 3, oldest + 1)
    tail_ends = (alive * h_end)[tail].sum()
    all_ends = (alive * h_end).sum()
    share = (alive * h_won)[tail].sum() / tail_ends if tail_ends > 0 else cif[-1] / all_ends
    unresolved = alive[-1] * (1.0 - h_end[-1])
    total = cif[-1] + unresolved * share
    return 1.0 - cif / total


def won_by_age(durations: np.ndarray, closed: np.ndarray, won: np.ndarray,
               max_days: int = MAX_DAYS) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(CIF_w(d), at risk(d)) for d = 0..max_days: the chance that a deal just engaged has been
    won by age d (Aalen-Johansen, losses a competing end, deals still open censored), not
    divided by the wins to come as `time_to_win` is, and the deals still under watch at the
    start of each age. Read only up to the ages enough deals reached: it needs no guess of the
    wins past the oldest age seen, which with young deals is the fragile part."""
    durations = np.clip(np.asarray(durations, dtype=float), 0, max_days).astype(int)
    alive, h_won, _, at_risk = _win_hazards(durations, closed, won, max_days, None)
    return np.cumsum(alive * h_won), at_risk


def _win_hazards(durations: np.ndarray, closed, won, max_days: int, entry):
    """(open at the start of day d, win hazard, close hazard, under watch) by age d, from
    whole-day `durations` within max_days."""
    closed = np.asarray(closed, dtype=bool)
    won = np.asarray(won, dtype=bool) & closed
    n = max_days + 1
    wins = np.bincount(durations[won], minlength=n).astype(float)
    ends = np.bincount(durations[closed], minlength=n).astype(float)
    at_risk = at_risk_by_day(durations, n, entry)
    with np.errstate(divide="ignore", invalid="ignore"):
        h_won = np.where(at_risk > 0, wins / at_risk, 0.0)
        h_end = np.where(at_risk > 0, ends / at_risk, 0.0)
    alive = np.r_[1.0, np.cumprod(1.0 - h_end)[:-1]]
    return alive, h_won, h_end, at_risk


SCALES = np.exp(np.linspace(-1.6, 1.6, 65))  # a product 5x slower or faster than the pool
SCALE_PRIOR = 0.5  # sd of log(scale): with few deals a product stays near the pool's pace
EVENT_WINDOW = 0.15


def stretched(curve: np.ndarray, k: float) -> np.ndarray:
    """S(d / k): the curve of a deal k times slower (k > 1) or faster than the pool's."""
    if k == 1.0:
        return curve
    grid = np.arange(len(curve), dtype=float) / k
    return np.interp(grid, np.arange(len(curve)), curve)  # beyond the grid: its last value


def time_scale(durations: np.ndarray, closed: np.ndarray | None, curve: np.ndarray,
               limits: np.ndarray | None = None) -> float:  # fmt: skip
    """How much slower than the pool a group's deals close, from the few it has: the scale k
    (accelerated failure time: S_g(d) = S_pool(d / k), `curve` the pool's S) that best explains
    them, pulled towards 1 (a normal prior on log k). Either all the group's deals, `closed` or
    still open (censored at their age), against the time to any close; or (`limits`) only its
    wins, each of which could be seen only if it took at most its limit (the days from its start
    to the fit's day: the recent deals' wins so far are the quick ones), against the time to a
    win. Wins and losses are not mixed: big products lose as fast as small ones but win slower.

    Why: a product with too few wins for a curve of its own used to get the pooled curve, which
    the many small, fast deals dominate; the big products are the slow ones, and the forecast
    weighs deals by value, so their wins came far too soon (on the demo, 44% of the won value
    was timed within 4 weeks where 25% closed; Cumulus Suite, $42k a deal, 52% against 12%)."""
    x = np.clip(np.asarray(durations, float), 0, len(curve) - 1)
    if len(x) == 0:
        return 1.0
    e = np.ones(len(x), bool) if closed is None else np.asarray(closed, bool)
    grid = np.arange(len(curve), dtype=float)
    # an end is read as "about then" (+-15%, 3 days at least): the daily curve is lumpy (no
    # close before a stage's minimum stay, closes bunched on export days), and an end on the
    # exact day would make any stretch that moves it onto a flat part look impossible
    width = np.maximum(3.0, EVENT_WINDOW * x[e])
    best, best_k = -np.inf, 1.0
    for k in SCALES:
        at = lambda t, k=k: np.interp(t / k, grid, curve)  # noqa: E731
        ll = np.log(np.maximum(at(x[e] - width) - at(x[e] + width), 1e-12)).sum()
        if limits is None:
            ll += np.log(np.maximum(at(x[~e]), 1e-12)).sum()
        else:
            ll -= np.log(np.maximum(1.0 - at(np.asarray(limits, float)[e]), 1e-12)).sum()
        ll -= 0.5 * (np.log(k) / SCALE_PRIOR) ** 2
        if ll > best:
            best, best_k = ll, float(k)
    return best_k


@dataclass
class Sampler:
    """Draws days-to-close for chosen deals in O(1) each (table look-up)."""

    table: np.ndarray  # (groups, LEVELS + 1): first day with S <= level, NEVER below the floor
    code: np.ndarray  # group of each deal
    start: np.ndarray  # S at each deal's age
    age: np.ndarray

    def days(self, u: np.ndarray, deal: np.ndarray) -> np.ndarray:
        """u: uniforms, deal: index of the deal of each draw (flat arrays of the same length)."""
        level = self.start[deal] * (1.0 - u)
        j = np.minimum((level * LEVELS).astype(np.int64), LEVELS)
        day = self.table[self.code[deal], j]
        return np.where(self.start[deal] <= 0, NEVER, np.maximum(day - self.age[deal], 0.0))

    def dense_days(self, u: np.ndarray) -> np.ndarray:
        """u: (scenarios, deals) uniforms, overwritten -> days, for all deals at once."""
        v = np.subtract(1.0, u, out=u)  # u is the caller's scratch array
        v *= (self.start * LEVELS)[None, :]
        j = v.astype(np.int32)
        np.clip(j, 0, LEVELS, out=j)
        j += (self.code.astype(np.int32) * (LEVELS + 1))[None, :]
        day = self.table.ravel()[j]
        day -= self.age[None, :]
        return np.maximum(day, 0.0, out=day)

    def can_close(self) -> np.ndarray:
        """False for deals older than any the curve has seen close (S at their age is 0)."""
        return self.start > 0

    def chances_within(self, days=WITHIN_DAYS) -> np.ndarray:
        """(deals, len(days)): the chance each deal's draw closes within each number of days,
        exactly as `dense_days` draws it (`KaplanMeier.chances_within` reads the curve instead).

        Why: `Warped` maps a deal's chances at the knots onto these. The table holds a deal's
        curve at 1 / (LEVELS x S(age)): an old deal with S(age) = 0.002 draws from 8 levels,
        and mapped onto the curve's own chances its draws missed the knots (a deal aged 249
        closed on day 127 where its 13-week chance said by day 90) and the summed small deals,
        which honour the knots, disagreed with them (a week's mean 204k against 180k drawn)."""
        cls, (chances,) = self.atom_chances_at([np.r_[0.0, days].astype(float)])
        return np.clip(np.cumsum(chances, axis=1)[cls], 0.0, 1.0)

    def atom_chances(self, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(class of each deal, chance per class that a won deal closes in each stretch
        [edges[a], edges[a + 1]) of days), exactly as `dense_days` draws it: deals of one group
        and age close alike, so a class is a (group, age), a few hundred for any pipeline."""
        cls, (out,) = self.atom_chances_at([edges])
        return cls, out

    def atom_chances_at(self, edge_sets: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """`atom_chances` at each of several sets of edges (the stretches at each slip of the
        close dates), the classes found once: they do not depend on the edges."""
        key = self.code.astype(np.int64) * (MAX_DAYS + 1) + self.age.astype(np.int64)
        keys, first, cls = np.unique(key, return_index=True, return_inverse=True)
        levels = np.arange(LEVELS + 1, dtype=np.float64)
        outs = [np.zeros((len(keys), len(edges) - 1)) for edges in edge_sets]
        for block in np.array_split(np.arange(len(keys)), max(1, len(keys) // 256)):
            deal = first[block]
            top = (self.start[deal].astype(np.float64) * LEVELS)[:, None]
            # dense_days draws j = floor(v), v uniform on [0, S(age) x LEVELS): the share of
            # that range each j covers
            with np.errstate(divide="ignore", invalid="ignore"):
                weight = np.clip(np.minimum(levels + 1, top) - levels, 0.0, 1.0) / top
            weight[(top <= 0)[:, 0]] = 0.0  # S(age) = 0: never closes
            day = np.maximum(self.table[self.code[deal]] - self.age[deal][:, None], 0.0)
            rows = np.broadcast_to(np.arange(len(block))[:, None], day.shape)
            for edges, out in zip(edge_sets, outs, strict=True):
                atom = np.searchsorted(edges, day, side="right") - 1  # len(edges) - 1: past them
                keep = atom < len(edges) - 1
                cells = rows[keep] * (len(edges) - 1) + atom[keep]
                out[block] = np.bincount(cells, weights=weight[keep],
                                         minlength=len(block) * (len(edges) - 1)).reshape(len(block), -1)  # fmt: skip
        return cls.ravel(), outs


@dataclass
class KaplanMeier:
    """Survival curves by group (product), with a pooled fallback."""

    pooled: np.ndarray
    curves: dict[str, np.ndarray] = field(default_factory=dict)

    @staticmethod
    def fit(durations, closed, groups=None, min_events: int = MIN_EVENTS, won=None,
            limits=None, entry=None) -> KaplanMeier:  # fmt: skip
        """`won` (which closed deals were won): the curves are the time to a win among the deals
        won some day (`time_to_win`), for timing the deals a simulation has drawn as won;
        `min_events` then counts wins. Without it: the time to any close. A group with fewer
        events gets the pooled curve at its own pace (`time_scale`; with `limits`, the days
        from each deal's start to the fit's day, from its wins alone). `entry`: the age each
        deal came under watch (left truncation, `scoring.samples.entry_days`)."""
        durations, closed = np.asarray(durations, float), np.asarray(closed, bool)
        events = closed if won is None else np.asarray(won, bool) & closed
        entries = None if entry is None else np.asarray(entry, float)

        def fitted(m):
            e = None if entries is None else entries[m]
            if won is None:
                return kaplan_meier(durations[m], closed[m], entry=e)
            return time_to_win(durations[m], closed[m], events[m], entry=e)

        def paced(m):
            if won is not None and limits is not None:
                w = m & events
                k = time_scale(durations[w], None, model.pooled, np.asarray(limits, float)[w])
            else:
                k = time_scale(durations[m], closed[m], closes)
            return stretched(model.pooled, k)

        model = KaplanMeier(pooled=fitted(np.ones(len(durations), bool)))
        if groups is not None:
            groups = np.asarray(groups, dtype=object)
            closes = model.pooled if won is None else kaplan_meier(durations, closed, entry=entries)
            for g in pd.unique(groups):
                m = groups == g
                model.curves[g] = fitted(m) if events[m].sum() >= min_events else paced(m)
        return model

    def curve(self, group) -> np.ndarray:
        return self.curves.get(group, self.pooled)

    def sampler(self, ages: np.ndarray, groups: np.ndarray,
                within: np.ndarray | None = None) -> Sampler | Warped:  # fmt: skip
        """A fast sampler for these deals: per group, the days at which S first falls to each of
        LEVELS + 1 survival levels (inverse-CDF table), and each deal's survival at its age.
        `within` (deals, WITHIN_DAYS): each deal's chance to close within those days if won
        (`Warped`), from its stage."""
        if within is not None:
            return Warped.of(self.sampler(ages, groups), within)
        ages = np.clip(np.nan_to_num(np.asarray(ages, float), nan=0.0), 0, MAX_DAYS).astype(int)
        names = list(pd.unique(np.asarray(groups, dtype=object)))
        code = pd.Categorical(np.asarray(groups, dtype=object), categories=names).codes
        table = np.empty((len(names), LEVELS + 1), dtype=np.float32)
        start = np.empty(len(ages), dtype=np.float32)
        grid = np.linspace(0.0, 1.0, LEVELS + 1)
        for k, g in enumerate(names):
            s = self.curve(g)
            first = np.searchsorted(-s, -grid, side="left").astype(np.float32)
            table[k] = np.where(grid < s[-1], NEVER, first)
            start[code == k] = s[ages[code == k]]
        return Sampler(table=table, code=code, start=start, age=ages.astype(np.float32))

    def chances_within(self, ages: np.ndarray, groups: np.ndarray,
                       days=WITHIN_DAYS) -> np.ndarray:  # fmt: skip
        """(deals, len(days)): the chance that a won deal of this age and group closes within
        each number of days, 1 - S(age + d - 1) / S(age) (0 where S(age) is 0: never closes).
        Read off the curves directly: cheaper than the sampler's tables, which the backtest
        rebuilt for every shock it tried."""
        a = np.clip(np.nan_to_num(np.asarray(ages, float), nan=0.0), 0, MAX_DAYS).astype(int)
        groups = np.asarray(groups, dtype=object)
        out = np.zeros((len(a), len(days)))
        for g in pd.unique(groups):
            m = groups == g
            s = self.curve(g)
            start = s[a[m]]
            # "within d days" as the draws count it: a close on day age + d - 1 at the latest
            later = np.stack([s[np.minimum(a[m] + d - 1, MAX_DAYS)] for d in days], axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                out[m] = np.where(start[:, None] > 0, 1.0 - later / start[:, None], 0.0)
        return np.clip(out, 0.0, 1.0)

    def cdf_from_start(self, days: int, group=None) -> np.ndarray:
        """P(a new deal has closed by day d), d = 0..days-1 (the group's curve, else pooled)."""
        curve = self.pooled if group is None else self.curve(group)
        s = (
            curve[:days]
            if days <= len(curve)
            else np.pad(curve, (0, days - len(curve)), mode="edge")
        )
        return 1.0 - s

    def median(self, group=None) -> float:
        s = self.curve(group) if group is not None else self.pooled
        below = np.flatnonzero(s <= 0.5)
        return float(below[0]) if len(below) else float("inf")


@dataclass
class Exponential:
    """Baseline: remaining time ~ exponential with the mean engage-to-close time (memoryless)."""

    mean_days: float

    @staticmethod
    def fit(durations, closed, groups=None) -> Exponential:
        d = np.asarray(durations, float)[np.asarray(closed, bool)]
        return Exponential(mean_days=float(d.mean()) if len(d) else 60.0)

    def sampler(self, ages: np.ndarray, groups: np.ndarray) -> Exponential:
        return self

    def days(self, u: np.ndarray, deal: np.ndarray) -> np.ndarray:
        return (-np.log1p(-u) * self.mean_days).astype(np.float32)

    def dense_days(self, u: np.ndarray) -> np.ndarray:
        return self.days(u, None)

    def cdf_from_start(self, days: int, group=None) -> np.ndarray:
        return 1.0 - np.exp(-(np.arange(days) + 1.0) / self.mean_days)

    def can_close(self) -> np.ndarray:
        return np.True_


@dataclass
class Fixed:
    """Known close days (from the as-of date) per deal."""

    days_from_now: np.ndarray

    def sampler(self, ages: np.ndarray, groups: np.ndarray) -> Fixed:
        return self

    def days(self, u: np.ndarray, deal: np.ndarray) -> np.ndarray:
        return np.asarray(self.days_from_now, np.float32)[deal]

    def dense_days(self, u: np.ndarray) -> np.ndarray:
        return np.broadcast_to(np.asarray(self.days_from_now, np.float32), u.shape)

    def cdf_from_start(self, days: int, group=None) -> np.ndarray:
        return np.zeros(days)  # new deals have no known close days

    def can_close(self) -> np.ndarray:
        return np.True_
