"""Timing a won deal: the time wins take, not the time any close takes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting import inputs
from forecasting.montecarlo import Periods, simulate
from forecasting.timing import time_to_win
from scoring.crm import Crm

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
