"""The live forecast on a day: pipeline + new deals, by week, month and quarter, with what was
already won in the periods under way. Pure."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecasting import inputs
from forecasting.bands import Bands
from forecasting.montecarlo import MAX_SUMMED_GROUPS, Arrivals, quarter_grids, simulate, summary
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
    # the new deals a week the forecast drew (`Arrivals.drawn_per_week`: the last ARRIVAL_WEEKS'
    # pace), said beside what it expects from them: the assumption a forecast call questions
    new_per_week: float | None = None


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
    within: np.ndarray | None = None,
) -> LiveForecast:
    """`features`/`win_prob`: the open deals on `as_of` and their calibrated probabilities (as a
    score run has them). Totals include the revenue already won in periods under way.

    `owners`: forecast only these reps' deals (a region or a manager's team): their pipeline,
    their new deals and their wins so far. Timing and values are still learnt from all deals,
    since a team's own closed deals are too few for a stable time-to-close curve.

    `bands`: the shared shock and centre correction the backtest fitted (`forecasting.bands`);
    `sigma` alone: that shock and no correction. `within`: each deal's chances to close within
    the stage models' knots if won (`forecasting.stage_timing`), aligned with `features`."""
    if bands is None:
        bands = Bands(sigma if sigma is not None else 0.0)
    as_of = pd.Timestamp(as_of)
    periods, bounds = calendar(as_of, quarters)
    mine = crm.deals
    if owners is not None:
        keep = features["owner"].isin(list(owners)).to_numpy()
        features, win_prob = features[keep], np.asarray(win_prob)[keep]
        within = None if within is None else np.asarray(within)[keep]
        mine = mine[mine["owner"].isin(list(owners))]
    deals = inputs.open_deals(crm, as_of, win_prob, features, within)
    arrivals = inputs.arrivals(crm, as_of, inputs.new_deal_win_rate(crm, as_of), owners)
    fc = _draw(crm, as_of, deals, periods, bands, scenarios, seed, arrivals=arrivals,
               by=BREAKDOWNS.get(by, by) if by else None)  # fmt: skip
    done = won_to_date(mine, bounds, as_of)
    table, grids = _with_won(fc.table, fc.grids, bounds, done)
    return LiveForecast(as_of, table, fc.by_group, bands.sigma, scenarios, len(deals), grids,
                        arrivals.drawn_per_week)  # fmt: skip


def _draw(crm: Crm, as_of: pd.Timestamp, deals: pd.DataFrame, periods, bands: Bands,
          scenarios: int, seed: int, **how):  # fmt: skip
    """`simulate` with the timing learnt from all the company's deals and the bands' shock, slip
    and centre correction; `how`: the new deals and the breakdown. New deals' scale is measured
    against the "km" timing (`inputs.new_deal_scale`): bands saved with another timing (before
    the choice was dropped) draw them unscaled."""
    if bands.timing != "km":
        how = {k: _unscaled(v) for k, v in how.items()}
    return simulate(deals, inputs.fit_timing(crm, as_of, bands.timing), periods,
                    scenarios=scenarios, seed=seed, shock_sigma=bands.sigma, slip_days=bands.slip,
                    slip_share=bands.slip_share, scale=bands.factor(periods.end),
                    pace=inputs.pace_clock(crm, as_of), **how)  # fmt: skip


def _unscaled(value):
    """`Arrivals` (or a dict of them) without the new deals' scale; anything else as it is."""
    if isinstance(value, Arrivals):
        return value.unscaled()
    if isinstance(value, dict):
        return {k: _unscaled(v) for k, v in value.items()}
    return value


def _with_won(table: pd.DataFrame, grids: dict[str, list[float]], bounds: pd.DataFrame,
              done: np.ndarray) -> tuple[pd.DataFrame, dict[str, list[float]]]:  # fmt: skip
    """The simulated periods' table and quarter grids with the revenue already won added."""
    table = table.copy()
    table.insert(2, "start", bounds["start"].dt.date.to_numpy())
    table.insert(3, "end", bounds["end"].dt.date.to_numpy())
    table.insert(4, "won_to_date", done)
    for c in ("p10", "p50", "p90", "mean"):
        table[c] = table[c] + done
    done_by = dict(zip(table["period"], done, strict=True))
    return table, {q: [v + float(done_by[q]) for v in grid] for q, grid in grids.items()}


