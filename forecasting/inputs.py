"""What the forecast needs on a day: open deals with value, win probability, age and timing group;
the timing model fitted with censoring; the arrival of new deals. Pure (data in, data out)."""

from __future__ import annotations

from collections.abc import Callable, Collection

import numpy as np
import pandas as pd

from forecasting.montecarlo import Arrivals
from forecasting.quarter_pace import PaceClock, QuarterPace
from forecasting.timing import MAX_DAYS, Exponential, KaplanMeier, won_by_age
from forecasting.warped_draws import within_columns
from scoring.crm import positions
from scoring.features import Crm, features_at
from scoring.samples import entry_days, open_win_chance

ARRIVAL_WEEKS = 13  # the arrival rate and values of new deals come from the last quarter
MIN_BORN_AT_RISK = 20  # deals born in view scale new deals' wins up to the age this many reached


def durations(crm: Crm, t: pd.Timestamp) -> pd.DataFrame:
    """Engage-to-close days known on day t: closed deals are events, deals still open on t are
    censored at their age (what a fit on closed deals alone would ignore); `entry`: the age each
    came under watch (`scoring.samples.entry_days`)."""
    d = crm.deals
    engaged = d["engage_date"].notna() & (d["engage_date"] <= t)
    closed = d["closed_on"] <= t
    end = d["closed_on"].where(closed, t)
    out = pd.DataFrame(
        {
            "days": (end - d["engage_date"]).dt.days,
            "closed": closed,
            "won": closed & d["status"].eq("won"),
            "product": d["product"],
            "limit": (t - d["engage_date"]).dt.days,  # the longest a close known on t can take
            "entry": entry_days(crm, t),  # the age it came under watch (left truncation)
        }
    )
    return out[engaged]


def fit_timing(crm: Crm, t: pd.Timestamp, kind: str = "km"):
    """ "km": the time to a win among won deals (`timing.time_to_win`), since the simulation times
    only the deals it drew as won; "km-any": the time to any close (won or lost), the curve
    before; "exp": the exponential baseline. Learnt from all of `crm`'s deals whatever the scope
    forecast, so kept with the Crm by day (`Crm.memo`): a refresh forecasts ten scopes."""
    key = ("timing", pd.Timestamp(t), kind)
    if key not in crm.memo:
        crm.memo[key] = _fit_timing(crm, t, kind)
    return crm.memo[key]


def quarter_pace(crm: Crm, t: pd.Timestamp) -> QuarterPace:
    """The pace of wins in each month of a quarter, from all of `crm`'s wins known on day t
    (`forecasting.quarter_pace`); kept with the Crm by day, as the timing is."""
    key = ("quarter pace", pd.Timestamp(t))
    if key not in crm.memo:
        crm.memo[key] = QuarterPace.fit(crm.deals, pd.Timestamp(t))
    return crm.memo[key]


def pace_clock(crm: Crm, t: pd.Timestamp) -> PaceClock | None:
    """`quarter_pace`'s clock from day t (None: no bunching known, days as drawn)."""
    return quarter_pace(crm, t).clock(pd.Timestamp(t))


def _fit_timing(crm: Crm, t: pd.Timestamp, kind: str):
    data = durations(crm, t)
    args = data["days"].to_numpy(), data["closed"].to_numpy(), data["product"].to_numpy()
    entry = data["entry"].to_numpy()
    if kind == "km":
        return KaplanMeier.fit(*args, won=data["won"].to_numpy(), limits=data["limit"].to_numpy(),
                               entry=entry)  # fmt: skip
    return KaplanMeier.fit(*args, entry=entry) if kind == "km-any" else Exponential.fit(*args)


def median_won_value(crm: Crm, t: pd.Timestamp) -> pd.Series:
    """Median value of won deals by product, among deals closed before t."""
    d = crm.deals
    won = d.loc[(d["status"] == "won") & (d["closed_on"] < t) & (d["value"] > 0),
                ["product", "value"]]  # fmt: skip
    return won.groupby("product")["value"].median()


