"""The forecast proves itself on past quarters, out of sample: on MavenTech and on generated
data, each past date's forecast used only the outcomes known on it, its P10-P90 band held most of
the 13-week actuals, and its P50 missed less than the exponential baseline's (median over the
cutoffs). The aims over many cutoffs and datasets are the study's
(benchmarks/forecast_backtest_study.py, artifacts/forecast_backtest.md)."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from forecasting.backtest import HORIZONS


def _check(bt):
    s = bt.summary.set_index(["method", "weeks"])
    ours, base = s.loc[("ours", 13)], s.loc[("exponential baseline", 13)]
    assert ours["cutoffs"] >= 8
    # honest, so not tuned to 80% on these very dates (the first ones use the default shock)
    assert 0.6 <= ours["coverage_p10_p90"] <= 1.0, bt.summary
    # the median: the first cutoffs, with under half a year of history, miss by more (the deals
    # closed by then are the quick ones), and a mean would be theirs
    assert ours["p50_median_ape"] < base["p50_median_ape"], bt.summary
    assert bt.rows["actual"].gt(0).all()
    # each date's shock was fitted on no more outcomes than had matured by that date
    cutoffs = pd.to_datetime(sorted(bt.rows["cutoff"].unique()))
    for _, r in bt.rows[bt.rows["method"] == "ours"].iterrows():
        day = pd.Timestamp(r["cutoff"])
        known = sum(c + pd.Timedelta(weeks=w) <= day for c in cutoffs for w in HORIZONS)
        assert r["fitted_on_pairs"] <= known, r


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
