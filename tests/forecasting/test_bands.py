"""The forecast's bands are fitted honestly: by rolling origin, a cutoff's bands never depend on
an outcome not yet known on it; the centre correction and the shock do what they claim; an old
saved config (sigma only) still loads."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.bands import MIN_PAIRS, SHRINK, Bands, fit, matured, rolling

WEEKS = (4, 8, 13)
SIGMAS = (0.0, 0.2, 0.4, 0.6, 0.8)
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
    before = rolling(CUTOFFS, sims, actual, SIGMAS, WEEKS, centre=True)
    k = 15
    future = actual.copy()
    future[k - 1, 2] *= 50  # the miss at cutoff k - 1, 13 weeks: known only on c_{k-1} + 13w
    after = rolling(CUTOFFS, sims, future, SIGMAS, WEEKS, centre=True)
    assert not matured(CUTOFFS, CUTOFFS[k], WEEKS)[k - 1, 2]
    assert after[: k + 1] == before[: k + 1]  # every cutoff up to k: exactly the same bands
    # in this 20-week history it never matures: make a used one (cutoff 0, 4 weeks) enormous
    used = actual.copy()
    used[0, 0] *= 50
    changed = rolling(CUTOFFS, sims, used, SIGMAS, WEEKS, centre=True)
    assert matured(CUTOFFS, CUTOFFS[k], WEEKS)[0, 0]
    assert changed[k] != before[k]
    assert changed[:4] == before[:4]  # not matured before 4 weeks had passed


def test_too_little_history_gives_the_stated_defaults():
    sims, actual = _sims(), _actuals()
    bands = rolling(CUTOFFS, sims, actual, SIGMAS, WEEKS)
    usable = [int(matured(CUTOFFS, c, WEEKS).sum()) for c in CUTOFFS]
    for b, n in zip(bands, usable, strict=True):
        if n < MIN_PAIRS:
            assert b == Bands()
        else:
            assert b.pairs == n


def test_the_centre_correction_moves_a_biased_p50_onto_the_actuals():
    """Actuals 1.5 x the simulated P50 at every cutoff: the correction is the shrunk mean log
    miss per horizon, and the corrected bands hold about 80% of the actuals."""
    sims, actual = _sims(), _actuals(ratio=1.5, spread=0.15)
    usable = np.ones_like(actual, dtype=bool)
    b = fit(sims, actual, usable, SIGMAS, WEEKS, centre=True)
    n = len(CUTOFFS)
    miss = np.log(actual / (100.0 * np.array(WEEKS))[None, :]).mean(axis=0)
    assert np.allclose([b.centre[w] for w in WEEKS], miss * n / (n + SHRINK), atol=1e-4)
    assert all(v > 0.3 for v in b.centre.values())  # raised, as the misses say
    # the misses spread 0.15 in log around their bias: the grid's narrowest band that holds them
    assert b.sigma == 0.2
    factor = b.factor(np.array([7 * w for w in WEEKS]))
    lo, hi = np.quantile(sims[:, SIGMAS.index(b.sigma)] * factor, [0.1, 0.9], axis=1)
    assert 0.7 <= ((lo <= actual) & (actual <= hi)).mean() <= 0.9
    assert 0.3 <= (np.median(sims[:, 1] * factor, axis=1) > actual).mean() <= 0.7
    # without the correction, the same bands would miss most actuals, all of them high
    lo0, hi0 = np.quantile(sims[:, SIGMAS.index(b.sigma)], [0.1, 0.9], axis=1)
    assert (actual > hi0).mean() > 0.5 and not (actual < lo0).any()


def test_an_unbiased_centre_is_left_alone_and_the_factor_interpolates():
    sims, actual = _sims(), _actuals(ratio=1.0, spread=0.05)
    b = fit(sims, actual, np.ones_like(actual, dtype=bool), SIGMAS, WEEKS, centre=True)
    assert all(abs(v) < 0.05 for v in b.centre.values())
    # the live forecast fits no correction, however biased the misses
    live = fit(sims, _actuals(ratio=1.5), np.ones_like(actual, dtype=bool), SIGMAS, WEEKS)
    assert live.centre == {} and np.all(live.factor([28, 91]) == 1.0)
    c = Bands(0.3, {4: 0.1, 13: 0.4})
    assert np.allclose(
        np.log(c.factor([0, 28, 63.0, 91, 200])), [0.1, 0.1, 0.1 + 0.3 * 35 / 63, 0.4, 0.4]
    )


def test_an_old_config_with_sigma_only_still_loads():
    old = Bands.from_config({"sigma": 0.45, "data_end": "2024-01-01"})
    assert old.sigma == 0.45 and not old.centre and np.all(old.factor([10, 90]) == 1.0)
    new = Bands(0.3, {4: -0.1, 8: 0.0, 13: 0.2}, pairs=12)
    assert Bands.from_config(new.to_config()) == new