def _looked_up(keys: pd.Series, table: pd.Series) -> np.ndarray:
    """`keys.map(table)` as floats, NaN where a key is not in `table` (its index unique)."""
    return np.append(table.to_numpy(dtype=float), np.nan)[positions(keys, table.index)]


def _estimate(products: pd.Series, crm: Crm, t: pd.Timestamp) -> np.ndarray:
    """A deal's value where its amount is not known: its product's median won value, else the
    product's list price."""
    median = _looked_up(products, median_won_value(crm, t))
    price = _looked_up(products, crm.products.set_index("product")["sales_price"])
    return np.where(np.isnan(median), price, median)


def open_deals(crm: Crm, t: pd.Timestamp, win_prob: np.ndarray | None = None,
               features: pd.DataFrame | None = None,
               within: np.ndarray | None = None) -> pd.DataFrame:  # fmt: skip
    """The open pipeline on day t. Value: the deal's amount where known, else the median won
    value of its product (list price where none was won yet). Deals still prospecting count as
    age 0. `within` (deals, knots), aligned with `features`: each deal's chance to close within
    the knots' days if won, from its stage (`forecasting.stage_timing`), as columns the
    simulation times the deal by (`warped_draws.within_columns`)."""
    f = features if features is not None else features_at(crm, t)
    estimate = pd.Series(_estimate(f["product"], crm, t), index=f.index)
    value = f["value_used"].where(f["value_known"], estimate).fillna(0.0)
    p = win_prob if win_prob is not None else f["base_rate"].to_numpy()
    out = pd.DataFrame(
        {
            "value": value.to_numpy(float),
            "win_prob": np.asarray(p, float),
            "age": f["age_days"].fillna(0.0).to_numpy(float),
            # the columns' own arrays, not Python strings: a million deals' five string
            # columns made objects took 0.6 s of a forecast
            "timing_group": f["product"].fillna("?").array,
            "region": f["region"].array,
            "manager": f["manager"].array,
            "owner": f["owner"].array,
            "product": f["product"].array,
        },
        index=f.index,
    )
    if within is not None:
        out[within_columns()] = np.asarray(within, float)
    return out


def new_deal_win_rate(crm: Crm, t: pd.Timestamp) -> float:
    """The chance that a deal engaged on t is won some day (`samples.open_win_chance` at age
    0): not the average open deal's chance, which leans to the deals that stay open long. Kept
    with the Crm by day, as the timing is."""
    key = ("new deal win rate", pd.Timestamp(t))
    if key not in crm.memo:
        crm.memo[key] = float(open_win_chance(crm, t, [0.0])[0])
    return crm.memo[key]


def arrivals(crm: Crm, t: pd.Timestamp, win_rate: float | None = None,
             owners: Collection[str] | None = None) -> Arrivals:  # fmt: skip
    """New deals per week over the last quarter before t, and their values (amount where known,
    else the product's median won value). A new deal wins with `win_rate`, by default the chance
    that a deal just engaged is won some day (`scoring.samples.open_win_chance` at age 0): not
    the average open deal's chance, which is weighted towards the deals that stay open long.
    `owners`: only these reps' new deals (a scope), valued as the company's are."""
    new = _new_deals(crm, t)
    if owners is not None:
        new = new[new["owner"].isin(list(owners))]
    return _arrivals_of(new, crm, t, win_rate)


def arrivals_by(crm: Crm, t: pd.Timestamp, group_of: Callable[[pd.Series], np.ndarray],
                win_rate: float | None = None) -> dict[str, Arrivals]:  # fmt: skip
    """`arrivals` of each group of owners (`group_of` names each new deal's group from its
    owners): their union is the company's, deal for deal, so scopes simulated together
    (`forecast.forecast_scopes`) draw the same law as each alone."""
    new = _new_deals(crm, t)
    groups = group_of(new["owner"])
    return {str(g): _arrivals_of(new[groups == g], crm, t, win_rate) for g in pd.unique(groups)}


