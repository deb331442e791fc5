"""The forecast proves itself on past quarters: on MavenTech and on generated data, the P10-P90
band covers 70-90% of the 13-week actuals and the P50 misses less than the exponential baseline
(median over the cutoffs)."""

from __future__ import annotations

import pytest

from dataset import store
from dataset.ingest import ingest_files
from forecasting.backtest import backtest
from scoring.features import prepare


def _check(bt):
    s = bt.summary.set_index(["method", "weeks"])
    ours, base = s.loc[("ours", 13)], s.loc[("exponential baseline", 13)]
    assert ours["cutoffs"] >= 8
    assert 0.7 <= ours["coverage_p10_p90"] <= 0.9, bt.summary
    # the median: the first cutoffs, with under half a year of history, miss by more (the deals
    # closed by then are the quick ones), and a mean would be theirs
    assert ours["p50_median_ape"] < base["p50_median_ape"], bt.summary
    assert bt.rows["actual"].gt(0).all()


@pytest.fixture(scope="module")
def maventech_crm(maventech, tmp_path_factory):
    db = store.connect(tmp_path_factory.mktemp("fm") / "m.db")
    ingest_files(db, [maventech])
    return prepare(store.load_crm(db))


def test_backtest_maventech(maventech_crm):
    _check(backtest(maventech_crm))


def test_backtest_generated(demo_crm):
    _check(backtest(demo_crm))
