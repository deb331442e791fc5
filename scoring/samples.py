"""Training samples: the deals open on past days, as they looked then, and what became of them.

Pure. A sample is (deal, snapshot day) with the features of `features_at` on that day. Its label
is the deal's outcome as known on the day the model is trained (`known_by`): 1 won, 0 lost. A deal
still open then is *censored*: its outcome is not known yet, and leaving it out would keep only
the deals that closed fast, which are not like the rest (the quick wins close first). Its label
is instead the model's own estimate for the deal's latest state (`train.fit_at` does this in two
passes), so the most recent snapshots count too, and the model learns this quarter's behaviour,
not last year's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring.crm import Crm
from scoring.features import features_at

WARMUP_DAYS = 28  # snapshots start this long after the first close


def first_snapshot(crm: Crm) -> pd.Timestamp:
    """The first day worth a snapshot: some deals have closed, so rates mean something."""
    closed = crm.deals["closed_on"].dropna()
    start = closed.min() if closed.notna().any() else crm.history["as_of"].min()
    return pd.Timestamp(start) + pd.Timedelta(days=WARMUP_DAYS)


def export_days(crm: Crm) -> np.ndarray:
    """The days of the exports imported over time, sorted: on those days what the CRM showed is
    known exactly, activity included (between them activity would look days older). Empty for a
    single export (MavenTech), whose history is rebuilt from its dates and exact on any day."""
    days = np.sort(crm.history["as_of"].unique())
    return days if len(days) >= 2 else days[:0]


def snapshot_dates(crm: Crm, start: pd.Timestamp, end: pd.Timestamp) -> list[pd.Timestamp]:
    """About weekly snapshot days in [start, end]: the export days (`export_days`); for a
    single export (MavenTech), Mondays."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    exports = export_days(crm)
    if not len(exports):
        return list(pd.date_range(start, end, freq="W-MON"))
    days: list[pd.Timestamp] = []
    for day in map(pd.Timestamp, exports):
        if start <= day <= end and (not days or (day - days[-1]).days >= 7):
            days.append(day)
    return days


def _durations(crm: Crm, day: pd.Timestamp) -> tuple[np.ndarray, ...]:
    """Engage-to-close days known on `day` (deals still open censored at their age), which ended
    won or lost by then, and the days engaged before each came under watch (`entry_days`)."""
    d = crm.deals
    engaged = (d["engage_date"].notna() & (d["engage_date"] <= day)).to_numpy()
    closed = d["closed_on"] <= day
    end = d["closed_on"].where(closed, day)
    days = (end - d["engage_date"]).dt.days.to_numpy()[engaged]
    won = (closed & d["status"].eq("won")).to_numpy()[engaged]
    lost = (closed & d["status"].eq("lost")).to_numpy()[engaged]
    entry = entry_days(crm, day).to_numpy()[engaged]
    return np.clip(np.nan_to_num(days), 0, None).astype(int), won, lost, entry


def entry_days(crm: Crm, day: pd.Timestamp) -> pd.Series:
    """Days engaged before each deal came under watch (0 for most). Closes are recorded from the
    first one known on `day` on, so a deal engaged earlier is in the data only because it had not
    closed by then (left truncation): counted from its engagement, the days it could not have
    closed in would make every deal look slower (MavenTech records no close before 2017-03-01:
    its Q4-2016 engagements all "closed" 4-5 months on, and the chance that a new deal is won
    within 13 weeks came out 0.34-0.40 instead of 0.41-0.45 at the 2017 cutoffs)."""
    d = crm.deals
    first = d["closed_on"].where(d["closed_on"] <= pd.Timestamp(day)).min()
    return (first - d["engage_date"]).dt.days.clip(lower=0).fillna(0).astype(int)


def at_risk_by_day(durations: np.ndarray, n: int, entry: np.ndarray | None = None) -> np.ndarray:
    """Deals under watch at the start of each day of age d = 0..n-1: still open (duration >= d)
    and already entered (entry <= d, `entry_days`). `durations`: whole days below n."""
    at_risk = np.bincount(durations, minlength=n).astype(float)[::-1].cumsum()[::-1]
    if entry is None:
        return at_risk
    e = np.minimum(np.clip(np.asarray(entry, float), 0, n - 1).astype(int), durations)
    return at_risk - (len(e) - np.bincount(e, minlength=n).cumsum())


