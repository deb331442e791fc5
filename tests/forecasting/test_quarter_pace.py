"""The calendar's pace of wins (forecasting.quarter_pace): found from complete quarters only, and
the forecast's closes moved by it exactly as drawing every deal deal by deal moves them (open
deals drawn one by one, small deals summed, new deals), a slip on top."""

from __future__ import annotations

import re
from datetime import date

import numpy as np
import pandas as pd
import pytest

from forecasting import montecarlo as mc
from forecasting.many_small import Atoms, slipped_edges
from forecasting.montecarlo import Arrivals, simulate
from forecasting.periods import calendar
from forecasting.quarter_pace import CLEAR, PaceClock, QuarterPace
from forecasting.timing import KaplanMeier
from tests.forecasting.test_montecarlo import revenue_by_period

AS_OF = pd.Timestamp("2024-02-14")  # the middle month of a quarter
PERIODS, _ = calendar(AS_OF)
ATOMS = Atoms.of(PERIODS)
BUNCHED = QuarterPace((0.6, 0.9, 1.5), quarters=3)


def _wins(first: str, last: str, per_month: tuple[int, int, int]) -> pd.DataFrame:
    """Won deals closed evenly through each month, `per_month` of them in each month of a
    quarter, and one lost deal closed on the first day."""
    rows = []
    for month in pd.period_range(first, last, freq="M"):
        n = per_month[(month.month - 1) % 3]
        days = np.linspace(0, month.days_in_month - 1, n).round()
        rows += [(month.start_time + pd.Timedelta(days=d), "won") for d in days]
    rows.append((pd.Timestamp(first), "lost"))
    return pd.DataFrame(rows, columns=["closed_on", "status"])


def test_the_pace_is_each_months_share_of_wins_over_its_share_of_days_from_whole_quarters():
    deals = _wins("2023-01", "2024-02", (20, 40, 60))  # Q1-Q4 2023 whole, Q1 2024 under way
    pace = QuarterPace.fit(deals, pd.Timestamp("2024-02-20"))
    assert pace.quarters == 4
    even = np.zeros(3)
    for q in pd.period_range("2023Q1", "2023Q4", freq="Q"):
        days = np.array([(q.asfreq("M", "start") + k).days_in_month for k in range(3)], float)
        even += 120 * days / days.sum()
    seen = np.array([80.0, 160.0, 240.0])
    chi2 = ((seen - even) ** 2 / even).sum()
    assert chi2 > CLEAR
    np.testing.assert_allclose(pace.months, 1 + (seen / even - 1) * (1 - 2 / chi2), rtol=1e-12)
    assert pace.months[0] < 1 < pace.months[2]
    # a quarter whose start the CRM never saw is left out: it would look bunched at its end
    late = _wins("2023-02", "2024-02", (20, 40, 60))
    assert QuarterPace.fit(late, pd.Timestamp("2024-02-20")).quarters == 3
    # no whole quarter yet: no pace, days as drawn
    young = QuarterPace.fit(_wins("2023-11", "2024-02", (20, 40, 60)), pd.Timestamp("2024-02-20"))
    assert young.flat and young.clock(AS_OF) is None and young.quarters == 0
    # wins as even as their months' days: no pace
    flat = QuarterPace.fit(_wins("2023-01", "2024-02", (31, 29, 31)), pd.Timestamp("2024-02-20"))
    assert flat.flat and flat.quarters == 4 and flat.clock(AS_OF) is None
    assert "about evenly" in flat.text() and "by it." in pace.text()
    # a whole quarter without a win is a quarter seen: three whole ones here, one of them empty
    gap = _wins("2023-01", "2023-09", (20, 40, 60))
    gap = gap[(gap["closed_on"] < "2023-04-01") | (gap["closed_on"] >= "2023-07-01")]
    assert QuarterPace.fit(gap, pd.Timestamp("2023-10-05")).quarters == 3
    # every win in a quarter's last month: the quiet months at the floor, and the pace still 1
    # on average over a quarter (the clock neither runs fast nor slow)
    last = QuarterPace.fit(_wins("2023-01", "2023-12", (0, 0, 90)), pd.Timestamp("2024-01-01"))
    clock = last.clock(pd.Timestamp("2023-12-31"))
    assert min(last.months) > 0 and clock.tau[366] == pytest.approx(366, rel=0.01)


