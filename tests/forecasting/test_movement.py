"""What moved in a quarter's pipeline (issue 14): each kind of move is named right, and the parts
add up to the change in pipeline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.movement import movement

Q = ("2025-01-01", "2025-03-31")
COLS = ["deal_id", "status", "close_date", "value"]
BEFORE = pd.DataFrame(
    [("keep", "open", "2025-02-01", 100.0), ("raise", "open", "2025-02-01", 100.0),
     ("cut", "open", "2025-03-01", 100.0), ("push", "open", "2025-03-15", 50.0),
     ("win", "open", "2025-01-20", 70.0), ("lose", "open", "2025-02-10", 30.0),
     ("pull", "open", "2025-05-01", 40.0), ("later", "open", "2025-06-01", 10.0)],
    columns=COLS,
)  # fmt: skip
AFTER = pd.DataFrame(
    [("keep", "open", "2025-02-01", 100.0), ("raise", "open", "2025-02-01", 130.0),
     ("cut", "open", "2025-03-01", 80.0), ("push", "open", "2025-04-15", 50.0),
     ("win", "won", "2025-01-20", 70.0), ("lose", "lost", "2025-02-10", 30.0),
     ("pull", "open", "2025-03-01", 40.0), ("later", "open", "2025-06-01", 10.0),
     ("fresh", "open", "2025-03-20", 25.0)],
    columns=COLS,
)  # fmt: skip


def test_each_move_is_named_and_the_parts_add_up():
    m = movement(BEFORE, AFTER, "2025-01-10", "2025-01-17", *Q)
    named = dict(zip(m.deals["deal_id"], m.deals["part"], strict=True))
    assert named == {"raise": "amount up", "cut": "amount down", "push": "pushed out",
                     "win": "won", "lose": "lost", "pull": "pulled in", "fresh": "new"}  # fmt: skip
    assert m.before == 450 and m.after == 375 and m.basis == "quarter"
    assert m.before + m.parts["value"].sum() == pytest.approx(m.after)
    by = m.parts.set_index("part")["value"]
    assert (by["new"], by["pulled in"], by["pushed out"], by["won"]) == (25, 40, -50, -70)


@pytest.mark.parametrize("seed", range(20))
def test_random_pipelines_always_add_up(seed):
    rng = np.random.default_rng(seed)
    n = 60
    days = pd.date_range("2024-11-01", "2025-06-30").strftime("%Y-%m-%d").to_numpy()

    def states(k):
        return pd.DataFrame({
            "deal_id": [f"d{i}" for i in rng.choice(n, k, replace=False)],
            "status": rng.choice(["open", "open", "won", "lost"], k),
            "close_date": rng.choice(np.append(days, None), k),
            "value": np.where(rng.random(k) < 0.1, np.nan, rng.integers(1, 100, k) * 1000.0),
        })  # fmt: skip

    m = movement(states(40), states(50), "2025-01-01", "2025-02-01", *Q)
    assert m.before + m.parts["value"].sum() == pytest.approx(m.after)
    assert m.parts["deals"].sum() == len(m.deals)


def test_no_close_dates_means_every_open_deal():
    before = BEFORE.assign(close_date=None)
    after = AFTER.assign(close_date=None)
    m = movement(before, after, "2025-01-10", "2025-01-17", *Q)
    assert m.basis == "open" and m.after == after.loc[after["status"] == "open", "value"].sum()


def _one_by_one(before, after, start, end):
    """The rule as first written, deal by deal: the reference for the column-wise one."""
    from forecasting.movement import _in_quarter

    after = after.set_index("deal_id")
    before = before.set_index("deal_id").reindex(after.index.union(before["deal_id"]))
    after = after.reindex(before.index)
    basis = "open" if pd.to_datetime(after.loc[after["status"] == "open", "close_date"],
                                      errors="coerce").isna().all() else "quarter"  # fmt: skip
    was = _in_quarter(before.fillna({"status": ""}), start, end, basis)
    now = _in_quarter(after.fillna({"status": ""}), start, end, basis)
    v0, v1 = before["value"].fillna(0.0), after["value"].fillna(0.0)
    existed = before["status"].notna()
    rows = []
    for deal in before.index[was | now]:
        w, n = bool(was[deal]), bool(now[deal])
        if n and not w:
            part = "pulled in" if existed[deal] and before.at[deal, "status"] == "open" else "new"
            rows.append((deal, part, v1[deal]))
        elif w and not n:
            status = after.at[deal, "status"]
            part = {"won": "won", "lost": "lost", "open": "pushed out"}.get(status, "gone")
            rows.append((deal, part, -v0[deal]))
        elif v1[deal] != v0[deal]:
            part = "amount up" if v1[deal] > v0[deal] else "amount down"
            rows.append((deal, part, v1[deal] - v0[deal]))
    return pd.DataFrame(rows, columns=["deal_id", "part", "value"]), basis


@pytest.mark.parametrize("seed", range(30))
def test_column_wise_parts_are_the_deal_by_deal_ones(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    ids = [f"D{i}" for i in rng.permutation(n)]

    def states(share: float) -> pd.DataFrame:
        keep = rng.random(n) < share  # deals new since, or gone (deleted) since
        frame = pd.DataFrame({
            "deal_id": ids,
            "status": rng.choice(["open", "open", "won", "lost", "merged"], n),
            "close_date": rng.choice(["2025-02-01", "2025-05-01", "2024-12-01", None], n),
            "value": rng.choice([100.0, 40.0, 25.5, np.nan], n),
        })  # fmt: skip
        return frame[keep].sample(frac=1, random_state=seed)

    before, after = states(0.8), states(0.85)
    if rng.random() < 0.2:
        before["close_date"], after["close_date"] = None, None  # no close dates: every open deal
    m = movement(before, after, "2025-01-10", "2025-01-17", *Q)
    expected, basis = _one_by_one(before, after, *Q)
    pd.testing.assert_frame_equal(m.deals, expected)
    assert m.basis == basis
    assert m.before + m.parts["value"].sum() == pytest.approx(m.after)


def test_a_deal_listed_twice_on_a_day_is_refused():
    twice = pd.concat([AFTER, AFTER.iloc[[0]]], ignore_index=True)
    with pytest.raises(ValueError, match="listed twice"):
        movement(BEFORE, twice, "2025-01-10", "2025-01-17", *Q)
    with pytest.raises(ValueError, match="listed twice"):
        movement(twice, AFTER, "2025-01-10", "2025-01-17", *Q)


def test_a_nullable_status_with_a_missing_value_is_read_as_not_open():
    before = BEFORE.astype({"status": "string"})
    after = AFTER.astype({"status": "string"})
    before.loc[0, "status"] = pd.NA  # "keep": unknown on `since`, open after: new
    m = movement(before, after, "2025-01-10", "2025-01-17", *Q)
    assert dict(zip(m.deals["deal_id"], m.deals["part"], strict=True))["keep"] == "new"
