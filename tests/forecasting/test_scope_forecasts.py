"""Every scope's forecast drawn in one simulation (`forecast.forecast_scopes`): each scope keeps its
own forecast's law (its deals, its new deals), and in every scenario the parts add up to the
whole, which ten separate simulations could not give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting import inputs, montecarlo
from forecasting.bands import Bands
from forecasting.forecast import forecast, forecast_scopes
from forecasting.montecarlo import Arrivals, simulate
from forecasting.periods import calendar
from forecasting.timing import KaplanMeier
from scoring.features import features_at

SCENARIOS = 4_000


@pytest.fixture(scope="module")
def day(generated):
    crm = generated["crm"]
    t = crm.data_end
    f = features_at(crm, t)
    win = np.random.default_rng(3).uniform(0.05, 0.9, len(f))
    owners = sorted(crm.deals["owner"].dropna().unique())
    return crm, t, f, win, owners


def _quarter(fc, column: str) -> np.ndarray:
    return fc.table.loc[fc.table["kind"] == "quarter", column].to_numpy()


@pytest.mark.parametrize("bands", [Bands(0.3), Bands(0.3, slip=10.0)], ids=["shock", "and slip"])
def test_each_scope_drawn_together_forecasts_what_it_would_alone(day, bands):
    crm, t, f, win, owners = day
    scopes = {"all": None, "half": owners[::2], "other half": owners[1::2], "one": owners[:1]}
    together = forecast_scopes(crm, t, f, win, scopes, bands=bands, scenarios=SCENARIOS)
    assert list(together) == list(scopes)
    for name, owners_ in scopes.items():
        alone = forecast(crm, t, f, win, bands=bands, scenarios=SCENARIOS, owners=owners_)
        mine, fc = alone.table, together[name].table
        assert together[name].open_deals == alone.open_deals > 0, name
        assert list(fc.columns) == list(mine.columns)
        np.testing.assert_array_equal(fc["won_to_date"], mine["won_to_date"])
        # the same law, other draws: quarters' mean, P10, P50, P90 within Monte Carlo noise
        for column in ("mean", "from_pipeline", "from_new", "p10", "p50", "p90"):
            np.testing.assert_allclose(_quarter(together[name], column),
                                       _quarter(alone, column), rtol=0.04, err_msg=name)  # fmt: skip
        assert set(together[name].grids) == set(alone.grids)


@pytest.mark.parametrize("bands", [Bands(0.3), Bands(0.3, slip=10.0)], ids=["shock", "and slip"])
def test_in_every_scenario_the_parts_add_up_to_the_whole(day, bands):
    """Two halves of the company drawn with it: their mean revenue adds up to the company's in
    every period (each scenario's company total is its halves' sum), to rounding."""
    crm, t, f, win, owners = day
    scopes = {"all": None, "half": owners[::2], "other half": owners[1::2]}
    fcs = forecast_scopes(crm, t, f, win, scopes, bands=bands, scenarios=SCENARIOS)
    assert fcs["half"].open_deals + fcs["other half"].open_deals == fcs["all"].open_deals
    for column in ("mean", "from_pipeline", "from_new", "won_to_date"):
        parts = fcs["half"].table[column] + fcs["other half"].table[column]
        np.testing.assert_allclose(parts, fcs["all"].table[column], rtol=1e-9, err_msg=column)
    # and a quantile of the sum is not the sum of quantiles: the halves' P10s add up to less
    p10 = _quarter(fcs["half"], "p10") + _quarter(fcs["other half"], "p10")
    assert (p10 < _quarter(fcs["all"], "p10")).all()


def test_a_rep_drawn_with_a_big_pipeline_keeps_the_law_of_its_own_deals(day, monkeypatch):
    """In a pipeline too big to draw every deal, the small deals are summed by their normal law
    per group, each stretch of days cut at zero; a rep's few hundred deals summed would be cut
    often enough to raise their mean (by 37% on a rep here), so a group with few deals to sum
    has them drawn one by one, as the rep's forecast alone draws them."""
    crm, t, f, win, owners = day
    monkeypatch.setattr(montecarlo, "DRAW_ALL", 300)
    monkeypatch.setattr(montecarlo, "EXACT_DEALS", 100)
    reps = f["owner"].value_counts().index[-2:].tolist()  # the two with the fewest open deals
    scopes = {"all": None} | {rep: [rep] for rep in reps}
    fcs = forecast_scopes(crm, t, f, win, scopes, bands=Bands(0.3), scenarios=SCENARIOS)
    for rep in reps:
        alone = forecast(crm, t, f, win, bands=Bands(0.3), scenarios=SCENARIOS, owners=[rep])
        assert alone.open_deals <= 300  # drawn deal by deal alone
        np.testing.assert_allclose(_quarter(fcs[rep], "from_pipeline"),
                                   _quarter(alone, "from_pipeline"), rtol=0.05, err_msg=rep)  # fmt: skip


