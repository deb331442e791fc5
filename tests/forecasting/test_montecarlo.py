"""The Monte Carlo forecast: reproducible, ordered quantiles, exact when nothing is uncertain."""

from __future__ import annotations

import struct
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from forecasting import montecarlo as mc
from forecasting.chart import fan_chart
from forecasting.montecarlo import Arrivals, simulate
from forecasting.periods import calendar
from forecasting.timing import Fixed, KaplanMeier, kaplan_meier
from forecasting.warped_draws import within_columns

RNG = np.random.default_rng(5)


def _pipeline(n: int = 400) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "value": RNG.lognormal(8, 1, n),
            "win_prob": RNG.uniform(0.05, 0.95, n),
            "age": RNG.integers(0, 200, n).astype(float),
            "timing_group": RNG.choice(["a", "b"], n),
            "region": RNG.choice(["East", "West", "Central"], n),
        }
    )


def _km() -> KaplanMeier:
    d = RNG.gamma(2.0, 30.0, 3000)
    return KaplanMeier.fit(d, RNG.random(3000) < 0.9, RNG.choice(["a", "b"], 3000))


PERIODS, BOUNDS = calendar(pd.Timestamp("2024-02-14"))
ARRIVALS = Arrivals(per_week=12.0, values=RNG.lognormal(8, 1, 200), win_rate=0.4)


def test_same_seed_same_numbers_other_seed_other_numbers():
    deals, km = _pipeline(), _km()
    a = simulate(deals, km, PERIODS, scenarios=3000, seed=7, shock_sigma=0.4, arrivals=ARRIVALS)
    b = simulate(deals, km, PERIODS, scenarios=3000, seed=7, shock_sigma=0.4, arrivals=ARRIVALS)
    c = simulate(deals, km, PERIODS, scenarios=3000, seed=8, shock_sigma=0.4, arrivals=ARRIVALS)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert not np.allclose(a.table["p50"], c.table["p50"])


@pytest.mark.parametrize("sigma", [0.0, 0.8])
def test_quantiles_are_ordered_everywhere(sigma):
    f = simulate(_pipeline(), _km(), PERIODS, scenarios=2000, seed=1, shock_sigma=sigma,
                 arrivals=ARRIVALS, by="region")  # fmt: skip
    for t in (f.table, f.by_group):
        assert (t["p10"] <= t["p50"]).all() and (t["p50"] <= t["p90"]).all()
        assert (t["p10"] >= 0).all()
    quarter = f.table[f.table["kind"] == "quarter"]
    weeks = f.table[f.table["kind"] == "week"]
    assert quarter["mean"].sum() == pytest.approx(weeks["mean"].sum(), rel=0.02)  # same money


def test_certain_deals_with_fixed_dates_forecast_their_exact_total():
    n = 50
    days = RNG.integers(0, PERIODS.horizon, n)
    deals = pd.DataFrame({"value": RNG.integers(100, 10_000, n).astype(float),
                          "win_prob": 1.0, "age": 0.0, "timing_group": "x"})  # fmt: skip
    f = simulate(deals, Fixed(days), PERIODS, scenarios=500, seed=3, shock_sigma=1.5)
    for k, row in f.table.iterrows():
        inside = (days >= PERIODS.start[k]) & (days < PERIODS.end[k])
        expected = deals["value"][inside].sum()
        assert row["p10"] == row["p50"] == row["p90"] == pytest.approx(expected, abs=1e-6)


def test_chunking_does_not_change_the_answer(monkeypatch):
    import forecasting.montecarlo as mc

    deals, km = _pipeline(), _km()
    whole = simulate(deals, km, PERIODS, scenarios=4000, seed=4).table
    monkeypatch.setattr(mc, "MAX_CELLS", 400 * 7)  # 7 scenarios a chunk
    chunked = simulate(deals, km, PERIODS, scenarios=4000, seed=4).table
    quarters = whole["kind"] == "quarter"
    # other random streams, same distribution: the quarters agree within Monte Carlo noise
    assert np.allclose(whole.loc[quarters, "mean"], chunked.loc[quarters, "mean"], rtol=0.02)


def test_censoring_matters():
    """Deals take 0-200 days; after 120 days of selling, the long ones are still open. A fit on
    closed deals alone thinks deals close in about 50 days; with the open deals as censored
    observations the median comes out right (100)."""
    rng = np.random.default_rng(0)
    start = rng.uniform(0, 120, 20_000)
    length = rng.uniform(0, 200, 20_000)
    closed = start + length <= 120
    observed = np.where(closed, length, 120 - start)
    naive = KaplanMeier.fit(observed[closed], np.ones(closed.sum(), bool)).median()
    km = KaplanMeier.fit(observed, closed)
    assert abs(km.median() - 100) <= 8
    assert naive < 60


