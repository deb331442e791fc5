"""The chance of making a target (issue 14): from the quarter's percentile grid, against the
scenarios themselves; targets read from revbot.toml and a CSV; the sentence checked against its
numbers."""

from __future__ import annotations

import numpy as np
import pytest

from bot.config import ConfigError
from bot.settings import settings_from
from bot.target_text import chance_text, odds_text
from forecasting.montecarlo import GRID
from forecasting.targets import Odds, chance, odds


def test_a_certain_pipeline_makes_a_lower_target_surely_and_a_higher_one_never():
    grid = [1_000_000.0] * 101  # every scenario: the same total
    assert chance(grid, 999_999) == 1.0 and chance(grid, 1_000_000) == 1.0
    assert chance(grid, 1_000_001) == 0.0
    assert chance_text(1.0) == "100%" and chance_text(0.0) == "0%"


@pytest.mark.parametrize("seed", range(5))
def test_the_chance_is_the_share_of_scenarios_at_or_above_the_target(seed):
    rng = np.random.default_rng(seed)
    totals = rng.lognormal(14, 0.4, 10_000) + rng.choice([0, 2e5], 10_000)  # skewed, two humps
    grid = np.quantile(totals, GRID).tolist()
    for target in np.quantile(totals, rng.uniform(0.01, 0.99, 25)):
        assert chance(grid, target) == pytest.approx((totals >= target).mean(), abs=0.011)
    targets = np.sort(rng.uniform(totals.min(), totals.max(), 50))
    chances = [chance(grid, t) for t in targets]
    assert chances == sorted(chances, reverse=True)  # a higher target is never likelier
    assert chance([], 5) is None and odds(5, [], 1, 0) is None


@pytest.mark.parametrize(
    "target,p50,won,pipeline",
    [(1.5e6, 1.31e6, 4e5, 8.2e5), (1.0e6, 1.31e6, 4e5, 8.2e5), (3e5, 1.31e6, 4e5, 8.2e5),
     (2e6, 1.9e6, 0.0, 0.0), (1.2e6, 1.2e6, 1e5, 3e6)],
)  # fmt: skip
def test_the_sentence_says_what_its_numbers_say(target, p50, won, pipeline):
    o = Odds(target, 0.34, p50, won, pipeline)
    text = odds_text(o, "2025-Q1")
    assert text.startswith("*Chance of making 2025-Q1: 34%* (P50 ")
    if "short" in text:
        assert p50 < target and o.gap == pytest.approx(target - p50) and o.gap > 0
    else:
        assert p50 >= target and "at or above" in text and o.gap == 0
    if "already won" in text:
        assert won >= target and o.coverage is None
    elif "coverage" in text:
        assert o.coverage == pytest.approx(pipeline / (target - won))
        assert f"coverage {o.coverage:.1f}x" in text and "expected to close in the quarter" in text
    whole = odds_text(Odds(target, 0.34, p50, won, pipeline, "open"), "2025-Q1")
    if "coverage" in whole:
        assert "open, all of it: the CRM gives open deals no close date" in whole


def test_targets_from_the_config_and_a_csv(tmp_path):
    csv = tmp_path / "targets.csv"
    csv.write_text(
        'quarter,scope,amount\n2025-q2,region:West,"400,000"\n2025-Q1,rep:Bo Chen,90000\n'
    )
    config = {
        "targets": [{"quarter": "2025-Q1", "amount": 1_500_000},
                    {"quarter": "2025-Q1", "scope": "manager:Ann Lee", "amount": 5e5}],
        "forecast": {"targets_csv": str(csv)},
    }  # fmt: skip
    settings = settings_from(config, env={})
    got = {(t.quarter, t.scope): t.amount for t in settings.targets}
    assert got == {("2025-Q1", "all"): 1.5e6, ("2025-Q1", "manager:Ann Lee"): 5e5,
                   ("2025-Q2", "region:West"): 4e5, ("2025-Q1", "rep:Bo Chen"): 9e4}  # fmt: skip
    from bot.settings import Scope

    assert settings.target("2025-Q1", Scope("all")).amount == 1.5e6
    assert settings.target("2025-Q2", Scope("all")) is None


@pytest.mark.parametrize(
    "config,message",
    [({"targets": [{"quarter": "Q1 2025", "amount": 1}]}, "[[targets]] #1: quarter 'Q1 2025' is not like 2025-Q1"),
     ({"targets": [{"quarter": "2025-Q1", "amount": -5}]}, "[[targets]] #1: amount -5 is not a positive number"),
     ({"targets": [{"quarter": "2025-Q1", "amount": "lots"}]}, "amount 'lots' is not a number"),
     ({"targets": [{"quarter": "2025-Q1", "scope": "team:x", "amount": 1}]}, "[[targets]] #1: scope 'team:x'"),
     ({"targets": [{"quarter": "2025-Q1", "amount": 1, "owner": "x"}]}, "unknown keys ['owner']"),
     ({"targets": [{"quarter": "2025-Q1", "amount": 1}, {"quarter": "2025-q1", "scope": "all", "amount": 2}]},
      "[[targets]] #2: a second target for 2025-Q1 all (the first is [[targets]] #1)"),
     ({"forecast": {"targets_csv": "/nowhere/t.csv"}}, "[forecast] targets_csv: cannot read /nowhere/t.csv"),
     ({"forecast": {"target_csv": "x"}}, "[forecast]: unknown keys ['target_csv']")],
)  # fmt: skip
def test_a_bad_target_is_named(config, message):
    with pytest.raises(ConfigError) as caught:
        settings_from(config, env={})
    assert message in str(caught.value)
