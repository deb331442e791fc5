"""Targets and the chance of making them (issue 14): the question a forecast call asks. Pure.

A target is a quota for one quarter and one scope (the company, a region, a manager's team, a
rep). Its chance is the share of the Monte Carlo's scenarios at or above it, read from the
quarter's percentile grid saved with the run (so any reader answers for any target without
simulating again); the gap is what the P50 falls short by; the coverage is the open pipeline
expected to close in the quarter over what is still to win.
"""

from __future__ import annotations

import bisect
import csv
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")


class TargetError(ValueError):
    """A target that cannot be read; the message names it."""


@dataclass(frozen=True)
class Target:
    quarter: str  # "2025-Q1"
    scope: str  # "all", "region:West", "manager:Ann Lee" or "rep:Bo Chen" (bot.settings.Scope)
    amount: float


@dataclass(frozen=True)
class Odds:
    """A target against a forecast of its quarter."""

    target: float
    chance: float  # 0-1: the share of scenarios at or above the target
    p50: float
    won: float  # won so far in the quarter
    pipeline: float | None = None  # open value expected to close in the quarter
    # what `pipeline` holds: "quarter" (open deals whose close date is in the quarter) or "open"
    # (every open deal: the CRM gives no close dates for open deals, as MavenTech's does not)
    basis: str = "quarter"

    @property
    def gap(self) -> float:
        """What the P50 falls short of the target by (0 when it reaches it)."""
        return max(0.0, self.target - self.p50)

    @property
    def coverage(self) -> float | None:
        """Open pipeline over what is still to win; None when nothing is left to win."""
        left = self.target - self.won
        if self.pipeline is None or left <= 0:
            return None
        return self.pipeline / left


def chance(grid: Sequence[float], target: float) -> float | None:
    """The share of scenarios whose total is at or above `target`, from the quarter's totals at
    percentiles 0, 1, ..., 100 (interpolated between them; None without a grid)."""
    g = [float(v) for v in grid]
    if len(g) < 2:
        return None
    step = 1.0 / (len(g) - 1)  # the grid's percentiles are evenly spaced, 0 to 1
    if target <= g[0]:
        return 1.0
    if target > g[-1]:
        return 0.0
    i = bisect.bisect_left(g, target)  # g[i - 1] < target <= g[i]
    lo, hi = g[i - 1], g[i]
    share = (target - lo) / (hi - lo) if hi > lo else 1.0
    below = (i - 1 + share) * step
    return min(1.0, max(0.0, 1.0 - below))


def odds(
    target: float, grid: Sequence[float], p50: float, won: float, pipeline=None, basis="quarter"
) -> Odds | None:
    """A target's odds, or None when the forecast kept no grid (a run saved before it did)."""
    c = chance(grid, target)
    return None if c is None else Odds(target, c, p50, won, pipeline, basis)


def parse_quarter(text: str, where: str) -> str:
    t = str(text).strip().upper()
    if not QUARTER.match(t):
        raise TargetError(f"{where}: quarter {text!r} is not like 2025-Q1")
    return t


def parse_amount(value, where: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value.replace(",", "").replace("_", "").strip())
        except ValueError:
            raise TargetError(f"{where}: amount {value!r} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:  # fmt: skip
        raise TargetError(f"{where}: amount {value!r} is not a positive number")
    return float(value)


def read_csv(text: str, where: str) -> list[dict]:
    """Targets from a CSV with the columns quarter, scope, amount (one row per target)."""
    rows = list(csv.DictReader(io.StringIO(text)))
    if rows and not {"quarter", "scope", "amount"} <= {k.strip().lower() for k in rows[0]}:
        raise TargetError(f"{where}: the columns must be quarter, scope, amount")
    return [
        {k.strip().lower(): v for k, v in row.items() if k} | {"_where": f"{where} line {i + 2}"}
        for i, row in enumerate(rows)
    ]