def test_kaplan_meier_matches_a_hand_computation():
    # durations 1, 2 (censored), 3, 3: S(1) = 3/4, S(2) = 3/4, S(3) = 3/4 * (1 - 2/2) = 0
    s = kaplan_meier(np.array([1, 2, 3, 3]), np.array([True, False, True, True]), max_days=5)
    assert np.allclose(s[:5], [1.0, 0.75, 0.75, 0.0, 0.0])


def test_stale_deals_never_close():
    d = np.concatenate([RNG.uniform(0, 100, 500), np.full(300, 400.0)])
    closed = np.concatenate([np.ones(500, bool), np.zeros(300, bool)])
    km = KaplanMeier.fit(d, closed)
    sampler = km.sampler(np.array([10.0, 300.0]), np.array(["?", "?"], dtype=object))
    days = sampler.days(RNG.random(2000).astype(np.float32), np.repeat([0, 1], 1000))
    assert np.isfinite(days[:1000]).mean() > 0.3  # a young deal often closes
    assert np.isinf(days[1000:]).all()  # one older than every deal that ever closed: never


def test_chart_is_a_real_png(tmp_path):
    f = simulate(_pipeline(), _km(), PERIODS, scenarios=500, seed=1, arrivals=ARRIVALS)
    table = f.table.assign(
        start=BOUNDS["start"].dt.date.to_numpy(), end=BOUNDS["end"].dt.date.to_numpy()
    )
    deals = pd.DataFrame({"status": ["won", "won", "lost"], "value": [1000.0, 2500.0, 0.0],
                          "close_date": pd.to_datetime(["2024-01-10", "2024-02-01", "2024-02-02"])})  # fmt: skip
    png = fan_chart(table, deals, pd.Timestamp("2024-02-14"), target=200_000)
    path = tmp_path / "forecast.png"
    path.write_bytes(png)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (720, 480)
    assert path.stat().st_size > 20_000


def test_a_quarters_last_day_forecasts_the_next_two_quarters():
    """MavenTech ends on 2017-12-31: 'this quarter' is 2018-Q1, with nothing won in it yet."""
    _, bounds = calendar(pd.Timestamp("2017-12-31"))
    quarters = bounds.loc[bounds["kind"] == "quarter", "name"].tolist()
    assert quarters == ["2018-Q1", "2018-Q2"]
    cumulative = bounds[bounds["kind"] == "cumulative"]
    assert (cumulative["start"] == pd.Timestamp("2018-01-01")).all()
    _, mid = calendar(pd.Timestamp("2017-12-30"))
    assert mid.loc[mid["kind"] == "quarter", "name"].tolist() == ["2017-Q4", "2018-Q1"]


def _new_deals_by_hand(arrivals: Arrivals, km: KaplanMeier, periods, scenarios: int, seed: int):
    """Revenue per (scenario, period) of new deals, drawn the plain way: each day's number of
    new wins is Poisson(rate x win rate x F(d)), each win's value drawn from the list."""
    rng = np.random.default_rng(seed)
    horizon = periods.horizon
    lam = arrivals.per_week / 7.0 * arrivals.win_rate * km.cdf_from_start(horizon)
    if arrivals.won_scale is not None:  # what new deals win by each age, against the curve's
        lam = lam * arrivals.won_scale[np.minimum(np.arange(horizon), len(arrivals.won_scale) - 1)]
    counts = rng.poisson(lam[None, :], (scenarios, horizon))
    daily = np.zeros((scenarios, horizon))
    cells = np.repeat(np.arange(counts.size), counts.ravel())
    drawn = arrivals.values[rng.integers(0, len(arrivals.values), len(cells))]
    daily.ravel()[:] = np.bincount(cells, weights=drawn, minlength=counts.size)
    cum = np.concatenate([np.zeros((scenarios, 1)), daily.cumsum(axis=1)], axis=1)
    return cum[:, periods.end] - cum[:, periods.start]


