"""What moved in a quarter's pipeline between two days (issue 14): new deals, deals pulled into
the quarter or pushed out of it, won, lost, amounts raised and cut. The parts add up to the
change: pipeline then + each part = pipeline now. Pure.

A deal is in the quarter's pipeline on a day when it is open then with its close date inside
the quarter; where the CRM gives open deals no close date (MavenTech), every open deal is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

PARTS = ("new", "pulled in", "amount up", "amount down", "pushed out", "won", "lost", "gone")


@dataclass(frozen=True)
class Movement:
    since: pd.Timestamp
    until: pd.Timestamp
    before: float  # the quarter's open pipeline on `since`
    after: float  # and on `until`
    parts: pd.DataFrame  # part, deals, value (signed: what it adds to the pipeline)
    deals: pd.DataFrame  # deal_id, part, value: every deal that moved
    basis: str  # "quarter" (close date in the quarter) or "open" (no close dates: every open deal)

    @property
    def change(self) -> float:
        return self.after - self.before


def _in_quarter(states: pd.DataFrame, start, end, basis: str) -> pd.Series:
    open_ = states["status"] == "open"
    if basis == "open":
        return open_
    close = pd.to_datetime(states["close_date"], errors="coerce")
    return open_ & close.between(pd.Timestamp(start), pd.Timestamp(end))


def _aligned(frame: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """`frame`'s rows at `rows` (-1: a deal it does not have, all missing), index 0..n-1."""
    out = frame.reset_index(drop=True).reindex(rows)
    return out.reset_index(drop=True)


def movement(before: pd.DataFrame, after: pd.DataFrame, since, until, start, end) -> Movement:
    """`before`/`after`: every deal's state on `since`/`until` (deal_id, status, close_date,
    value; value already filled where the CRM has none); `start`/`end`: the quarter."""
    # every deal of either day once, each day's row of it (a million deals: the ids are hashed
    # once, and the rest is done on plain arrays, not on indexes aligned at every step)
    ids = np.concatenate([before["deal_id"].to_numpy(dtype=object),
                          after["deal_id"].to_numpy(dtype=object)])  # fmt: skip
    codes, deal_ids = pd.factorize(ids, use_na_sentinel=False)
    for day in (codes[: len(before)], codes[len(before) :]):
        if len(day) and np.bincount(day).max() > 1:
            raise ValueError("a deal is listed twice on the same day")
    rows = np.full((2, len(deal_ids)), -1)
    rows[0, codes[: len(before)]] = np.arange(len(before))
    rows[1, codes[len(before) :]] = np.arange(len(after))
    then, now_ = _aligned(before, rows[0]), _aligned(after, rows[1])
    open_after = after["status"].eq("open").fillna(False).to_numpy(bool)
    basis = "open" if pd.to_datetime(after.loc[open_after, "close_date"],
                                      errors="coerce").isna().all() else "quarter"  # fmt: skip
    was = _in_quarter(then.fillna({"status": ""}), start, end, basis).to_numpy(bool)
    now = _in_quarter(now_.fillna({"status": ""}), start, end, basis).to_numpy(bool)
    v0 = then["value"].astype(float).fillna(0.0).to_numpy()
    v1 = now_["value"].astype(float).fillna(0.0).to_numpy()
    # each deal's part, decided column-wise (a million deals one by one took 25 s a movement)
    came, went = now & ~was, was & ~now
    changed = was & now & (v1 != v0)
    pulled = then["status"].eq("open").fillna(False).to_numpy(bool)  # open on `since`
    ending = now_["status"].map({"won": "won", "lost": "lost", "open": "pushed out"})
    ending = ending.astype(object).where(ending.notna(), "gone").to_numpy(dtype=object)
    part = np.full(len(deal_ids), None, dtype=object)
    part[came] = np.where(pulled[came], "pulled in", "new")
    part[went] = ending[went]
    part[changed] = np.where((v1 > v0)[changed], "amount up", "amount down")
    value = np.where(came, v1, np.where(went, -v0, v1 - v0))
    moved = np.flatnonzero(came | went | changed)
    order = moved[_in_id_order(np.asarray(deal_ids, dtype=object)[moved])]
    deals = pd.DataFrame({"deal_id": np.asarray(deal_ids, dtype=object)[order],
                          "part": part[order], "value": value[order]})  # fmt: skip
    parts = (
        deals.groupby("part")["value"].agg(["count", "sum"]).reindex(list(PARTS)).fillna(0.0)
        .reset_index().rename(columns={"count": "deals", "sum": "value"})
    )  # fmt: skip
    parts["deals"] = parts["deals"].astype(int)
    return Movement(pd.Timestamp(since), pd.Timestamp(until), float(v0[was].sum()),
                    float(v1[now].sum()), parts, deals, basis)  # fmt: skip


def _in_id_order(ids: np.ndarray) -> np.ndarray:
    """The positions that sort `ids` (as they come where they cannot be compared)."""
    try:
        return np.argsort(ids, kind="stable")
    except TypeError:
        return np.arange(len(ids))
