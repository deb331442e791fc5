"""The won deals' references the reasons quote: each won deal counts once, whatever its number of
snapshot rows, and a 90th percentile is one that makes "90% of won deals ... within N days" true."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from scoring.train import references


def _rows(deals: list[str], quiet: list[float], label: int = 1, known: bool = True):
    return pd.DataFrame(
        {"label": label, "known": known, "days_since_activity": quiet, "value_used": 1000.0,
         "age_days": 30.0},
        index=pd.Index(deals, name="deal_id"),
    )  # fmt: skip


def test_each_won_deal_counts_once():
    rows = pd.concat([
        _rows(["W0"] * 10, [100.0] * 10),  # one deal with many quiet snapshots
        _rows([f"W{i}" for i in range(1, 10)], [float(i) for i in range(1, 10)]),
        _rows(["L"] * 5, [500.0] * 5, label=0),  # lost: not a reference
        _rows(["U"], [900.0], known=False),  # still open, estimated: not a reference
    ])  # fmt: skip
    refs = references(rows)
    # by row, 10 of 19 rows say 100 days; by deal, 9 of 10 won deals had activity within 9 days
    assert refs["days_since_activity"] == 5.0
    assert refs["days_since_activity_p90"] == 9.0


def test_the_90th_percentile_is_seen_and_holds():
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(1, 40))
        deals = [f"D{i}" for i in rng.integers(0, max(n // 3, 1), n)]
        quiet = rng.integers(0, 60, n).astype(float)
        quiet[rng.random(n) < 0.1] = np.nan
        p90 = references(_rows(deals, list(quiet)))["days_since_activity_p90"]
        frame = pd.DataFrame({"deal": deals, "q": quiet})
        frame["share"] = 1.0 / frame.groupby("deal")["q"].transform("size")  # a deal is 1
        frame = frame.dropna()  # a row without the fact gives up its share
        if frame.empty:
            assert math.isnan(p90)
            continue
        total = frame["share"].sum()
        assert p90 in set(frame["q"])
        assert frame.loc[frame["q"] <= p90, "share"].sum() >= 0.9 * total - 1e-9
        # and no higher than needed (at an exact tie, rounding may take the next value: safe)
        assert frame.loc[frame["q"] < p90, "share"].sum() <= 0.9 * total + 1e-9


def test_no_won_deal_no_references():
    refs = references(_rows(["L"], [3.0], label=0))
    assert math.isnan(refs["days_since_activity_p90"]) and math.isnan(refs["days_since_activity"])