def _hazards(crm: Crm, day: pd.Timestamp):
    """Daily win and loss hazards by age (days engaged) and the survival before each age."""
    days, won, lost, entry = _durations(crm, day)
    if len(days) == 0:
        return np.zeros(1), np.zeros(1), np.ones(1)
    n = int(days.max()) + 1
    at_risk = at_risk_by_day(days, n, entry)
    hw = np.bincount(days[won], minlength=n) / np.maximum(at_risk, 1)
    hl = np.bincount(days[lost], minlength=n) / np.maximum(at_risk, 1)
    before = np.r_[1.0, np.cumprod(1 - hw - hl)[:-1]]
    return hw, hl, before


STALE_AFTER = 1.5  # deals open this many times the longest time to close are stale, not slow


MIN_RESOLVED = 0.05  # a row's chance of having closed by the day is counted as at least this


def resolution_weights(crm: Crm, day: pd.Timestamp, rows: pd.DataFrame) -> np.ndarray:
    """For rows whose outcome is known on `day`: 1 / P(a deal of that age on that snapshot had
    closed by `day`), from the Kaplan-Meier curve of the days to close (deals still open
    censored). Known outcomes of recent snapshots are the quick closers; weighting each by how
    unlikely it was to be known stands it in for its still-open peers (inverse probability of
    censoring weights)."""
    hw, hl, alive = _hazards(crm, day)
    survival = alive * (1 - hw - hl)
    n = len(survival)

    def s(age):
        return survival[np.clip(np.nan_to_num(np.asarray(age, float)), 0, n - 1).astype(int)]

    age = rows["age_days"].fillna(0.0).to_numpy()
    waited = (pd.Timestamp(day) - rows["snapshot"]).dt.days.to_numpy()
    resolved = 1 - s(age + waited) / np.maximum(s(age), 1e-12)
    return 1 / np.clip(resolved, MIN_RESOLVED, 1)


def has_stale_deals(crm: Crm, day: pd.Timestamp) -> bool:
    """Were deals seen open STALE_AFTER times longer than any deal took to close?"""
    return stale_after(crm, day) is not None


def stale_after(crm: Crm, day: pd.Timestamp) -> int | None:
    """Days engaged after which a deal open on `day` is stale, never to close: STALE_AFTER
    times the longest time any deal took to close by then; None where no deal was seen open
    that long (then nothing is called stale). Kept with the Crm by day: a training labels the
    same days' rows pass after pass."""
    key = ("stale after", pd.Timestamp(day))
    if key not in crm.memo:
        hw, hl, _ = _hazards(crm, day)
        closes = np.flatnonzero(hw + hl > 0)
        limit = int(np.ceil(STALE_AFTER * (closes[-1] + 1))) if len(closes) else None
        # hw has a day for each age up to the oldest seen: len(hw) - 1 is that oldest age
        crm.memo[key] = limit if limit is not None and len(hw) - 1 >= limit else None
    return crm.memo[key]


def _ends(crm: Crm, day: pd.Timestamp) -> tuple[pd.Series, pd.Series]:
    """(the day each deal's outcome became known, by deal id: its close, or for a deal stale on
    `day` the day it became stale; won). A stale deal counts as not won: MavenTech's stale
    deals, left unlabelled, were scored at the pipeline's mean chance (0.67) whatever their
    age, and so were the young deals that would go stale: the forecast's open pipeline came out
    30-50% above what it won at 13 weeks (deals 30-120 days old won 0.51-0.70 of it)."""
    d = crm.deals.set_index("deal_id")
    day = pd.Timestamp(day)
    end = d["closed_on"].where(d["closed_on"] <= day)
    won = d["status"].eq("won") & end.notna()  # closed by `day` (a stale deal won later: not)
    limit = stale_after(crm, day)
    if limit is not None:
        since = d["engage_date"] + pd.Timedelta(days=limit)
        stale = end.isna() & (since <= day)
        end = end.where(~stale, since)
    return end, won


def maturity_days(crm: Crm, before: pd.Timestamp | None = None) -> int:
    """Days after which almost every deal has closed: the age at which 95% of the deals engaged
    have closed, by Kaplan-Meier with the deals still open on `before` censored (not the 95th
    percentile of the deals closed so far, which early on are only the quick ones), within
    [28, 182]; 182 where the curve never gets there. Where deals were seen open STALE_AFTER
    times longer than any deal took to close, the share the curve keeps is left out."""
    day = pd.Timestamp(before) if before is not None else crm.data_end
    hw, hl, alive = _hazards(crm, day)
    survival = alive * (1 - hw - hl)
    # deals seen open far longer than any took to close never will (MavenTech's stale ones):
    # what the curve keeps then is not waiting for an outcome
    floor = survival[-1] if has_stale_deals(crm, day) else 0.0
    below = np.flatnonzero(survival - floor <= 0.05 * (1 - floor))
    return int(np.clip(below[0] if len(below) else 182, 28, 182))