@pytest.mark.parametrize(
    "values",
    [
        np.r_[np.ones(99), 10_000.0],
        np.random.default_rng(12).lognormal(8, 1.5, 300),
        np.full(50, 1_000.0),
    ],
    ids=["one big deal among small ones", "lognormal", "equal values"],
)
def test_new_deals_have_the_law_of_drawing_them_one_by_one(values):
    """The new deals' revenue (drawn per stretch of days, a stretch of many wins from its normal
    law where that law is nearly symmetric) has the quantiles and mean of drawing every day's
    wins and every win's value; a few big deals among many small ones are not a normal sum."""
    km = KaplanMeier.fit(np.random.default_rng(11).gamma(2.0, 4.0, 3000), np.ones(3000, bool), None)
    arrivals = Arrivals(per_week=70.0, values=values, win_rate=0.5)
    nobody = pd.DataFrame({"value": [0.0], "win_prob": [0.0], "age": [1.0], "timing_group": ["a"]})
    got = simulate(nobody, km, PERIODS, scenarios=20_000, seed=3, arrivals=arrivals).table
    want = _new_deals_by_hand(arrivals, km, PERIODS, 20_000, seed=4)
    # the first weeks and months, and the quarters
    checked = [k for k, kind in enumerate(PERIODS.kind) if kind != "quarter"][:6]
    checked += [k for k, kind in enumerate(PERIODS.kind) if kind == "quarter"]
    for k in checked:
        q = np.quantile(want[:, k], [0.1, 0.5, 0.9])
        # a normal law's quantiles fall between the sums a few deals make: a typical deal apart
        near = 0.05 * (q[2] - q[0]) + np.median(values)
        for name, expected in zip(("p10", "p50", "p90"), q, strict=True):
            assert abs(got.loc[k, name] - expected) <= near, (PERIODS.names[k], name)
        # within four standard errors of the difference of two means of 20,000 scenarios
        error = 4 * np.sqrt(2 / len(want)) * want[:, k].std() + 1.0
        assert abs(got.loc[k, "mean"] - want[:, k].mean()) <= error, (PERIODS.names[k], "mean")


def test_new_deals_win_by_each_age_as_their_scale_says():
    """`Arrivals.won_scale` (what deals born in view won by each age, against the curve's): none
    of the new deals' wins in the first 40 days, 1.5 times the curve's after, and the last
    value past its end; the simulation's means are the plain draw's with it, not without."""
    km = KaplanMeier.fit(
        np.random.default_rng(11).gamma(2.0, 15.0, 3000), np.ones(3000, bool), None
    )
    values = np.random.default_rng(12).lognormal(8, 1.0, 300)
    won_scale = np.r_[np.zeros(40), np.full(60, 1.5)]  # 1.5 from day 100 on too
    arrivals = Arrivals(per_week=70.0, values=values, win_rate=0.5, won_scale=won_scale)
    nobody = pd.DataFrame({"value": [0.0], "win_prob": [0.0], "age": [1.0], "timing_group": ["a"]})
    got = simulate(nobody, km, PERIODS, scenarios=4000, seed=3, arrivals=arrivals).table
    want = _new_deals_by_hand(arrivals, km, PERIODS, 20_000, seed=4)
    plain = _new_deals_by_hand(replace(arrivals, won_scale=None), km, PERIODS, 20_000, seed=4)
    for k in range(len(PERIODS.names)):
        error = 4 * np.sqrt(1 / 4000 + 1 / 20_000) * want[:, k].std() + 1.0
        assert abs(got.loc[k, "mean"] - want[:, k].mean()) <= error, PERIODS.names[k]
        if PERIODS.end[k] <= 40:  # without the scale, wins in the first weeks
            assert got.loc[k, "mean"] == 0.0 < plain[:, k].mean(), PERIODS.names[k]
    # the first 46 days: only deals born in the first 6 reach 40 days; the whole horizon: most
    # of its new deals are older than 40 days at its end, and win 1.5 times as much
    q1, last = PERIODS.names.index("2024-Q1"), len(PERIODS.names) - 1
    assert got.loc[q1, "mean"] < 0.5 * plain[:, q1].mean()
    assert got.loc[last, "mean"] > 1.15 * plain[:, last].mean()


def _new_deals_born_and_closed(arrivals: Arrivals, km: KaplanMeier, periods, scenarios: int,
                               seed: int, slips: np.ndarray,
                               share: float = 1.0) -> np.ndarray:  # fmt: skip
    """Revenue per (scenario, period) of new deals drawn deal by deal: each born on a day of the
    horizon, won with the win rate, closing a time drawn from the curve after its birth, then,
    with chance `share`, its scenario's slip later (sooner where negative, never before its
    birth)."""
    rng = np.random.default_rng(seed)
    horizon = periods.horizon
    cdf = km.cdf_from_start(horizon + int(np.abs(slips).max()))
    born = rng.poisson(arrivals.per_week / 7.0 * arrivals.win_rate * horizon, scenarios)
    scenario = np.repeat(np.arange(scenarios), born)
    birth = rng.integers(0, horizon, len(scenario))
    took = np.searchsorted(cdf, rng.random(len(scenario)), side="right")  # len(cdf): not yet
    slip = slips[rng.integers(0, len(slips), scenarios)][scenario]
    slip = slip * (rng.random(len(scenario)) < share)
    close = np.where(took < len(cdf), birth + np.maximum(took + slip, 0), horizon)
    value = arrivals.values[rng.integers(0, len(arrivals.values), len(scenario))]
    return revenue_by_period(scenario, close, value, scenarios, periods)


