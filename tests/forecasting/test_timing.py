"""Timing a won deal: the time wins take, not the time any close takes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting import inputs
from forecasting.montecarlo import Periods, simulate
from forecasting.timing import KaplanMeier, kaplan_meier, time_scale, time_to_win
from scoring.crm import Crm
from scoring.samples import open_win_chance

TODAY = pd.Timestamp("2024-09-01")


def _crm(rng: np.random.Generator, n: int = 4000) -> Crm:
    """Half the deals are won 60-120 days after they are engaged; the others are lost within 30.
    Deals closing after TODAY are still open on it."""
    won = rng.random(n) < 0.5
    length = np.where(won, rng.uniform(60, 120, n), rng.uniform(0, 30, n)).astype(int)
    engage = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 600, n), unit="D")
    deals = pd.DataFrame(
        {
            "deal_id": [f"d{i}" for i in range(n)],
            "engage_date": engage,
            "closed_on": engage + pd.to_timedelta(length, unit="D"),
            "status": np.where(won, "won", "lost"),
            "product": "a",
        }
    )
    empty = pd.DataFrame()
    return Crm(deals, empty, empty, empty, empty, empty, data_end=TODAY)


def test_time_to_win_matches_a_hand_computation():
    # days 1 (won), 2 (lost), 3 (censored), 3 (won), 4 (lost): Aalen-Johansen gives each win
    # 0.2 (the second after 1/5 won, 1/5 lost, at risk 3 of which one wins), all wins 0.4
    s = time_to_win(np.array([1, 2, 3, 3, 4]), np.array([True, True, False, True, True]),
                    np.array([True, False, False, True, False]), max_days=5)  # fmt: skip
    assert np.allclose(s, [1.0, 0.5, 0.5, 0.0, 0.0, 0.0])


def test_a_won_deal_is_timed_by_the_time_wins_take():
    """New deals, each won with chance 0.5: none is won within 30 days, all wins come within
    150. The forecast times them with the time to a win; the time to any close (the curve the
    forecast used before, mostly the quick losses) put half of the wins within the month."""
    crm = _crm(np.random.default_rng(3))
    deals = pd.DataFrame({"value": 1000.0, "win_prob": 0.5, "age": 0.0, "timing_group": "a"},
                         index=range(200))  # fmt: skip
    periods = Periods(names=("30 days", "150 days"), kind=("horizon", "horizon"),
                      start=np.zeros(2, np.int64), end=np.array([30, 150]))  # fmt: skip
    expected = 200 * 1000.0 * 0.5

    def pipeline(timing):
        fc = simulate(deals, timing, periods, scenarios=400, seed=0)
        return fc.table["from_pipeline"].to_numpy()

    month, later = pipeline(inputs.fit_timing(crm, TODAY))
    assert month < 0.01 * expected
    assert abs(later - expected) < 0.03 * expected
    any_month, _ = pipeline(inputs.fit_timing(crm, TODAY, "km-any"))
    assert any_month > 0.3 * expected


def test_a_product_with_few_wins_is_timed_at_its_own_pace_not_the_pools():
    """A big product with 20 closed deals (too few for a curve of its own) takes three times as
    long as the 2,000 small ones. Its wins used to be timed by the pooled curve, which the small
    deals make: half of them within 40 days, where none of them closes that soon."""
    rng = np.random.default_rng(5)
    small = rng.uniform(20, 60, 2000)
    big = 3 * rng.uniform(20, 60, 20)
    days = np.r_[small, big].astype(int)
    closed = np.ones(len(days), bool)
    won = rng.random(len(days)) < 0.5
    won[-20:] = [True, False] * 10
    groups = np.r_[["small"] * 2000, ["big"] * 20]
    km = KaplanMeier.fit(days, closed, groups, won=won)
    within_40 = 1 - km.curve("big")[40]
    assert within_40 < 0.05  # the pooled curve says about half
    assert 1 - km.pooled[40] > 0.4
    assert 100 <= km.median("big") <= 150  # the small deals' median is about 40
    # what the group's own closes say is weighed against the pool: with none, the pool's pace
    assert time_scale(np.array([]), np.array([], bool), kaplan_meier(days, closed)) == 1.0
    assert 2.4 <= time_scale(big, np.ones(20, bool), kaplan_meier(days, closed)) <= 3.2


def test_a_products_pace_from_its_wins_allows_for_the_slow_wins_not_seen_yet():
    """A big product's wins take three times as long as the pool's (60-180 days). Its deals
    started 60-140 days before the fit, so only the wins quicker than that are known: read as
    they are, they make the product look twice as slow as the pool; read as truncated, about
    three times."""
    rng = np.random.default_rng(11)
    pool_days = rng.uniform(20, 60, 4000).astype(int)
    pool = time_to_win(pool_days, np.ones(4000, bool), np.ones(4000, bool))
    took = 3 * rng.uniform(20, 60, 400)
    limits = rng.uniform(60, 140, 400)
    seen = took <= limits
    days = took[seen][:30]
    naive = time_scale(days, None, pool, np.full(len(days), 10_000.0))
    truncated = time_scale(days, None, pool, limits[seen][:30])
    assert naive < 2.2 and 2.7 <= truncated <= 3.6, (naive, truncated)


def test_deals_engaged_before_closes_were_recorded_are_timed_from_then():
    """Half the wins come within 10 days, half after 80-100 (MavenTech's are bimodal too). The
    CRM keeps only the deals closed from 2024-03-01 on (as MavenTech records no close before
    2017-03-01): of the deals engaged before, it holds only those still open then, so their
    quick wins are missing. Counted from their engagement they make a win look slower than it
    is; watched from the day closes were first recorded (left truncation), not."""
    rng = np.random.default_rng(8)
    n = 6000
    won = rng.random(n) < 0.6
    quick = rng.random(n) < 0.5
    length = np.where(quick & won, rng.uniform(0, 10, n), rng.uniform(80, 100, n)).astype(int)
    engage = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 600, n), unit="D")
    deals = pd.DataFrame({"deal_id": [f"d{i}" for i in range(n)], "engage_date": engage,
                          "closed_on": engage + pd.to_timedelta(length, unit="D"),
                          "status": np.where(won, "won", "lost"), "product": "a"})  # fmt: skip
    kept = deals[deals["closed_on"] >= pd.Timestamp("2024-03-01")].reset_index(drop=True)
    crm = Crm(kept, *[pd.DataFrame()] * 5, data_end=TODAY)
    known = inputs.durations(crm, TODAY)
    first = kept["closed_on"].min()
    expected = (first - kept["engage_date"]).dt.days.clip(lower=0)
    assert (known["entry"] == expected[known.index]).all() and (known["entry"] > 0).sum() > 300
    timing = inputs.fit_timing(crm, TODAY)
    assert abs((1 - timing.pooled[30]) - 0.5) < 0.03, timing.pooled[30]
    naive = KaplanMeier.fit(known["days"], known["closed"], won=known["won"])
    assert 1 - naive.pooled[30] < 0.43, naive.pooled[30]
    # and the chance that a deal just engaged is won some day (the new deals' win rate; 0.56
    # counted from engagement: the early deals' quick wins are missing, their losses are not)
    p0 = open_win_chance(crm, TODAY, [0.0])[0]
    assert abs(p0 - won.mean()) < 0.02, (p0, won.mean())