def test_scopes_past_the_group_limit_are_simulated_alone(day, monkeypatch):
    """Each rep its own scope cuts the company into more groups than the small deals' normal
    sums allow (`MAX_SUMMED_GROUPS`): the narrowest scopes left over get their own simulation,
    exactly the one `forecast` gives."""
    crm, t, f, win, owners = day
    monkeypatch.setattr("forecasting.forecast.MAX_SUMMED_GROUPS", 4)
    scopes = {"all": None} | {rep: [rep] for rep in owners[:6]}
    fcs = forecast_scopes(crm, t, f, win, scopes, bands=Bands(0.2), scenarios=500)
    assert list(fcs) == list(scopes)
    alone = {rep: forecast(crm, t, f, win, bands=Bands(0.2), scenarios=500, owners=[rep])
             for rep in owners[:6]}  # fmt: skip
    same = [rep for rep in owners[:6] if fcs[rep].table.equals(alone[rep].table)]
    # the company and three reps make four groups (three reps and everyone else): the other
    # three reps are simulated alone
    assert same == owners[3:6]


def test_a_scope_without_deals_forecasts_nothing(day):
    crm, t, f, win, _ = day
    fcs = forecast_scopes(crm, t, f, win, {"all": None, "nobody": ["no such rep"]},
                          bands=Bands(0.3), scenarios=500)  # fmt: skip
    nobody = fcs["nobody"]
    assert nobody.open_deals == 0
    assert (nobody.table[["p10", "p50", "p90", "mean", "won_to_date"]] == 0).all().all()
    assert fcs["all"].open_deals == len(f)


def test_new_deals_by_group_are_the_company_s_new_deals(day):
    crm, t, _, _, owners = day
    team = set(owners[:5])
    by = inputs.arrivals_by(crm, t, lambda o: np.where(o.isin(team), "team", "rest"))
    whole = inputs.arrivals(crm, t)
    assert by["team"].per_week + by["rest"].per_week == pytest.approx(whole.per_week)
    both = np.sort(np.r_[by["team"].values, by["rest"].values])
    np.testing.assert_array_equal(both, np.sort(whole.values))
    mine = inputs.arrivals(crm, t, owners=sorted(team))
    np.testing.assert_array_equal(np.sort(mine.values), np.sort(by["team"].values))
    assert mine.per_week == by["team"].per_week


@pytest.mark.parametrize("summed", [False, True])
def test_the_groups_scenarios_add_up_to_the_total(monkeypatch, summed):
    """`simulate` with each group's own new deals: the groups' scenarios sum, scenario by
    scenario, to the total (with the small deals summed by their normal law too)."""
    rng = np.random.default_rng(2)
    n = 3_000
    deals = pd.DataFrame({
        "value": rng.lognormal(8, 1, n), "win_prob": rng.uniform(0.05, 0.95, n),
        "age": rng.integers(0, 200, n).astype(float), "timing_group": rng.choice(["a", "b"], n),
        "group": rng.choice(["x", "y", "z"], n),
    })  # fmt: skip
    d = rng.gamma(2.0, 30.0, 3000)
    km = KaplanMeier.fit(d, rng.random(3000) < 0.9, rng.choice(["a", "b"], 3000))
    if summed:
        monkeypatch.setattr(montecarlo, "DRAW_ALL", 1_000)
        monkeypatch.setattr(montecarlo, "EXACT_DEALS", 200)
        monkeypatch.setattr(montecarlo, "MIN_SUMMED", 100)
    # "w" has new deals only, "z" open deals only
    new = {g: Arrivals(per_week=5.0 + k, values=rng.lognormal(8, 1, 50), win_rate=0.3)
           for k, g in enumerate(["x", "y", "w"])}  # fmt: skip
    periods, _ = calendar(pd.Timestamp("2024-02-14"))
    fc = simulate(deals, km, periods, scenarios=600, shock_sigma=0.3, by="group",
                  group_arrivals=new, keep=True)  # fmt: skip
    assert fc.groups.names == ["w", "x", "y", "z"]
    np.testing.assert_allclose(fc.groups.totals.sum(axis=1), fc.totals, rtol=1e-9)
    assert (fc.groups.from_new[3] == 0).all() and fc.groups.from_new[0].sum() > 0
    assert (fc.groups.from_pipeline[0] == 0).all() and fc.groups.from_pipeline[3].sum() > 0


def test_the_slip_of_the_saved_bands_widens_the_near_weeks(day):
    """The live forecast draws the slip its bands carry: a team's closes coming sooner or later
    together widen the next weeks' range far more than the quarter's."""
    crm, t, f, win, _ = day
    plain = forecast(crm, t, f, win, bands=Bands(0.3), scenarios=SCENARIOS).table
    slipped = forecast(crm, t, f, win, bands=Bands(0.3, slip=10.0), scenarios=SCENARIOS).table
    weeks = (plain["kind"] == "week").to_numpy()
    ahead = weeks & (plain["from_pipeline"] > 0).to_numpy()  # the weeks still to come
    near = np.flatnonzero(ahead)[:2]
    width = lambda tab, k: tab.loc[k, "p90"] - tab.loc[k, "p10"]  # noqa: E731
    assert all(width(slipped, k) > 1.2 * width(plain, k) for k in near)
    # the share of deals following it, too: half of them widen the near weeks less
    half = forecast(crm, t, f, win, bands=Bands(0.3, slip=10.0, slip_share=0.5),
                    scenarios=SCENARIOS).table  # fmt: skip
    assert all(width(plain, k) < width(half, k) < width(slipped, k) for k in near)