def revenue_by_period(scenario: np.ndarray, close: np.ndarray, value: np.ndarray, scenarios: int,
                      periods) -> np.ndarray:  # fmt: skip
    """(scenarios, periods): the value of the deals closing inside the horizon, by the
    scenario and close day (from the as-of date) of each."""
    horizon = periods.horizon
    close = np.asarray(close, np.int64)
    inside = close < horizon
    daily = np.bincount(scenario[inside] * horizon + close[inside], weights=value[inside],
                        minlength=scenarios * horizon).reshape(scenarios, horizon)  # fmt: skip
    cum = np.concatenate([np.zeros((scenarios, 1)), daily.cumsum(axis=1)], axis=1)
    return cum[:, periods.end] - cum[:, periods.start]


@pytest.mark.parametrize(("slip_days", "share"), [(8.0, 1.0), (30.0, 1.0), (30.0, 0.3)])
def test_a_slip_moves_open_and_new_deals_closes_as_drawing_them_deal_by_deal(slip_days, share):
    """The shared slip of the close dates: the forecast's mean per period is that of drawing
    each deal (open ones and new ones, which never close before they appear) with its
    scenario's slip (each deal following it with chance `share`); the first week, whose
    closes a slip later takes away and a slip sooner piles up at day 0, is where it shows
    most."""
    km = KaplanMeier.fit(np.random.default_rng(11).gamma(2.0, 6.0, 3000), np.ones(3000, bool), None)
    arrivals = Arrivals(per_week=40.0, values=np.full(20, 1_000.0), win_rate=0.5)
    slips = mc.slip_levels(slip_days)
    nobody = pd.DataFrame({"value": [0.0], "win_prob": [0.0], "age": [1.0], "timing_group": ["a"]})
    got = simulate(nobody, km, PERIODS, scenarios=20_000, seed=3, arrivals=arrivals,
                   slip_days=slip_days, slip_share=share).table  # fmt: skip
    want = _new_deals_born_and_closed(arrivals, km, PERIODS, 20_000, 4, slips, share)
    plain = simulate(nobody, km, PERIODS, scenarios=20_000, seed=3, arrivals=arrivals).table
    for k in range(len(PERIODS.names)):
        error = 4 * np.sqrt(2 / len(want)) * want[:, k].std() + 1.0
        assert abs(got.loc[k, "mean"] - want[:, k].mean()) <= error, (PERIODS.names[k], "mean")
    # open deals: one certain deal that closes in 3 days, slipped by each scenario's draw
    one = pd.DataFrame({"value": [100.0], "win_prob": [1.0], "age": [0.0], "timing_group": ["a"]})
    fixed = KaplanMeier.fit(np.full(50, 3.0), np.ones(50, bool), None)
    days = simulate(one, fixed, PERIODS, scenarios=9_000, seed=5, slip_days=slip_days,
                    slip_share=share, keep=True)  # fmt: skip
    week = days.totals[:, 0]  # the first period: the rest of this week, days 0-3
    there = share * np.mean(np.maximum(3 + slips, 0) < PERIODS.end[0]) + 1 - share
    assert 0 < there < 1
    assert abs((week > 0).mean() - there) <= 4 * np.sqrt(there * (1 - there) / 9_000) + 0.002
    assert plain.loc[0, "mean"] != got.loc[0, "mean"]


