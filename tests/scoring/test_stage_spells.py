"""A deal's stays in its stages (what "how long won deals stay in a stage" is learned from), as the
position-based `stage_spells` finds them, equal a plain walk through each deal's open rows, on
random histories: stages missing or revisited, unknown stage-change days, closed and open deals,
rows of a deal that is not open, days in two units."""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring.crm import stage_spells


def _walk(h: pd.DataFrame, deals: pd.DataFrame) -> list[tuple]:
    """Each deal's open rows in day order; a stage's stay starts at its first row (a stage seen
    again later is the same stay) and ends where the next stage's starts (its stage-change day,
    else the day it was first seen), or at the deal's close."""
    closed = dict(zip(deals["deal_no"], deals["closed_on"], strict=True))
    out = []
    for number, rows in h[h["status"] == "open"].groupby("deal_no", sort=True):
        firsts, seen = [], set()
        for _, r in rows.sort_values("as_of").iterrows():
            if pd.isna(r["stage"]) or r["stage"] in seen:
                continue
            seen.add(r["stage"])
            firsts.append(r)
        for i, r in enumerate(firsts):
            if i + 1 < len(firsts):
                nxt = firsts[i + 1]
                end = nxt["stage_since"] if pd.notna(nxt["stage_since"]) else nxt["as_of"]
            else:
                end = closed.get(number, pd.NaT)
            start = r["stage_since"]
            if pd.notna(start) and pd.notna(end) and end >= start:
                out.append((r["deal_id"], r["stage"], pd.Timestamp(start), pd.Timestamp(end)))
    return out


def _history(rng) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    for k in range(int(rng.integers(1, 10))):
        day = pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(rng.integers(0, 50)))
        for _ in range(int(rng.integers(1, 8))):
            day += pd.Timedelta(days=int(rng.integers(1, 10)))
            since = day - pd.Timedelta(days=int(rng.integers(0, 20)))
            rows.append((f"D{k:02d}", day, rng.choice(["Prospecting", "Proposal", "Review", None]),
                         rng.choice(["open", "open", "open", "won", "lost", None]),
                         since if rng.random() < 0.7 else pd.NaT))  # fmt: skip
    h = pd.DataFrame(rows, columns=["deal_id", "as_of", "stage", "status", "stage_since"])
    for c in ("deal_id", "stage", "status"):
        h[c] = h[c].astype("str")
    h["as_of"] = h["as_of"].astype(rng.choice(["datetime64[ns]", "datetime64[us]"]))
    h["stage_since"] = h["stage_since"].astype("datetime64[us]")
    h = h.sort_values(["deal_id", "as_of"]).reset_index(drop=True)
    h["deal_no"] = np.cumsum(~h["deal_id"].eq(h["deal_id"].shift()).to_numpy()) - 1
    ids = h["deal_id"].unique()
    closed = [pd.Timestamp("2024-04-01") + pd.Timedelta(days=int(rng.integers(0, 60)))
              if rng.random() < 0.6 else pd.NaT for _ in ids]  # fmt: skip
    deals = pd.DataFrame({"deal_id": ids, "deal_no": np.arange(len(ids)),
                          "closed_on": pd.Series(closed, dtype="datetime64[ns]")})  # fmt: skip
    return h, deals.sample(frac=1, random_state=int(rng.integers(0, 1000)))


def test_stays_equal_a_plain_walk_through_each_deal():
    rng = np.random.default_rng(5)
    found = 0
    for _ in range(300):
        h, deals = _history(rng)
        spells = stage_spells(h, deals)
        got = [(a, b, pd.Timestamp(c), pd.Timestamp(d)) for a, b, c, d in spells.itertuples(index=False)]  # fmt: skip
        assert got == _walk(h, deals)
        assert not len(got) or spells["end"].dtype == h["stage_since"].dtype
        found += len(got)
    assert found > 500  # the random histories do have stays


def test_no_open_row_no_stays():
    h, deals = _history(np.random.default_rng(1))
    h["status"] = "won"
    assert stage_spells(h, deals).empty
