"""Identical deals are listed once: the grouped `collapse_duplicates` against the plain row-wise
rule it replaced (join each row's `SAME_DEAL` values as text, keep the first of each text), on
random frames with missing values, many sets and `top`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bot.digest import SAME_DEAL, collapse_duplicates, twin_sets


def reference(frame: pd.DataFrame) -> pd.DataFrame:
    """The rule as first written: obviously right, one Python string per row."""
    cols = [c for c in SAME_DEAL if c in frame]
    key = frame[cols].astype("string").fillna("<NA>").agg("\x1f".join, axis=1)
    ids = frame.groupby(key.to_numpy(), sort=False)["deal_id"].agg(tuple)
    first = ~key.duplicated().to_numpy()
    kept = frame[first].copy()
    kept["same_as"] = [ids[k][1:] for k in key[first]]
    return kept


def random_frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Deals drawn from a few hundred distinct ones, so that sets of twins are common; some
    values missing; shuffled, as a scope's rows come."""
    distinct = int(rng.integers(1, max(2, n // 2)))
    base = pd.DataFrame({
        "owner": rng.choice(["Ann", "Bob", None], distinct),
        "product": rng.choice(["GTX", "GTK 500"], distinct),
        "account": rng.choice(["Acme", "Beta", None, ""], distinct),
        "stage": rng.choice(["Engaging", "Prospecting"], distinct),
        "value": rng.choice([26_768.0, 4_821.0, np.nan, 0.1 + 0.2], distinct),
        "expected_close": rng.choice(["2018-01-15", None], distinct),
        "win_prob": rng.choice([0.63, 0.21, 0.3], distinct),
        "risk": rng.choice([65.0, 75.0], distinct),
        "drivers": rng.choice(['[{"key": "activity"}]', None], distinct),
    })  # fmt: skip
    frame = base.iloc[rng.integers(0, distinct, n)].reset_index(drop=True)
    frame.insert(0, "deal_id", [f"D{i}" for i in rng.permutation(n)])
    return frame.set_index(pd.Index(rng.permutation(n) + 100))


@pytest.mark.parametrize("seed", range(40))
def test_grouped_collapse_is_the_row_wise_rule(seed):
    rng = np.random.default_rng(seed)
    frame = random_frame(rng, int(rng.integers(1, 300)))
    expected = reference(frame)
    got = collapse_duplicates(frame)
    pd.testing.assert_frame_equal(got, expected)
    top = int(rng.integers(1, 20))
    pd.testing.assert_frame_equal(collapse_duplicates(frame, top), expected.head(top))


def test_twins_are_looked_for_past_the_top():
    frame = random_frame(np.random.default_rng(1), 10).iloc[:0]
    rows = [{"deal_id": f"T{i}", "owner": "Ann", "product": "GTK 500", "account": "Acme",
             "stage": "Engaging", "value": 26_768.0, "expected_close": "2018-01-15",
             "win_prob": 0.63, "risk": 65.0, "drivers": None} for i in range(500)]  # fmt: skip
    frame = pd.concat([frame, pd.DataFrame(rows)], ignore_index=True)
    (row,) = collapse_duplicates(frame, top=1).itertuples()
    assert row.deal_id == "T0" and len(row.same_as) == 499


def test_deals_alike_but_for_their_reasons_are_not_twins():
    frame = random_frame(np.random.default_rng(2), 50)
    frame["drivers"] = [f"reason {i}" for i in range(50)]
    assert len(set(twin_sets(frame))) == 50
    assert len(set(twin_sets(frame.drop(columns="drivers")))) < 50
    assert collapse_duplicates(frame.iloc[:0]).empty
