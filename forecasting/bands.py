"""The forecast's band and centre, fitted honestly: only on backtest errors already known.

Why: a shared-shock sigma chosen on the same backtest errors it is then judged on reports an
in-sample coverage, and a wide sigma can hide a biased centre (a P50 below the actual at every
cutoff, covered only because the band grew). Here, at each backtest cutoff c_k, the parameters
come only from earlier cutoffs whose outcomes were known on c_k (cutoff c_j, horizon h: usable
when c_j + h <= c_k), and the live forecast uses the same fit on every matured cutoff.

Fitted on the latest `RECENT` matured outcomes of each horizon, cheaply, without simulating
again:
- `sigma`, `slip` and `slip_share`: the shared shock (log-odds), the shared slip of the close
  dates (sd, days) and the chance each deal follows it, the grid entry with the smallest interval score of its P10-P90 bands (relative to the
  actual, each horizon weighing alike): a proper score, so it rewards bands as narrow as the
  misses allow and no narrower; with a handful of outcomes, matching a coverage of 80% instead
  chased the few misses. The shock moves every horizon alike; the slip moves the near weeks
  most (what closes in the next 4 weeks depends most on when deals close): on MavenTech, over
  35 past dates, the 4-week bands held 60% of actuals and the 13-week ones 89% with the shock
  alone (`backtest.GRID`, `backtest.SLIPS`);
- `centre` (measured by the study, not used live): a log factor per horizon, the mean of
  log(actual / P50), shrunk towards 0 when there are few.
Too few matured pairs: the stated defaults (`DEFAULT_SIGMA`, no correction).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

DEFAULT_SIGMA = 0.5  # log-odds; about the middle of what backtests chose on our datasets
MIN_PAIRS = 4  # matured (cutoff, horizon) pairs needed before anything is fitted
SHRINK = 2.0  # the centre's log factor is weighted n / (n + SHRINK) towards the pairs' mean
MAX_LOG_FACTOR = 1.0  # a correction beyond e^1 would say the model is broken, not biased
TARGET = 0.8  # P10-P90
# the latest matured outcomes per horizon the shock is fitted on: the forecast gets better as
# history grows, and the misses of its first months would keep the band too wide for good
# (measured on MavenTech and four generated worlds: the 13-week band held 80-100% of actuals
# fitted on the latest 4, 86-100% on all of them)
RECENT = 4
# How a won deal is timed: by the time wins take, each product at its own pace. Each install's
# backtest used to choose between that and the time any close takes, on its latest 4 matured
# outcomes; the first months' forecasts, made on little history, then chose the curve of any
# close, which doubled the P50 on the stages worlds (benchmarks/forecast_backtest_study.py:
# without the choice, the P50 error fell on MavenTech, both stages worlds and the inbound one).
DEFAULT_TIMING = "km"


@dataclass(frozen=True)
class Bands:
    """The shared shock, the shared slip and the centre correction (log factor per horizon in
    weeks)."""

    sigma: float = DEFAULT_SIGMA
    centre: Mapping[int, float] = field(default_factory=dict)
    pairs: int = 0  # matured (cutoff, horizon) pairs they were fitted on (0: defaults)
    # how a won deal is timed (`forecasting.inputs.fit_timing`): "km" by the time wins take;
    # "km-any" (by the time any close takes) only in a file saved before the choice was dropped
    timing: str = DEFAULT_TIMING
    # the sd, in days, of a slip of every close date shared by a scenario's deals
    # (`montecarlo.simulate`): 0 in a file saved before it existed
    slip: float = 0.0
    slip_share: float = 1.0  # the chance each deal follows that slip (1: all, as before it)

    def slip_text(self) -> str:
        """The slip in words: "slip 5 days", and the share of deals following it if not all."""
        text = f"slip {self.slip:g} days"
        if self.slip > 0 and self.slip_share < 1.0:
            text += f", each deal following it with chance {self.slip_share:.0%}"
        return text

    def factor(self, days: Sequence[float] | np.ndarray) -> np.ndarray:
        """The revenue multiplier for periods ending `days` after the as-of date: the centre
        interpolated between horizons (flat beyond the first and the last)."""
        days = np.asarray(days, float)
        if not self.centre:
            return np.ones_like(days)
        weeks = sorted(self.centre)
        logs = [self.centre[w] for w in weeks]
        return np.exp(np.interp(days, [7.0 * w for w in weeks], logs))

    def to_config(self) -> dict:
        return {"sigma": float(self.sigma), "slip_days": float(self.slip),
                "slip_share": float(self.slip_share), "timing": self.timing,
                "centre_log_factor": {str(w): float(v) for w, v in self.centre.items()},
                "fitted_on_pairs": int(self.pairs)}  # fmt: skip

    @staticmethod
    def from_config(config: Mapping) -> Bands:
        """From a saved forecast config; an old one with only `sigma` means no correction and
        the timing it was fitted with (any close)."""
        centre = {int(w): float(v) for w, v in config.get("centre_log_factor", {}).items()}
        return Bands(float(config["sigma"]), centre, int(config.get("fitted_on_pairs", 0)),
                     str(config.get("timing", "km-any")), float(config.get("slip_days", 0.0)),
                     float(config.get("slip_share", 1.0)))  # fmt: skip


def interval_score(lo, hi, y, alpha: float = 0.2):
    """Gneiting-Raftery score of a central (1 - alpha) interval: width plus miss penalties."""
    return (hi - lo) + (2 / alpha) * np.maximum(lo - y, 0) + (2 / alpha) * np.maximum(y - hi, 0)


def matured(cutoffs: Sequence[pd.Timestamp], day: pd.Timestamp,
            weeks: Sequence[int]) -> np.ndarray:  # fmt: skip
    """(cutoffs, horizons): True where the outcome of cutoff j at horizon h was known on `day`."""
    c = pd.DatetimeIndex(cutoffs).to_numpy()[:, None]
    ends = c + np.array([np.timedelta64(7 * w, "D") for w in weeks])[None, :]
    return ends <= np.datetime64(pd.Timestamp(day))


def fit(sims: np.ndarray, actual: np.ndarray, usable: np.ndarray,
        grid: Sequence[tuple[float, float, float]], weeks: Sequence[int],
        centre: bool = False) -> Bands:  # fmt: skip
    """sims: (cutoffs, grid, scenarios, horizons) simulated revenue (no correction) at each
    (sigma, slip in days, share of deals following the slip) of `grid`; actual:
    (cutoffs, horizons); usable: which (cutoff, horizon) pairs may be used. `centre`: also fit
    the centre correction. Off for the live forecast: a correction learnt from a few past misses
    made the P50 worse on MavenTech and the inbound worlds
    (benchmarks/forecast_backtest_study.py measures both)."""
    ok = usable & (actual > 0)
    n = int(ok.sum())
    if n < MIN_PAIRS:
        return Bands()
    ok = latest(ok, RECENT)
    n = int(ok.sum())
    sims, y = sims[ok.any(axis=1)], actual[ok.any(axis=1)]
    ok = ok[ok.any(axis=1)]
    counts = ok.sum(axis=0)
    best = None
    for si, (sigma, slip, share) in enumerate(grid):
        x = sims[:, si]  # (J, N, H)
        p50 = np.median(x, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            err = np.where(ok & (p50 > 0), np.log(y / p50), 0.0)
        log_factor = err.sum(axis=0) / np.maximum(counts, 1) * counts / (counts + SHRINK)
        log_factor = np.clip(log_factor, -MAX_LOG_FACTOR, MAX_LOG_FACTOR) * centre
        lo, hi = np.quantile(x * np.exp(log_factor)[None, None, :], [0.1, 0.9], axis=1)
        covered = ((lo <= y) & (y <= hi))[ok].mean()
        relative = interval_score(lo, hi, y) / np.where(y > 0, y, 1.0)
        # each horizon weighs alike, however many of its outcomes have matured
        score = np.mean(
            [relative[:, h][ok[:, h]].mean() for h in range(ok.shape[1]) if ok[:, h].any()]
        )
        key = (score, round(abs(covered - TARGET), 6))
        if best is None or key < best[0]:
            factor = (
                {int(w): float(v) for w, v in zip(weeks, log_factor, strict=True)} if centre else {}
            )
            best = (key, Bands(float(sigma), factor, n, slip=float(slip), slip_share=float(share)))
    return best[1]


def latest(ok: np.ndarray, m: int) -> np.ndarray:
    """Of the usable (cutoff, horizon) pairs, the `m` latest cutoffs' per horizon (rows are in
    cutoff order)."""
    out = np.zeros_like(ok)
    for h in range(ok.shape[1]):
        out[np.flatnonzero(ok[:, h])[-m:], h] = True
    return out


def rolling(cutoffs: Sequence[pd.Timestamp], sims: np.ndarray, actual: np.ndarray,
            grid: Sequence[tuple[float, float, float]], weeks: Sequence[int],
            centre: bool = False) -> list[Bands]:  # fmt: skip
    """The bands each cutoff would have had: fitted only on outcomes known on that cutoff."""
    return [fit(sims, actual, matured(cutoffs, c, weeks), grid, weeks, centre) for c in cutoffs]
