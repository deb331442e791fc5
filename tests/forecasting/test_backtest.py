"""The forecast proves itself on past quarters: on MavenTech and on generated data, the P10-P90
band covers 70-90% of the 13-week actuals and the P50 misses less than the exponential baseline
(median over the cutoffs)."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd


def _check(bt):
    s = bt.summary.set_index(["method", "weeks"])
    ours, base = s.loc[("ours", 13)], s.loc[("exponential baseline", 13)]
    assert ours["cutoffs"] >= 8
    assert 0.7 <= ours["coverage_p10_p90"] <= 0.9, bt.summary
    # the median: the first cutoffs, with under half a year of history, miss by more (the deals
    # closed by then are the quick ones), and a mean would be theirs
    assert ours["p50_median_ape"] < base["p50_median_ape"], bt.summary
    assert bt.rows["actual"].gt(0).all()


def _saved(run: dict) -> SimpleNamespace:
    """The backtest the first digest ran to fit the forecast's shared shock, as it saved it."""
    assert run["code"] == 0, run["out"]
    folder = run["artifacts"]
    return SimpleNamespace(
        summary=pd.read_csv(folder / "forecast_test_summary.csv"),
        rows=pd.read_csv(folder / "forecast_test_cutoffs.csv"),
    )


def test_backtest_maventech(maventech_digest):
    _check(_saved(maventech_digest))


def test_backtest_generated(main_job):
    _check(_saved(main_job))
