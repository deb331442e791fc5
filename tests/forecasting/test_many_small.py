"""Many small deals summed by their normal law (forecasting.many_small): each deal's chance of
closing in each stretch of days is what the sampler draws, the sums' mean and covariance are the
drawn ones', and a big pipeline forecast with the small deals summed agrees with the one that
draws every deal, within Monte Carlo noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import forecasting.many_small as ms
import forecasting.montecarlo as mc
from forecasting.many_small import Atoms, small_deals
from forecasting.montecarlo import Arrivals, shock_levels, simulate
from forecasting.periods import calendar
from forecasting.timing import KaplanMeier

RNG = np.random.default_rng(11)
PERIODS, _ = calendar(pd.Timestamp("2024-02-14"))
ATOMS = Atoms.of(PERIODS)


def _km() -> KaplanMeier:
    d = RNG.gamma(2.0, 30.0, 3000)
    return KaplanMeier.fit(d, RNG.random(3000) < 0.9, RNG.choice(["a", "b"], 3000))


def _pipeline(n: int, big: int = 0) -> pd.DataFrame:
    value = RNG.lognormal(8, 0.7, n)
    value[:big] *= 40  # a few deals that move a total on their own
    return pd.DataFrame(
        {
            "value": value,
            "win_prob": RNG.uniform(0.05, 0.95, n),
            "age": RNG.integers(0, 300, n).astype(float),
            "timing_group": RNG.choice(["a", "b"], n),
            "region": RNG.choice(["East", "West", "Central"], n),
        }
    )


def test_atoms_make_up_every_period():
    lengths = np.diff(ATOMS.edges)
    assert (lengths > 0).all() and ATOMS.edges[0] == 0 and ATOMS.edges[-1] == PERIODS.horizon
    assert np.array_equal(lengths @ ATOMS.to_periods, PERIODS.end - PERIODS.start)


def test_a_classs_chances_are_what_the_sampler_draws():
    km = _km()
    ages = np.array([0.0, 10.0, 45.0, 120.0, 299.0, 700.0])
    sampler = km.sampler(ages, np.array(["a", "b", "a", "b", "a", "b"], dtype=object))
    cls, chances = sampler.atom_chances(ATOMS.edges)
    draws = 200_000
    days = sampler.dense_days(RNG.random((draws, len(ages)), dtype=np.float32))
    closing = sampler.can_close()
    for deal in np.flatnonzero(closing):  # the others have no chance to win (see simulate)
        atom = np.searchsorted(ATOMS.edges, days[:, deal], side="right") - 1
        seen = np.bincount(atom[atom < len(ATOMS.edges) - 1], minlength=len(ATOMS.edges) - 1)
        expected = chances[cls[deal]]
        tolerance = 4 * np.sqrt(expected * (1 - expected) / draws) + 1e-4
        assert np.all(np.abs(seen / draws - expected) <= tolerance), deal
    assert not closing[-1] and chances[cls[-1]].sum() == 0  # far older than any deal that closed


@pytest.mark.parametrize(("slip", "share"), [(0, 1.0), (9, 1.0), (-9, 1.0), (9, 0.4)])
def test_the_sums_mean_and_covariance_are_the_drawn_ones(slip, share):
    """At a slip of the close dates too: `slip` days later, or sooner but not before day 0,
    for each deal with chance `share` (the others keep their own timing)."""
    deals = _pipeline(300)
    km = _km()
    sampler = km.sampler(deals["age"].to_numpy(), deals["timing_group"].to_numpy(dtype=object))
    p = deals["win_prob"].to_numpy()[None, :] * sampler.can_close()[None, :]
    value = deals["value"].to_numpy()
    law = small_deals(value, p.astype(np.float32), sampler, ATOMS, None, 1, np.array([slip]),
                      share)  # fmt: skip
    # every deal drawn, 40,000 times: won, then its close day (slipped), summed per atom
    draws = 40_000
    u = RNG.random((draws, len(deals)), dtype=np.float32)
    won = u < p
    with np.errstate(divide="ignore", invalid="ignore"):
        days = sampler.dense_days(u / p.astype(np.float32))
    follows = np.random.default_rng(1).random((draws, len(deals))) < share
    days = np.maximum(days + slip * follows, 0.0)
    atom = np.searchsorted(ATOMS.edges, days, side="right") - 1
    n_atoms = len(ATOMS.edges) - 1
    sums = np.zeros((draws, n_atoms))
    for a in range(n_atoms):
        sums[:, a] = np.where(won & (atom == a), value[None, :], 0.0).sum(axis=1)
    mean, cov = law.mean[0, 0, 0], law.root[0, 0, 0] @ law.root[0, 0, 0].T
    sd = np.sqrt(np.diag(cov))
    assert np.all(np.abs(sums.mean(axis=0) - mean) <= 4 * sd / np.sqrt(draws) + 1e-6)
    seen = np.cov(sums, rowvar=False)
    busy = sd > 0.05 * sd.max()  # atoms with something in them
    assert np.allclose(seen[np.ix_(busy, busy)], cov[np.ix_(busy, busy)], rtol=0.05, atol=0.05 * sd.max() ** 2)  # fmt: skip
    assert (cov[~np.eye(n_atoms, dtype=bool)] <= 1e-6).all()  # one close per deal: never positive


@pytest.mark.parametrize(("sigma", "slip", "share"),
                         [(0.0, 0.0, 1.0), (0.5, 0.0, 1.0), (0.3, 10.0, 1.0), (0.3, 10.0, 0.5)])  # fmt: skip
def test_a_big_pipeline_with_its_small_deals_summed_forecasts_the_same(monkeypatch, sigma, slip,
                                                                        share):  # fmt: skip
    deals, km = _pipeline(3000, big=30), _km()
    arrivals = Arrivals(per_week=20.0, values=RNG.lognormal(8, 1, 200), win_rate=0.4)

    def run(draw_all: int, seed: int, by=None):
        monkeypatch.setattr(mc, "DRAW_ALL", draw_all)
        monkeypatch.setattr(mc, "EXACT_DEALS", 300)
        return simulate(deals, km, PERIODS, scenarios=6000, seed=seed, shock_sigma=sigma,
                        slip_days=slip, slip_share=share, arrivals=arrivals, by=by)  # fmt: skip

    drawn, summed = run(10**9, 1), run(1000, 1)
    other = run(10**9, 2)  # the same method, other random numbers: what noise looks like
    months = drawn.table["kind"].isin(["month", "quarter"]).to_numpy()
    for col in ("p10", "p50", "p90", "mean"):
        a, b, c = (f.table.loc[months, col].to_numpy() for f in (drawn, summed, other))
        # a slip later than the rest of this month leaves it nothing in a ninth of scenarios
        zero = a == 0
        assert np.array_equal(zero, b == 0), col
        a, b, c = a[~zero], b[~zero], c[~zero]
        noise = np.abs(c - a) / a
        assert np.all(np.abs(b - a) / a <= np.maximum(2.5 * noise.max(), 0.01)), col
    # per region, too (the covariance is per group)
    regions = run(1000, 1, by="region").by_group
    drawn_regions = run(10**9, 1, by="region").by_group
    q = regions["kind"] == "quarter"
    assert np.allclose(regions.loc[q, "mean"], drawn_regions.loc[q, "mean"], rtol=0.03)


def test_only_a_big_pipeline_is_summed():
    small, big = _pipeline(mc.DRAW_ALL), _pipeline(mc.DRAW_ALL + 1, big=10)
    km = _km()
    assert len(mc._split(small, km, None, 1)[1]) == 0
    drawn, summed = mc._split(big, km, None, 1)
    assert len(drawn) == mc.EXACT_DEALS and len(summed) == len(big) - mc.EXACT_DEALS
    assert big["value"].iloc[drawn].min() >= big["value"].iloc[summed].max()  # the biggest drawn
    assert set(range(10)) <= set(drawn.tolist())
    assert (
        len(mc._split(big, km, None, mc.MAX_SUMMED_GROUPS + 1)[1]) == 0
    )  # too many groups: all drawn


def test_the_shock_levels_are_shared_with_the_drawn_deals():
    # a huge shock moves the summed deals with the drawn ones: a bad scenario is bad for both
    deals, km = _pipeline(3000), _km()
    levels = shock_levels(2.0)
    sampler = km.sampler(deals["age"].to_numpy(), deals["timing_group"].to_numpy(dtype=object))
    p = deals["win_prob"].to_numpy()
    logit = np.log(p) - np.log1p(-p)
    table = (1 / (1 + np.exp(-(logit[None, :] + levels[:, None])))).astype(np.float32)
    law = small_deals(deals["value"].to_numpy(), table, sampler, ATOMS, None, 1)
    totals = law.draw(np.random.default_rng(0), np.array([0, len(levels) - 1]))
    assert totals[0, 0].sum() < 0.3 * totals[1, 0].sum()


@pytest.mark.parametrize("block_cells", [1, 7 * 7 * 3, 4_000_000])
def test_the_covariance_sums_each_class_s_outer_product(monkeypatch, block_cells):
    """The per-class weighted sum of chance outer products, by blocks of classes, is the sum
    written out (whatever the block: one class at a time, three, all)."""
    monkeypatch.setattr(ms, "OUTER_CELLS", block_cells)
    rng = np.random.default_rng(3)
    w, chances = rng.random((4, 2, 10)), rng.random((10, 7))
    want = np.zeros((4, 2, 7, 7))
    for c in range(10):
        want += w[..., c, None, None] * np.outer(chances[c], chances[c])
    np.testing.assert_allclose(ms._weighted_outer(w, chances), want, rtol=1e-12)