@pytest.mark.parametrize("truth", [(0.6, 0.9, 1.5), (1.0, 1.0, 1.0)], ids=["bunched", "even"])
def test_the_pace_of_a_known_world_is_found_and_chance_is_not_taken_for_one(truth):
    """Wins drawn day by day at a known pace per month of the quarter (300 a quarter, two
    years): the fit finds it within a few hundredths; even wins give no pace in 19 worlds of
    20 or more (the test's 1% is per world)."""
    start, end = pd.Timestamp("2022-01-01"), pd.Timestamp("2023-12-31")
    days = pd.date_range(start, end)
    rate = np.asarray(truth)[(days.month.to_numpy() - 1) % 3]
    found = []
    for seed in range(20):
        counts = np.random.default_rng(seed).poisson(300 / 91.25 * rate)
        closed = np.repeat(days.to_numpy(), counts)
        deals = pd.DataFrame(
            {
                "closed_on": pd.to_datetime(np.r_[closed, start.to_datetime64()]),
                "status": ["won"] * len(closed) + ["lost"],
            }
        )  # the CRM's first close
        found.append(QuarterPace.fit(deals, end))
    assert all(p.quarters == 8 for p in found)
    if truth[0] == 1.0:
        assert sum(p.flat for p in found) >= 19
    else:
        months = np.array([p.months for p in found])
        assert np.abs(months.mean(axis=0) - truth).max() < 0.03
        assert np.abs(months - truth).max() < 0.1


def test_the_clock_turns_pace_time_into_calendar_days_and_back():
    clock = BUNCHED.clock(AS_OF)
    assert clock.tau[1] == pytest.approx(0.9)  # day 0 is February 15th: the quarter's second month
    march = (pd.Timestamp("2024-03-01") - AS_OF).days - 1
    assert clock.tau[march + 1] - clock.tau[march] == pytest.approx(1.5)
    days = np.arange(-5, 1500)
    start = clock.at(days)
    inside = days >= 0
    assert np.array_equal(clock.calendar_days(start[inside]), days[inside])
    assert np.array_equal(clock.calendar_days(start[inside] + 0.999 * np.diff(clock.at(np.r_[days, 1500]))[inside]), days[inside])  # fmt: skip
    odd = clock.calendar_days(np.array([np.inf, -np.inf, np.nan]))
    assert odd[0] == np.inf and odd[1] == -np.inf and np.isnan(odd[2])


def _km() -> KaplanMeier:
    rng = np.random.default_rng(1)
    d = rng.gamma(2.0, 30.0, 3000)
    return KaplanMeier.fit(d, rng.random(3000) < 0.9, rng.choice(["a", "b"], 3000),
                           won=np.ones(3000, bool))  # fmt: skip


@pytest.mark.parametrize(("slip", "staged"), [(0, False), (-9, False), (9, True)],
                         ids=["curve", "curve, slip -9", "by stage, slip 9"])  # fmt: skip
