"""`crm.sorted_rows` and `crm.positions` (Arrow's sort and lookup, used by `prepare` because
pandas took seconds on a million id strings) give what pandas' own sort_values and get_indexer
give, on random ids with non-ASCII text, missing values and columns pandas keeps as objects; and
`prepare` gives the same CRM whatever order its rows come in. `crm.among` is pandas' isin, on
id strings by Arrow and on anything else by pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from dataset import deal_history
from scoring.crm import _in_order, among, positions, prepare, sorted_rows


def _ids(rng: np.random.Generator, n: int) -> list[str]:
    letters = list("abcXYZ09éü中-_ ")
    return ["".join(rng.choice(letters, size=rng.integers(1, 6))) for _ in range(n)]


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("dtype", ["str", object])
def test_sorted_rows_is_sort_values_on_unique_keys(seed, dtype):
    rng = np.random.default_rng(seed)
    ids = pd.Series(_ids(rng, 300), dtype=dtype)
    days = pd.Series(pd.to_datetime("2024-01-01") + pd.to_timedelta(rng.integers(0, 40, 300), "D"))
    frame = pd.DataFrame({"deal_id": ids, "as_of": days, "v": rng.normal(size=300)})
    frame = frame.drop_duplicates(["deal_id", "as_of"])
    want = frame.sort_values(["deal_id", "as_of"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(sorted_rows(frame, ["deal_id", "as_of"]), want)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("dtype", ["str", object])
def test_positions_is_get_indexer(seed, dtype):
    rng = np.random.default_rng(seed)
    index = pd.Index(list(dict.fromkeys(_ids(rng, 200))), dtype=dtype)
    values = pd.Series(_ids(rng, 500) + [None], dtype=dtype)  # some absent, one missing
    got = positions(values, index)
    assert got.dtype == np.intp
    np.testing.assert_array_equal(got, index.get_indexer(values))
    empty = pd.Series([None, None], dtype=object)  # a column with no value at all
    np.testing.assert_array_equal(positions(empty, index), [-1, -1])


def test_prepare_is_the_same_whatever_order_its_rows_come_in(generated):
    tables = deal_history.load_crm(generated["db"])
    mixed = {k: v.sample(frac=1, random_state=3) if k in ("history", "activity") else v
             for k, v in tables.items()}  # fmt: skip
    a, b = prepare(tables), prepare(mixed)
    for name in ("deals", "history", "activity", "spells"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
        pd.testing.assert_frame_equal(getattr(a, name), getattr(generated["crm"], name))


@pytest.mark.parametrize("seed", range(6))
def test_active_weeks_counts_each_deal_s_distinct_weeks(seed):
    """`features._active_weeks` (deduplicated by a sort, not np.unique's hashing) against a
    plain count of distinct weeks per deal; no activity at all included."""
    from scoring.features import ACTIVE_WEEKS, _active_weeks

    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 400)) if seed else 0
    t = pd.Timestamp("2024-06-30")
    deal_no = np.sort(rng.integers(0, 50, n))
    day = (np.datetime64(t) - rng.integers(0, 200, n).astype("timedelta64[D]")).astype(
        "datetime64[us]"
    )
    recent, ever = _active_weeks(deal_no, day, t, 60)
    weeks = pd.DataFrame({"no": deal_no, "w": (np.datetime64(t) - day).astype("timedelta64[D]")
                          .astype(np.int64) // 7})  # fmt: skip
    want_ever = weeks.groupby("no")["w"].nunique().reindex(range(60)).to_numpy(float)
    want_recent = (weeks[weeks["w"] < ACTIVE_WEEKS].groupby("no")["w"].nunique()
                   .reindex(range(60)).to_numpy(float))  # fmt: skip
    np.testing.assert_array_equal(ever, want_ever)
    np.testing.assert_array_equal(recent, want_recent)


def test_rows_already_in_order_are_not_copied():
    frame = pd.DataFrame({"deal_id": ["a", "a", "b", "é"], "as_of": pd.to_datetime(
        ["2024-01-01", "2024-01-02", "2024-01-01", "2024-01-01"]), "v": [1.0, 2.0, 3.0, 4.0]})  # fmt: skip
    same = sorted_rows(frame, ["deal_id", "as_of"])
    assert np.shares_memory(same["v"].to_numpy(), frame["v"].to_numpy())
    swapped = frame.iloc[[1, 0, 2, 3]]  # one pair out of order: sorted, a copy
    pd.testing.assert_frame_equal(sorted_rows(swapped, ["deal_id", "as_of"]), frame)
    tie = frame.assign(as_of=frame["as_of"].iloc[0])  # a row not strictly after the one before

    def in_order(f):
        return _in_order(pa.table({k: pa.array(f[k].array) for k in ("deal_id", "as_of")}))

    assert in_order(frame) and not in_order(swapped) and not in_order(tie)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("dtype", ["str", object, "category"])
def test_among_is_isin(seed, dtype):
    rng = np.random.default_rng(seed)
    ids = _ids(rng, 200)
    values = pd.Series(ids, dtype=dtype)
    members = pd.Series(list(rng.choice(ids, 50)) + _ids(rng, 20), dtype=dtype)
    assert (among(values, members) == values.isin(members).to_numpy()).all()
    assert among(values, members).any() and not among(values, members).all()


@pytest.mark.parametrize(
    ("values", "members"),
    [
        (["a", None, "b"], ["a", np.nan]),  # missing values: pandas' rules, not Arrow's
        ([None, None], ["a", None]),
        (["1", "2"], [1, 3]),  # text ids and numbers do not match
        (["a", 1, "b"], ["b", 1]),  # mixed types
    ],
)
def test_among_leaves_missing_and_mixed_values_to_pandas(values, members):
    v = pd.Series(values, dtype=object)
    assert among(v, pd.Series(members, dtype=object)).tolist() == v.isin(members).tolist()
