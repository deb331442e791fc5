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


def movement(before: pd.DataFrame, after: pd.DataFrame, since, until, start, end) -> Movement:
    """`before`/`after`: every deal's state on `since`/`until` (deal_id, status, close_date,
    value; value already filled where the CRM has none); `start`/`end`: the quarter."""
    after = after.set_index("deal_id")
    before = before.set_index("deal_id").reindex(after.index.union(before["deal_id"]))
    after = after.reindex(before.index)
    basis = "open" if pd.to_datetime(after.loc[after["status"] == "open", "close_date"],
                                      errors="coerce").isna().all() else "quarter"  # fmt: skip
    was = _in_quarter(before.fillna({"status": ""}), start, end, basis).astype(bool)
    now = _in_quarter(after.fillna({"status": ""}), start, end, basis).astype(bool)
    v0, v1 = before["value"].fillna(0.0), after["value"].fillna(0.0)
    # each deal's part, decided column-wise (a million deals one by one took 25 s a movement)
    came, went = now & ~was, was & ~now
    pulled = before["status"].eq("open").fillna(False).astype(bool)  # open on `since`
    ending = after["status"].map({"won": "won", "lost": "lost", "open": "pushed out"})
    changed = was & now & (v1 != v0)
    part = pd.Series(None, index=before.index, dtype=object)
    part[came] = pulled[came].map({True: "pulled in", False: "new"})
    part[went] = ending[went].fillna("gone")
    part[changed] = (v1 > v0)[changed].map({True: "amount up", False: "amount down"})
    value = v1.where(came, -v0).where(came | went, v1 - v0)
    moved = (came | went | changed).to_numpy()
    deals = pd.DataFrame({"deal_id": np.asarray(before.index[moved], dtype=object),
                          "part": part[moved].to_numpy(),
                          "value": value[moved].to_numpy()})  # fmt: skip
    parts = (
        deals.groupby("part")["value"].agg(["count", "sum"]).reindex(list(PARTS)).fillna(0.0)
        .reset_index().rename(columns={"count": "deals", "sum": "value"})
    )  # fmt: skip
    parts["deals"] = parts["deals"].astype(int)
    return Movement(pd.Timestamp(since), pd.Timestamp(until), float(v0[was].sum()),
                    float(v1[now].sum()), parts, deals, basis)  # fmt: skip
