"""The forecast's bands are fitted honestly: by rolling origin, a cutoff's bands never depend on
an outcome not yet known on it; the centre correction and the shock do what they claim; an old
saved config (sigma only) still loads."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.bands import MIN_PAIRS, RECENT, SHRINK, Bands, fit, matured, rolling

WEEKS = (4, 8, 13)
SIGMAS = (0.0, 0.2, 0.4, 0.6, 0.8)
# (sigma, slip in days, share of deals following it): no slip but in the last tests
GRID = tuple((s, 0.0, 1.0) for s in SIGMAS)
CUTOFFS = list(pd.date_range("2024-01-01", periods=20, freq="7D"))


def _sims(n_cutoffs: int = len(CUTOFFS), scenarios: int = 400, level: float = 100.0):
    """(cutoffs, sigmas, scenarios, horizons): revenue centred on `level` x weeks, spread in
    proportion to sigma (the same normal draws for every sigma, as the backtest's seed does)."""
    z = np.random.default_rng(5).standard_normal(scenarios)
    z = (z - np.median(z)) / z.std()  # median 0, so the P50 is the level exactly
    grid = np.array([[level * w * np.exp(s * z) for w in WEEKS] for s in SIGMAS])  # (S, H, N)
    return np.broadcast_to(grid.transpose(0, 2, 1)[None], (n_cutoffs, *grid.transpose(0, 2, 1).shape)).copy()  # fmt: skip


def _actuals(ratio: float = 1.0, spread: float = 0.3) -> np.ndarray:
    """Actuals `ratio` x the P50 on average, with a log spread of `spread`."""
    e = np.random.default_rng(9).standard_normal((len(CUTOFFS), len(WEEKS)))
    return ratio * 100.0 * np.array(WEEKS)[None, :] * np.exp(spread * e)


def test_a_cutoff_never_uses_an_outcome_not_yet_known():
    """At cutoff k, the 13-week outcome of cutoff k-1 is still unknown (it ends 12 weeks after
    c_k): making it enormous must not change k's bands; once it matures, it must."""
    sims, actual = _sims(), _actuals(1.2)
    # with the centre correction (which any used outcome moves), so that a leak would show
    before = rolling(CUTOFFS, sims, actual, GRID, WEEKS, centre=True)
    k = 15
    future = actual.copy()
    future[k - 1, 2] *= 50  # the miss at cutoff k - 1, 13 weeks: known only on c_{k-1} + 13w
    after = rolling(CUTOFFS, sims, future, GRID, WEEKS, centre=True)
    assert not matured(CUTOFFS, CUTOFFS[k], WEEKS)[k - 1, 2]
    assert after[: k + 1] == before[: k + 1]  # every cutoff up to k: exactly the same bands
    # in this 20-week history it never matures: make a used one (cutoff k - 4, 4 weeks, known
    # on c_k exactly) enormous
    used = actual.copy()
    used[k - 4, 0] *= 50
    changed = rolling(CUTOFFS, sims, used, GRID, WEEKS, centre=True)
    assert matured(CUTOFFS, CUTOFFS[k], WEEKS)[k - 4, 0]
    assert changed[k] != before[k]
    assert changed[:k] == before[:k]  # not matured before c_k


def test_too_little_history_gives_the_stated_defaults():
    sims, actual = _sims(), _actuals()
    bands = rolling(CUTOFFS, sims, actual, GRID, WEEKS)
    usable = [matured(CUTOFFS, c, WEEKS) for c in CUTOFFS]
    for b, ok in zip(bands, usable, strict=True):
        if ok.sum() < MIN_PAIRS:
            assert b == Bands()
        else:  # the latest RECENT of each horizon
            assert b.pairs == sum(min(RECENT, n) for n in ok.sum(axis=0))


def test_the_centre_correction_is_the_shrunk_mean_of_the_latest_misses():
    """Actuals 1.5 x the simulated P50 at every cutoff: the correction (measured by the study,
    not used live) is the mean log miss of the latest outcomes per horizon, shrunk towards 0."""
    sims, actual = _sims(), _actuals(ratio=1.5, spread=0.15)
    usable = np.ones_like(actual, dtype=bool)
    b = fit(sims, actual, usable, GRID, WEEKS, centre=True)
    n = RECENT  # the latest of each horizon
    miss = np.log(actual[-n:] / (100.0 * np.array(WEEKS))[None, :]).mean(axis=0)
    assert np.allclose([b.centre[w] for w in WEEKS], miss * n / (n + SHRINK), atol=1e-4)
    assert all(v > 0.2 for v in b.centre.values())  # raised, as the misses say


def test_an_unbiased_centre_is_left_alone_and_the_factor_interpolates():
    sims, actual = _sims(), _actuals(ratio=1.0, spread=0.05)
    b = fit(sims, actual, np.ones_like(actual, dtype=bool), GRID, WEEKS, centre=True)
    assert all(abs(v) < 0.05 for v in b.centre.values())
    # the live forecast fits no correction, however biased the misses
    live = fit(sims, _actuals(ratio=1.5), np.ones_like(actual, dtype=bool), GRID, WEEKS)
    assert live.centre == {} and np.all(live.factor([28, 91]) == 1.0)
    c = Bands(0.3, {4: 0.1, 13: 0.4})
    assert np.allclose(
        np.log(c.factor([0, 28, 63.0, 91, 200])), [0.1, 0.1, 0.1 + 0.3 * 35 / 63, 0.4, 0.4]
    )


def test_an_old_config_with_sigma_only_still_loads():
    old = Bands.from_config({"sigma": 0.45, "data_end": "2024-01-01"})
    assert old.sigma == 0.45 and not old.centre and np.all(old.factor([10, 90]) == 1.0)
    assert old.slip == 0.0 and old.slip_share == 1.0  # saved before the slip: none
    new = Bands(0.3, {4: -0.1, 8: 0.0, 13: 0.2}, pairs=12, slip=5.0, slip_share=0.5)
    assert Bands.from_config(new.to_config()) == new
    lockstep = Bands.from_config({"sigma": 0.3, "slip_days": 5.0})  # saved before the share
    assert lockstep.slip == 5.0 and lockstep.slip_share == 1.0


def test_the_misses_of_the_first_months_do_not_keep_the_band_wide():
    """The forecast gets better as history grows: early misses 5x the later ones. The shock is
    fitted on the latest outcomes, so it is the one the later misses alone would give."""
    sims = _sims()
    e = np.random.default_rng(3).standard_normal((len(CUTOFFS), len(WEEKS)))
    spread = np.where(np.arange(len(CUTOFFS)) < 10, 1.0, 0.2)[:, None]
    actual = 100.0 * np.array(WEEKS)[None, :] * np.exp(spread * e)
    everything = np.ones_like(actual, dtype=bool)
    b = fit(sims, actual, everything, GRID, WEEKS)
    later = everything.copy()
    later[:10] = False
    assert b == fit(sims, actual, later, GRID, WEEKS)
    early = everything.copy()
    early[10:] = False
    assert b.sigma < fit(sims, actual, early, GRID, WEEKS).sigma


def test_an_old_saved_forecast_keeps_the_timing_it_was_fitted_with():
    assert Bands.from_config({"sigma": 0.3}).timing == "km-any"
    assert Bands().timing == "km" and Bands.from_config(Bands().to_config()).timing == "km"


def test_a_slip_is_chosen_where_the_near_weeks_miss_more_than_the_far_ones():
    """Misses wide at 4 weeks and narrow at 13 (as a shared slip of the close dates makes them:
    the near weeks' revenue depends most on when deals close) are fitted by the grid's slip,
    which widens the near weeks alone; misses alike at every horizon by the shock alone."""
    z = np.random.default_rng(5).standard_normal(400)
    z = (z - np.median(z)) / z.std()
    by_horizon = {0.0: (0.3, 0.3, 0.3), 5.0: (0.6, 0.25, 0.1)}  # the log spread each gives
    grid = ((0.3, 0.0, 1.0), (0.3, 5.0, 1.0))
    one = np.array([[100.0 * w * np.exp(by_horizon[d][h] * z) for h, w in enumerate(WEEKS)]
                    for _, d, _ in grid])  # fmt: skip
    sims = np.broadcast_to(one.transpose(0, 2, 1)[None], (len(CUTOFFS), *one.transpose(0, 2, 1).shape))  # fmt: skip
    e = np.random.default_rng(9).standard_normal((len(CUTOFFS), len(WEEKS)))
    everything = np.ones((len(CUTOFFS), len(WEEKS)), dtype=bool)
    for d, spread in by_horizon.items():
        actual = 100.0 * np.array(WEEKS)[None, :] * np.exp(np.array(spread)[None, :] * e)
        assert fit(sims, actual, everything, grid, WEEKS).slip == d
    # the share of deals following the slip is the grid entry's, fitted with it
    halves = ((0.3, 0.0, 1.0), (0.3, 5.0, 0.5))
    actual = 100.0 * np.array(WEEKS)[None, :] * np.exp(np.array(by_horizon[5.0])[None, :] * e)
    chosen = fit(sims, actual, everything, halves, WEEKS)
    assert (chosen.slip, chosen.slip_share) == (5.0, 0.5)
