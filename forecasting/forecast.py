"""The live forecast on a day: pipeline + new deals, by week, month and quarter, with what was
already won in the periods under way. Pure."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from forecasting import inputs
from forecasting.bands import Bands
from forecasting.montecarlo import simulate
from forecasting.periods import calendar, won_to_date
from scoring.features import Crm

BREAKDOWNS = {"region": "region", "manager": "manager", "rep": "owner"}


@dataclass
class LiveForecast:
    as_of: pd.Timestamp
    table: pd.DataFrame  # period, kind, start, end, won_to_date, p10, p50, p90, mean, ...
    by_group: pd.DataFrame | None
    sigma: float
    scenarios: int
    open_deals: int
    # each quarter's total (won so far included) at every percentile, 0 to 100: the chance of
    # reaching a target is read from it (`forecasting.targets.chance`)
    grids: dict[str, list[float]] = field(default_factory=dict)


def forecast(
    crm: Crm,
    as_of: pd.Timestamp,
    features: pd.DataFrame,
    win_prob: np.ndarray,
    *,
    sigma: float | None = None,
    bands: Bands | None = None,
    scenarios: int = 10_000,
    seed: int = 0,
    by: str | None = None,
    quarters: int = 2,
    owners: Collection[str] | None = None,
) -> LiveForecast:
    """`features`/`win_prob`: the open deals on `as_of` and their calibrated probabilities (as a
    score run has them). Totals include the revenue already won in periods under way.

    `owners`: forecast only these reps' deals (a region or a manager's team): their pipeline,
    their new deals and their wins so far. Timing and values are still learnt from all deals,
    since a team's own closed deals are too few for a stable time-to-close curve.

    `bands`: the shared shock and centre correction the backtest fitted (`forecasting.bands`);
    `sigma` alone: that shock and no correction."""
    if bands is None:
        bands = Bands(sigma if sigma is not None else 0.0)
    as_of = pd.Timestamp(as_of)
    periods, bounds = calendar(as_of, quarters)
    mine = crm
    if owners is not None:
        keep = features["owner"].isin(list(owners)).to_numpy()
        features, win_prob = features[keep], np.asarray(win_prob)[keep]
        mine = replace(crm, deals=crm.deals[crm.deals["owner"].isin(list(owners))])
    deals = inputs.open_deals(crm, as_of, win_prob, features)
    fc = simulate(
        deals,
        inputs.fit_timing(crm, as_of, bands.timing),
        periods,
        scenarios=scenarios,
        seed=seed,
        shock_sigma=bands.sigma,
        arrivals=inputs.arrivals(mine, as_of, inputs.new_deal_win_rate(crm, as_of)),
        by=BREAKDOWNS.get(by, by) if by else None,
        scale=bands.factor(periods.end),
    )
    done = won_to_date(mine.deals, bounds, as_of)
    table = fc.table.copy()
    table.insert(2, "start", bounds["start"].dt.date.to_numpy())
    table.insert(3, "end", bounds["end"].dt.date.to_numpy())
    table.insert(4, "won_to_date", done)
    for c in ("p10", "p50", "p90", "mean"):
        table[c] = table[c] + done
    done_by = dict(zip(table["period"], done, strict=True))
    grids = {q: [v + float(done_by[q]) for v in grid] for q, grid in fc.grids.items()}
    return LiveForecast(as_of, table, fc.by_group, bands.sigma, scenarios, len(deals), grids)