def open_win_chance(crm: Crm, day: pd.Timestamp, ages) -> np.ndarray:
    """P(won some day | open at each age on `day`), from age alone, by Aalen-Johansen (won and
    lost as competing ends, deals still open censored); the share of deals still open past the
    oldest age seen is split as the closes of the oldest third of ages were. A level to check a
    model against when history is too short for matured labels."""
    hw, hl, alive = _hazards(crm, day)
    won_by = np.r_[0.0, np.cumsum(alive * hw)]  # won before each age, and after the last
    tail = slice(2 * len(hw) // 3, None)
    shares = (alive * hw)[tail].sum() / max((alive * (hw + hl))[tail].sum(), 1e-12)
    unresolved = alive[-1] * (1 - hw[-1] - hl[-1])
    total = won_by[-1] + unresolved * shares
    a = np.clip(np.nan_to_num(np.asarray(ages, float)), 0, len(hw) - 1).astype(int)
    return np.clip((total - won_by[a]) / np.maximum(alive[a], 1e-12), 0, 1)


def snapshot_rows(crm: Crm, dates) -> pd.DataFrame:
    """Features of the deals open on each date (index deal_id), with a `snapshot` column."""
    frames = []
    for t in dates:
        f = features_at(crm, pd.Timestamp(t))
        f["snapshot"] = pd.Timestamp(t)
        frames.append(f)
    if not frames:
        return features_at(crm, crm.data_end).iloc[:0].assign(snapshot=pd.NaT)
    return pd.concat(frames)


def outcomes(crm: Crm, known_by: pd.Timestamp) -> pd.Series:
    """1.0 won / 0.0 lost for the deals closed by `known_by`, or stale by then (`stale_after`:
    not won), by deal id."""
    end, won = _ends(crm, known_by)
    return won[end.notna()].astype(float)


def step_labels(rows: pd.DataFrame, crm: Crm, day: pd.Timestamp, steps: int,
                value_rows: np.ndarray, value_latest: pd.Series) -> pd.DataFrame:  # fmt: skip
    """Rows before `day` labelled one horizon ahead: the outcome where the deal closed by the
    snapshot `steps` snapshots later (or by `day`), else the model's estimate (`value_rows`,
    aligned with `rows`) for the deal's state on that later snapshot, or for its latest state
    (`value_latest`, by deal) where the horizon reaches past the last snapshot. Every deal's
    next weeks are seen, whatever became of it, so no outcome-dependent selection enters; a deal
    with neither (it left the exports without closing) is left out. `known`: a real outcome."""
    rows = rows[rows["snapshot"] < pd.Timestamp(day)]
    snaps = np.sort(rows["snapshot"].unique())
    i = np.searchsorted(snaps, rows["snapshot"].to_numpy())
    j = i + steps
    later = np.where(j < len(snaps), snaps[np.minimum(j, len(snaps) - 1)], np.datetime64(day))
    end, won = _ends(crm, day)
    close = end.reindex(rows.index).to_numpy()
    won = won.astype(float).reindex(rows.index).to_numpy()
    resolved = ~np.isnat(close) & (close <= later)
    target = np.where(resolved, won, np.nan)
    position = pd.Series(np.arange(len(rows)), index=pd.MultiIndex.from_arrays([rows.index, i]))
    nxt = position.reindex(pd.MultiIndex.from_arrays([rows.index, j])).to_numpy()
    from_next = ~resolved & ~np.isnan(nxt)
    target[from_next] = np.asarray(value_rows)[nxt[from_next].astype(int)]
    rest = ~resolved & np.isnan(nxt)
    target[rest] = value_latest.reindex(rows.index[rest]).to_numpy()
    keep = ~np.isnan(target)
    out = rows[keep].copy()
    out["label"], out["known"], out["weight"] = target[keep], resolved[keep], 1.0
    return out


def label(rows: pd.DataFrame, crm: Crm, known_by: pd.Timestamp,
          estimate: pd.Series | None = None) -> pd.DataFrame:  # fmt: skip
    """Rows before `known_by` with `label` (outcome, or `estimate` of the deal's latest state for
    a deal still open; rows with neither are left out), `known` (a real outcome) and `weight`.
    Without `estimate`, only rows with a known outcome are kept."""
    known_by = pd.Timestamp(known_by)
    rows = rows[rows["snapshot"] < known_by]
    y = outcomes(crm, known_by).reindex(rows.index)
    known = y.notna().to_numpy()
    if estimate is not None:
        y = y.fillna(estimate.reindex(rows.index))
    keep = y.notna().to_numpy()
    out = rows[keep].copy()
    out["label"] = y.to_numpy()[keep]
    out["known"] = known[keep]
    out["weight"] = 1.0
    return out