def test_the_summed_deals_chances_are_the_paced_draws(slip, staged):
    """Each deal's chance of closing in each stretch of calendar days, paced and slipped, is
    what drawing it, spreading it over its day, pacing and slipping it gives."""
    rng = np.random.default_rng(2)
    n = 300
    ages = rng.integers(0, 200, n).astype(float)
    groups = rng.choice(["a", "b"], n).astype(object)
    first = rng.random(n) * 0.5
    within = np.column_stack([first, first + rng.random(n) * (1 - first)]) if staged else None
    sampler = _km().sampler(ages, groups, within)
    clock = BUNCHED.clock(AS_OF)
    edges = slipped_edges(ATOMS.edges, slip)
    cls, (chances,) = clock.chances(sampler, [edges])
    draws = 60_000
    seen = np.zeros((n, len(ATOMS.edges) - 1))
    for _ in range(10):
        days = sampler.dense_days(rng.random((draws // 10, n), dtype=np.float32))
        x = np.floor(days) + rng.random(days.shape, dtype=np.float32)
        day = np.maximum(clock.calendar_days(x) + slip, 0.0)
        atom = np.searchsorted(ATOMS.edges, day, side="right") - 1
        for a in range(len(ATOMS.edges) - 1):
            seen[:, a] += (atom == a).sum(axis=0)
    seen /= draws
    expected = chances[cls]
    tolerance = 5 * np.sqrt(expected * (1 - expected) / draws) + 1e-4  # 6,900 cells
    assert np.all(np.abs(seen - expected) <= tolerance)
    plain = sampler.atom_chances_at([edges])[1][0][sampler.atom_chances_at([edges])[0]]
    month = PERIODS.names.index("2024-03")
    march = (ATOMS.edges[:-1] >= PERIODS.start[month]) & (ATOMS.edges[1:] <= PERIODS.end[month])
    assert expected[:, march].sum() > 1.05 * plain[:, march].sum()  # more closes in March


def _new_deals_paced(arrivals: Arrivals, km: KaplanMeier, clock: PaceClock, scenarios: int,
                     seed: int, slips: np.ndarray) -> np.ndarray:  # fmt: skip
    """Revenue per (scenario, period) of new deals drawn deal by deal: born on a day of the
    horizon, won with the win rate, closing the curve's time after its birth in pace time (a
    whole day spread over the day), then its scenario's slip later, never before its birth."""
    rng = np.random.default_rng(seed)
    horizon = PERIODS.horizon
    cdf = km.cdf_from_start(3 * horizon)
    born = rng.poisson(arrivals.per_week / 7.0 * arrivals.win_rate * horizon, scenarios)
    scenario = np.repeat(np.arange(scenarios), born)
    birth = rng.integers(0, horizon, len(scenario))
    took = np.searchsorted(cdf, rng.random(len(scenario)), side="right").astype(float)
    x = clock.at(birth) + took + rng.random(len(scenario))
    slip = slips[rng.integers(0, len(slips), scenarios)][scenario]
    close = np.where(took < len(cdf), np.maximum(clock.calendar_days(x) + slip, birth), horizon)
    value = arrivals.values[rng.integers(0, len(arrivals.values), len(scenario))]
    return revenue_by_period(scenario, close, value, scenarios, PERIODS)


@pytest.mark.parametrize("slip_days", [0.0, 20.0])
def test_new_and_open_deals_are_paced_as_drawing_them_deal_by_deal(slip_days):
    km = KaplanMeier.fit(np.random.default_rng(11).gamma(2.0, 6.0, 3000), np.ones(3000, bool), None)
    arrivals = Arrivals(per_week=40.0, values=np.full(20, 1_000.0), win_rate=0.5)
    clock = BUNCHED.clock(AS_OF)
    nobody = pd.DataFrame({"value": [0.0], "win_prob": [0.0], "age": [1.0], "timing_group": ["a"]})
    got = simulate(nobody, km, PERIODS, scenarios=20_000, seed=3, arrivals=arrivals,
                   slip_days=slip_days, pace=clock).table  # fmt: skip
    want = _new_deals_paced(arrivals, km, clock, 20_000, 4, mc.slip_levels(slip_days))
    for k in range(len(PERIODS.names)):
        error = 4 * np.sqrt(2 / len(want)) * want[:, k].std() + 1.0
        assert abs(got.loc[k, "mean"] - want[:, k].mean()) <= error, PERIODS.names[k]
    plain = simulate(nobody, km, PERIODS, scenarios=20_000, seed=3, arrivals=arrivals,
                     slip_days=slip_days).table  # fmt: skip
    march = PERIODS.names.index("2024-03")
    assert got.loc[march, "mean"] > 1.03 * plain.loc[march, "mean"]
    # an open deal certain to close on day 20 (in pace time): on the calendar day that holds it
    one = pd.DataFrame({"value": [100.0], "win_prob": [1.0], "age": [0.0], "timing_group": ["a"]})
    fixed = KaplanMeier.fit(np.full(50, 20.0), np.ones(50, bool), None)
    drawn = simulate(one, fixed, PERIODS, scenarios=2_000, seed=5, pace=clock, keep=True)
    day = clock.calendar_days(np.array([20.0, 20.999]))
    weeks = [k for k, kind in enumerate(PERIODS.kind) if kind == "week"]
    holds = [k for k in weeks if PERIODS.start[k] <= day[0] and day[1] < PERIODS.end[k]]
    assert len(holds) == 1 and (drawn.totals[:, holds[0]] == 100.0).all()


def test_deals_timed_by_stage_keep_their_chances_and_only_new_deals_are_paced():
    """The stage models know the days to the quarter's end: their deals' chances to close
    within 4 and 13 weeks stay as given, paced or not; new deals are paced."""
    rng = np.random.default_rng(4)
    n = 200
    deals = pd.DataFrame({"value": 1000.0, "win_prob": rng.random(n), "age": 10.0,
                          "timing_group": "a", "within_28d": 0.3, "within_91d": 0.8})  # fmt: skip
    km = _km()
    weeks = mc.Periods(("4 weeks", "13 weeks"), ("horizon", "horizon"), np.zeros(2, np.int64),
                       np.array([28, 91]))  # fmt: skip
    clock = BUNCHED.clock(AS_OF)
    paced = simulate(deals, km, weeks, scenarios=4000, seed=1, pace=clock).table
    plain = simulate(deals, km, weeks, scenarios=4000, seed=1).table
    pd.testing.assert_frame_equal(paced, plain)
    expected = (deals["value"] * deals["win_prob"]).sum() * np.array([0.3, 0.8])
    np.testing.assert_allclose(paced["mean"], expected, rtol=0.02)
    new = Arrivals(per_week=30.0, values=np.full(5, 500.0), win_rate=0.5)
    with_new = [simulate(deals, km, weeks, scenarios=4000, seed=1, arrivals=new, pace=p).table
                for p in (clock, None)]  # fmt: skip
    assert with_new[0].loc[0, "from_new"] != with_new[1].loc[0, "from_new"]


def test_a_big_paced_pipeline_with_its_small_deals_summed_forecasts_the_same(monkeypatch):
    rng = np.random.default_rng(7)
    n = 3000
    deals = pd.DataFrame({"value": rng.lognormal(8, 0.7, n), "win_prob": rng.uniform(0.05, 0.95, n),
                          "age": rng.integers(0, 300, n).astype(float),
                          "timing_group": rng.choice(["a", "b"], n)})  # fmt: skip
    km = _km()
    clock = BUNCHED.clock(AS_OF)

    def run(draw_all: int, seed: int):
        monkeypatch.setattr(mc, "DRAW_ALL", draw_all)
        monkeypatch.setattr(mc, "EXACT_DEALS", 300)
        return simulate(deals, km, PERIODS, scenarios=6000, seed=seed, shock_sigma=0.3,
                        slip_days=6.0, slip_share=0.5, pace=clock).table  # fmt: skip

    drawn, summed, other = run(10**9, 1), run(1000, 1), run(10**9, 2)
    for col in ("p10", "p50", "p90", "mean"):
        a, b, c = (f[col].to_numpy() for f in (drawn, summed, other))
        busy = a > 0.02 * a.max()
        noise = np.abs(c - a)[busy] / a[busy]
        assert np.all(np.abs(b - a)[busy] / a[busy] <= np.maximum(2.5 * noise.max(), 0.01)), col


def test_the_live_forecast_of_maventech_times_its_wins_by_the_quarter(maventech_digest):
    """MavenTech's wins bunch in a quarter's last month: the forecast report says so."""
    text = (maventech_digest["artifacts"] / "forecast_test.md").read_text(encoding="utf-8")
    line = next(s for s in text.splitlines() if s.startswith("Wins in a quarter's"))
    first, second, third = (
        float(x) for x in re.search(r"([\d.]+) / ([\d.]+) / ([\d.]+)", line).groups()
    )
    assert first < 0.9 < 1.2 < third and first < second < third, line


def test_a_quarter_ending_on_the_as_of_date_is_whole():
    pace = QuarterPace.fit(_wins("2023-01", "2023-12", (10, 10, 30)), date(2023, 12, 31))
    assert pace.quarters == 4