def forecast_scopes(
    crm: Crm,
    as_of: pd.Timestamp,
    features: pd.DataFrame,
    win_prob: np.ndarray,
    scopes: Mapping[str, Collection[str] | None],
    *,
    bands: Bands | None = None,
    scenarios: int = 10_000,
    seed: int = 0,
    quarters: int = 2,
    within: np.ndarray | None = None,
) -> dict[str, LiveForecast]:
    """`forecast` of each scope (name -> its reps, None for all), the scopes drawn together.

    Why: simulated one by one, ten scopes of a million deals cost ten simulations (1.5 s each).
    Drawn together, the reps are split into the groups the scopes cut them into (a team inside
    its region inside the company) and each group's revenue is drawn once per scenario, with
    the shared shock; a scope's scenarios are the sums of its groups'. Each scope's law is its
    own forecast's (its deals, its new deals, the company's timing and values), and in every
    scenario a region's total is its teams'. The company's and the widest scopes are drawn
    together as long as they cut the reps into at most MAX_SUMMED_GROUPS groups (its small deals
    are summed per group); the narrower ones left over are simulated alone. `within`: as in
    `forecast`."""
    bands = bands or Bands(0.0)
    as_of = pd.Timestamp(as_of)
    named = pd.Series(pd.unique(pd.concat([crm.deals["owner"], features["owner"]])))
    nobody = _NOBODY  # the deals without an owner, under a name no rep has
    while named.eq(nobody).any():
        nobody += "\x00"
    people = pd.unique(named.fillna(nobody))
    members = {
        s: None if owners is None else frozenset(nobody if pd.isna(o) else o for o in owners)
        for s, owners in scopes.items()
    }  # a missing owner in a list stands for the deals without one, as `isin` matches them
    together, signature = _drawn_together(members, people)
    out = {}
    if together:
        out.update(_joint(crm, as_of, features, win_prob, together, members, signature, nobody,
                          bands, scenarios, seed, quarters, within))  # fmt: skip
    for name, owners in scopes.items():
        if name not in out:
            out[name] = forecast(crm, as_of, features, win_prob, bands=bands, scenarios=scenarios,
                                 seed=seed, quarters=quarters, owners=owners, within=within)  # fmt: skip
    return {name: out[name] for name in scopes}


_NOBODY = "\x00no owner"  # a deal without an owner belongs to the company's scopes only


def _drawn_together(members: dict[str, frozenset | None],
                    people) -> tuple[list[str], dict[str, tuple[str, ...]]]:  # fmt: skip
    """The scopes drawn together: the company's first, then the widest, as long as they cut the
    reps into at most MAX_SUMMED_GROUPS groups (`simulate` sums its small deals per group); and
    each rep's group, the chosen scopes that hold them."""
    order = sorted(members, key=lambda s: -np.inf if members[s] is None else -len(members[s]))
    chosen: list[str] = []
    signature = {p: () for p in people}  # each rep's chosen scopes so far
    for scope in order:
        inside = members[scope]
        trial = {p: sig + (scope,) if inside is None or p in inside else sig
                 for p, sig in signature.items()}  # fmt: skip
        if len(set(trial.values()) - {()}) <= MAX_SUMMED_GROUPS:
            chosen.append(scope)
            signature = trial
    return chosen, signature


def _joint(crm, as_of, features, win_prob, chosen, members, signature, nobody, bands,
           scenarios, seed, quarters, within=None) -> dict[str, LiveForecast]:  # fmt: skip
    """The `chosen` scopes' forecasts from one simulation of their groups of reps; {} when no
    chosen scope has a deal or a new deal to draw (each is then simulated alone, to zero)."""
    periods, bounds = calendar(as_of, quarters)
    code = {sig: f"group {k}" for k, sig in enumerate(sorted(set(signature.values()) - {()}))}
    group_of_person = {p: code.get(sig, "") for p, sig in signature.items()}

    def group_of(owners: pd.Series) -> np.ndarray:
        """Each deal's group, looked up once per distinct owner (a million deals, few reps)."""
        codes, names = pd.factorize(owners)  # a missing owner: -1, the table's last entry
        table = [group_of_person.get(n, "") for n in names] + [group_of_person.get(nobody, "")]
        return np.array(table, dtype=object)[codes]

    deals = inputs.open_deals(crm, as_of, win_prob, features, within)
    deals["group"] = group_of(deals["owner"])
    if (deals["group"] == "").any():
        deals = deals[deals["group"] != ""]
    new = inputs.arrivals_by(crm, as_of, group_of, inputs.new_deal_win_rate(crm, as_of))
    new.pop("", None)
    if deals.empty and not new:
        return {}  # nothing to draw: each scope alone (all zero)
    fc = _draw(crm, as_of, deals, periods, bands, scenarios, seed, by="group", group_arrivals=new)
    drawn = fc.groups
    # the wins that count in a period under way, once: not the whole history for every scope
    d = crm.deals
    won = d[(d["status"] == "won") & (d["close_date"] >= bounds["start"].min())
            & (d["close_date"] <= as_of)]  # fmt: skip
    name_of_code = {v: k for k, v in code.items()}
    out = {}
    for scope in chosen:
        take = [i for i, g in enumerate(drawn.names) if scope in name_of_code[g]]
        total = drawn.totals[:, take, :].sum(axis=1)
        table = summary(periods, total, drawn.from_pipeline[take].sum(axis=0),
                        drawn.from_new[take].sum(axis=0))  # fmt: skip
        inside = members[scope]
        mine = won if inside is None else won[won["owner"].fillna(nobody).isin(list(inside))]
        done = won_to_date(mine, bounds, as_of)
        table, grids = _with_won(table, quarter_grids(total, periods), bounds, done)
        n_open = int(deals["group"].isin([drawn.names[i] for i in take]).sum())
        per_week = sum(new[drawn.names[i]].drawn_per_week for i in take if drawn.names[i] in new)
        out[scope] = LiveForecast(as_of, table, None, bands.sigma, scenarios, n_open, grids,
                                  float(per_week))  # fmt: skip
    return out