def test_a_slip_of_known_close_days_and_a_slip_too_small_to_move_a_day():
    """Deals with known close days (`Fixed`) slip as drawn ones do; a slip that rounds to no day
    at every level is none, to the bit; a negative or missing one is refused in words."""
    deals = pd.DataFrame({"value": [100.0, 200.0], "win_prob": [1.0, 1.0], "age": [0.0, 0.0],
                          "timing_group": ["a", "a"]})  # fmt: skip
    fixed = Fixed(np.array([2.0, 40.0]))
    got = simulate(deals, fixed, PERIODS, scenarios=900, seed=1, slip_days=6.0, keep=True)
    # days 0-3: the deal due on day 2 is there unless its scenario's slip took it past day 3
    share = np.mean(np.maximum(2 + mc.slip_levels(6.0), 0) < PERIODS.end[0])
    assert 0 < share < 1
    seen = (got.totals[:, 0] > 0).mean()
    assert abs(seen - share) <= 4 * np.sqrt(share * (1 - share) / 900)
    km = _km()
    plain = simulate(deals, km, PERIODS, scenarios=500, seed=2).table
    tiny = simulate(deals, km, PERIODS, scenarios=500, seed=2, slip_days=0.1).table
    pd.testing.assert_frame_equal(plain, tiny)
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="slip_days must be a number of days"):
            simulate(deals, _km(), PERIODS, scenarios=10, slip_days=bad)
        with pytest.raises(ValueError, match="slip_share must be a chance from 0 to 1"):
            simulate(deals, _km(), PERIODS, scenarios=10, slip_days=5.0, slip_share=bad)
    # no deal following the slip is no slip, to the bit
    nobody = simulate(deals, km, PERIODS, scenarios=500, seed=2, slip_days=9.0, slip_share=0.0)
    pd.testing.assert_frame_equal(plain, nobody.table)


def test_the_new_deals_a_week_said_are_the_ones_drawn():
    """`Arrivals.drawn_per_week`, which the forecast says beside what new deals bring, is the
    pace the simulation draws: new deals none of whose values is known are counted but cannot be
    drawn, so none is said; with values, the pace counted, and revenue from them."""
    km = KaplanMeier.fit(np.random.default_rng(11).gamma(2.0, 6.0, 3000), np.ones(3000, bool), None)
    nobody = pd.DataFrame({"value": [0.0], "win_prob": [0.0], "age": [1.0], "timing_group": ["a"]})
    unknown = Arrivals(per_week=40.0, values=np.zeros(0), win_rate=0.5)
    valued = Arrivals(per_week=40.0, values=np.full(20, 1_000.0), win_rate=0.5)
    assert (unknown.drawn_per_week, valued.drawn_per_week) == (0.0, 40.0)
    for arrivals in (unknown, valued):
        table = simulate(nobody, km, PERIODS, scenarios=2_000, seed=3, arrivals=arrivals).table
        assert (table["from_new"].sum() > 0) == (arrivals.drawn_per_week > 0)


def test_samplers_kept_across_shocks_draw_the_same_and_follow_the_deals(monkeypatch):
    """The backtest simulates each cutoff's deals at every shock of its grid: the close-time
    samplers it keeps (deals drawn one by one, by stage, and the summed small ones) give the
    very draws built afresh give, are reused, and are rebuilt for other deals, other timing,
    or other deals drawn one by one (which the grouping and new deals can change)."""
    monkeypatch.setattr(mc, "DRAW_ALL", 300)
    monkeypatch.setattr(mc, "EXACT_DEALS", 100)
    monkeypatch.setattr(mc, "MIN_SUMMED", 50)
    km, other_km = _km(), _km()
    deals = _pipeline(600)
    deals[within_columns()] = np.sort(RNG.uniform(0.0, 1.0, (600, 2)), axis=1)  # by stage

    def same(d, timing, sigma, kept, **kw):
        def run(samplers):
            return simulate(d, timing, PERIODS, scenarios=600, seed=3, shock_sigma=sigma,
                            arrivals=ARRIVALS, slip_days=6.0, keep=True, samplers=samplers,
                            **kw).totals  # fmt: skip

        np.testing.assert_array_equal(run(kept), run(None))

    kept: dict = {}
    for sigma in (0.0, 0.5, 1.0):
        same(deals, km, sigma, kept)
    first, small = kept["exact"], kept["small"]
    same(deals, km, 0.7, kept)
    assert kept["exact"] is first and kept["small"] is small  # taken, not built again
    others = _pipeline(600)  # other deals, then other timing, with the same dict
    same(others, km, 0.5, kept)
    same(others, other_km, 0.5, kept)
    assert kept["exact"] is not first
    # by region, its 3 groups summed; then a fourth group's new deals: more groups than are
    # summed, so every deal is drawn one by one, with the same deals, timing and grouping
    monkeypatch.setattr(mc, "MAX_SUMMED_GROUPS", 3)
    same(others, km, 0.5, kept, by="region")
    assert "small" in kept
    north = {"North": ARRIVALS}
    same(others, km, 0.5, kept, by="region", group_arrivals=north)
    assert "small" not in kept