def _new_deals(crm: Crm, t: pd.Timestamp) -> pd.DataFrame:
    """The deals engaged in the last ARRIVAL_WEEKS before t, valued as known on t: an amount
    recorded at close is known only for deals closed by then, the others take the product's
    median won value over all the company's deals."""
    d = crm.deals
    start = t - pd.Timedelta(weeks=ARRIVAL_WEEKS)
    new = d.loc[(d["engage_date"] > start) & (d["engage_date"] <= t),
                ["closed_on", "value", "product", "owner"]]  # fmt: skip
    amount = new["value"].where((new["closed_on"] <= t) & (new["value"] > 0))
    estimate = pd.Series(_estimate(new["product"], crm, t), index=new.index)
    return pd.DataFrame({"value": amount.fillna(estimate), "product": new["product"],
                         "owner": new["owner"]})  # fmt: skip


def _arrivals_of(new: pd.DataFrame, crm: Crm, t: pd.Timestamp, win_rate: float | None) -> Arrivals:
    if new.empty:
        return Arrivals()
    known = new["value"].notna()
    if win_rate is None:
        win_rate = new_deal_win_rate(crm, t)
    return Arrivals(
        per_week=len(new) / ARRIVAL_WEEKS,
        values=new.loc[known, "value"].to_numpy(float),
        win_rate=win_rate,
        groups=new.loc[known, "product"].fillna("?").to_numpy(dtype=object),
        won_scale=new_deal_scale(crm, t),
    )


def new_deal_scale(crm: Crm, t: pd.Timestamp) -> np.ndarray | None:
    """By age d = 0..MAX_DAYS: what a new deal wins by age d, as a multiple of what the "km"
    curve gives it (`new_deal_win_rate` x the pooled time to a win, `fit_timing` "km"). Up to
    the oldest age MIN_BORN_AT_RISK deals born in view reached (engaged once closes were
    recorded, `entry_days` 0; new deals are born in view too), their own chance of a win by
    that age; past it, that chance plus the pool's further wins by age (a ratio held past the
    ages seen would stretch a handful of young wins over two quarters); never more than 1.
    None, the curve as it is: every deal or none was born in view, or too few reached any age.

    Why: the curve is fitted on every deal, the ones already under way when the history began
    too; where their engagement date is the day they were imported (the stages world: most
    engaged on its first day, at every stage), their wins look quick, and the forecast drew
    new deals winning within 13 weeks $1.41M where $10.1k did (10 past dates). Deals born in
    view won 1.1 times as much by each age as the curve said on MavenTech, as much on the
    demo and the inbound world. Kept with the Crm by day, as the timing is (read-only: every
    scope's arrivals share it)."""
    key = ("new deal scale", pd.Timestamp(t))
    if key not in crm.memo:
        crm.memo[key] = _new_deal_scale(crm, pd.Timestamp(t))
    return crm.memo[key]


def _new_deal_scale(crm: Crm, t: pd.Timestamp) -> np.ndarray | None:
    data = durations(crm, t)
    born = data["entry"].to_numpy() == 0
    if born.all() or not born.any():
        return None
    closed, won = data["closed"].to_numpy(bool), data["won"].to_numpy(bool)
    cif, at_risk = won_by_age(data["days"].to_numpy()[born], closed[born], won[born])
    watched = np.flatnonzero(at_risk >= MIN_BORN_AT_RISK)
    if not len(watched):
        return None
    curve = new_deal_win_rate(crm, t) * fit_timing(crm, t, "km").cdf_from_start(MAX_DAYS + 1)
    oldest = int(watched[-1])
    wins = np.r_[cif[: oldest + 1], cif[oldest] + curve[oldest + 1 :] - curve[oldest]]
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(curve > 0, np.minimum(wins, 1.0) / curve, 1.0)
    scale.setflags(write=False)
    return scale
