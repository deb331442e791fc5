"""Risk is monotone in each of its inputs, stays in 0-100, and ranks by value at risk."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.risk import risk_parts, risk_score

RNG = np.random.default_rng(3)
N = 2000


def _inputs():
    return {
        "win_prob": RNG.uniform(0, 1, N),
        "value": RNG.lognormal(8, 1.5, N),
        "median_value": 3000.0,
        "age_days": RNG.uniform(0, 300, N),
        "typical_cycle": RNG.uniform(10, 120, N),
        "days_since_activity": np.where(RNG.random(N) < 0.2, np.nan, RNG.uniform(0, 90, N)),
        "days_in_stage": RNG.uniform(0, 200, N),
        "typical_stage_days": np.where(RNG.random(N) < 0.2, np.nan, RNG.uniform(5, 60, N)),
        "close_pushes": RNG.integers(0, 5, N).astype(float),
        "days_to_expected_close": RNG.uniform(-60, 120, N),
    }


def _risk(**kw):
    kw.setdefault("typical_stage_days", np.full(len(kw["win_prob"]), 20.0))
    return risk_score(risk_parts(**kw))


@pytest.mark.parametrize(
    ("name", "delta", "direction"),
    [
        ("win_prob", -0.1, +1),  # lower win probability never lowers risk
        ("value", 2.0, +1),  # (multiplied) a bigger deal never lowers risk
        ("age_days", 30.0, +1),
        ("days_since_activity", 10.0, +1),
        ("days_in_stage", 10.0, +1),
        ("close_pushes", 1.0, +1),
        ("days_to_expected_close", -10.0, +1),  # further past the expected date
    ],
)
def test_monotone(name, delta, direction):
    base = _inputs()
    moved = dict(base)
    moved[name] = base[name] * delta if name == "value" else base[name] + delta
    if name == "win_prob":
        moved[name] = np.clip(moved[name], 0, 1)
    r0, r1 = _risk(**base), _risk(**moved)
    assert np.all(direction * (r1 - r0) >= 0)
    assert np.any(r1 != r0)


def test_range_and_extremes():
    r = _risk(**_inputs())
    assert r.min() >= 0 and r.max() <= 100
    calm = _risk(win_prob=np.array([1.0]), value=np.array([1.0]), median_value=1e6,
                 age_days=np.array([1.0]), typical_cycle=np.array([50.0]),
                 days_since_activity=np.array([0.0]), days_in_stage=np.array([0.0]),
                 close_pushes=np.array([0.0]), days_to_expected_close=np.array([30.0]))  # fmt: skip
    worst = _risk(win_prob=np.array([0.0]), value=np.array([1e9]), median_value=1.0,
                  age_days=np.array([500.0]), typical_cycle=np.array([50.0]),
                  days_since_activity=np.array([90.0]), days_in_stage=np.array([90.0]),
                  close_pushes=np.array([5.0]), days_to_expected_close=np.array([-90.0]))  # fmt: skip
    assert calm[0] == 0.0 and worst[0] == 100.0
