"""Point-in-time features: what was known about each open deal on day t, and nothing later.

Pure. The rules that keep the future out (the leakage traps of CRM data, see modeling-notes):
- A deal's state on day t is its latest *history row dated <= t*. Where no export that old exists
  (MavenTech ships one final snapshot), only facts dated <= t are used: the engage date, the
  activity dates, and owner and product (taken as fixed); account and amount are unknown then,
  because CRMs fill them in at close (MavenTech: account missing on 68% of open deals, none of the
  closed ones; the close value of a lost deal is 0).
- A deal is open on t if it had engaged (or been seen) by t and had not closed by t.
- Win rates of rep, product and account, and the typical cycle of won deals, come only from deals
  that closed before t, smoothed towards the overall rate of that time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

NUMERIC = (
    "age_days",
    "days_in_stage",
    "days_since_activity",
    "close_pushes",
    "days_to_expected_close",
    "log_value",
    "cycle_ratio",
    "rep_win_rate",
    "product_win_rate",
    "account_win_rate",
    "rep_open_deals",
    "log_account_revenue",
    "days_to_quarter_end",
)
CATEGORICAL = ("product", "region", "sector")
FEATURES = NUMERIC + CATEGORICAL
FEATURE_VERSION = 1
SMOOTHING = 20.0  # prior weight (in deals) of the overall win rate in smoothed rates


@dataclass
class Crm:
    """The CRM tables, prepared once for many days' features."""

    deals: pd.DataFrame  # latest state per deal (deals table)
    history: pd.DataFrame  # change rows, sorted, with cum_pushes and stage_since
    activity: pd.DataFrame  # deal_id, activity_date (sorted by date)
    products: pd.DataFrame
    teams: pd.DataFrame
    accounts: pd.DataFrame
    data_end: pd.Timestamp  # the latest as-of date: "today" by default


def prepare(tables: dict[str, pd.DataFrame]) -> Crm:
    """Derive per-history-row running facts: close-date pushes so far, and since when the deal
    has been in its stage."""
    h = tables["history"].sort_values(["deal_id", "as_of"]).reset_index(drop=True)
    same_deal = h["deal_id"].eq(h["deal_id"].shift())
    prev_close = h["close_date"].shift()
    push = (
        same_deal
        & h["status"].eq("open")
        & h["status"].shift().eq("open")
        & (h["close_date"] > prev_close)
    )
    h["cum_pushes"] = push.astype(int).groupby(h["deal_id"]).cumsum()
    # a stage change seen between two exports happened by the later one; a deal's first row
    # says nothing about when it entered its stage (NaT: fall back on the engage date)
    changed = same_deal & h["stage"].ne(h["stage"].shift())
    first_row = ~same_deal
    since = h["as_of"].where(changed)
    since = since.where(~first_row, pd.Timestamp.min)
    h["stage_since"] = since.groupby(h["deal_id"]).ffill().replace(pd.Timestamp.min, pd.NaT)
    deals = tables["deals"].copy()
    data_end = h["as_of"].max() if len(h) else deals["last_seen"].max()
    return Crm(
        deals=deals,
        history=h,
        activity=tables["activity"].sort_values("activity_date").reset_index(drop=True),
        products=tables["products"],
        teams=tables["teams"],
        accounts=tables["accounts"],
        data_end=pd.Timestamp(data_end),
    )


def _smoothed(wins: pd.Series, counts: pd.Series, prior: float) -> pd.Series:
    return (wins + SMOOTHING * prior) / (counts + SMOOTHING)


@dataclass(frozen=True)
class Rates:
    """Outcome statistics of the deals closed before a day."""

    base: float
    rep: pd.Series
    product: pd.Series
    account: pd.Series
    cycle: pd.Series  # median engage-to-close days of won deals, by product
    cycle_all: float


def rates_before(crm: Crm, t: pd.Timestamp) -> Rates:
    d = crm.deals
    closed = d[d["status"].isin(["won", "lost"]) & (d["close_date"] < t)]
    won = closed["status"].eq("won").astype(float)
    base = float(won.mean()) if len(closed) else 0.5

    def rate(key: str) -> pd.Series:
        g = won.groupby(closed[key])
        return _smoothed(g.sum(), g.count(), base)

    wins = closed[closed["status"] == "won"]
    days = (wins["close_date"] - wins["engage_date"]).dt.days
    return Rates(
        base=base,
        rep=rate("owner"),
        product=rate("product"),
        account=rate("account"),
        cycle=days.groupby(wins["product"]).median(),
        cycle_all=float(days.median()) if len(days) else np.nan,
    )


def open_deals_at(crm: Crm, t: pd.Timestamp) -> pd.DataFrame:
    """The deals open on day t with their state as known then (one row per deal)."""
    d = crm.deals
    seen = crm.history.loc[crm.history["as_of"] <= t]
    state = seen.groupby("deal_id", sort=False).tail(1).set_index("deal_id")
    first = crm.history.groupby("deal_id", sort=False).head(1).set_index("deal_id")
    engaged = d["engage_date"].notna() & (d["engage_date"] <= t)
    closed_by_t = d["status"].isin(["won", "lost"]) & (d["close_date"] <= t)
    in_state = d["deal_id"].isin(state.index)
    is_open = (engaged | in_state) & ~closed_by_t
    base = d.loc[is_open, ["deal_id", "engage_date"]].set_index("deal_id")
    known = state.reindex(base.index)
    has_row = known["as_of"].notna()
    if has_row.any():
        still_open = known["status"].eq("open") | ~has_row
        base, known, has_row = base[still_open], known[still_open], has_row[still_open]
    fallback = first.reindex(base.index)
    out = pd.DataFrame(index=base.index)
    out["owner"] = known["owner"].where(has_row, fallback["owner"])
    out["product"] = known["product"].where(has_row, fallback["product"])
    out["account"] = known["account"].where(has_row)
    out["value"] = known["value"].where(has_row)
    out["stage"] = known["stage"].where(has_row)
    engage = base["engage_date"].where(base["engage_date"] <= t)
    out["engage_date"] = engage
    out["expected_close"] = known["close_date"].where(has_row)
    out["close_pushes"] = known["cum_pushes"].where(has_row, 0).astype(float)
    stage_since = known["stage_since"].where(has_row)
    out["stage_since"] = pd.concat([stage_since, engage], axis=1).max(axis=1)
    act = crm.activity.loc[crm.activity["activity_date"] <= t]
    out["last_activity"] = act.groupby("deal_id")["activity_date"].max().reindex(out.index)
    return out


def _quarter_end(t: pd.Timestamp) -> pd.Timestamp:
    return (t + pd.offsets.QuarterEnd(0)).normalize()


def features_at(crm: Crm, t: pd.Timestamp, rates: Rates | None = None) -> pd.DataFrame:
    """Feature rows (index deal_id) for the deals open on t, plus context columns that the
    explanations quote (owner, typical_cycle, list_price, value_used...)."""
    t = pd.Timestamp(t)
    rates = rates or rates_before(crm, t)
    s = open_deals_at(crm, t)
    price = crm.products.set_index("product")["sales_price"]
    team = crm.teams.set_index("sales_agent")
    acct = crm.accounts.set_index("account")
    f = pd.DataFrame(index=s.index)
    f["age_days"] = (t - s["engage_date"]).dt.days.astype(float)
    f["days_in_stage"] = (t - s["stage_since"]).dt.days.astype(float)
    f["days_since_activity"] = (t - s["last_activity"]).dt.days.astype(float)
    f["close_pushes"] = s["close_pushes"]
    f["days_to_expected_close"] = (s["expected_close"] - t).dt.days.astype(float)
    list_price = s["product"].map(price).astype(float)
    value_used = s["value"].astype(float).fillna(list_price)
    f["log_value"] = np.log1p(value_used.clip(lower=0))
    typical = s["product"].map(rates.cycle).astype(float).fillna(rates.cycle_all)
    f["cycle_ratio"] = f["age_days"] / typical.clip(lower=1)
    f["rep_win_rate"] = s["owner"].map(rates.rep).astype(float).fillna(rates.base)
    f["product_win_rate"] = s["product"].map(rates.product).astype(float).fillna(rates.base)
    f["account_win_rate"] = s["account"].map(rates.account).astype(float)
    f["rep_open_deals"] = s.groupby("owner")["owner"].transform("size").astype(float)
    f["log_account_revenue"] = np.log1p(s["account"].map(acct["revenue"]).astype(float))
    f["days_to_quarter_end"] = float((_quarter_end(t) - t).days)
    f["product"] = s["product"]
    f["region"] = s["owner"].map(team["regional_office"])
    f["sector"] = s["account"].map(acct["sector"])
    # context for explanations and risk (not model inputs)
    f["owner"] = s["owner"]
    f["manager"] = s["owner"].map(team["manager"])
    f["account"] = s["account"]
    f["stage"] = s["stage"]
    f["typical_cycle"] = typical
    f["list_price"] = list_price
    f["value_used"] = value_used
    f["value_known"] = s["value"].notna()
    f["expected_close"] = s["expected_close"]
    f["base_rate"] = rates.base
    return f


def snapshot_dates(crm: Crm, start: pd.Timestamp, end: pd.Timestamp) -> list[pd.Timestamp]:
    """About weekly snapshot days in [start, end]. Where exports were imported over time, the
    days of those exports (what the CRM showed then is known exactly, activity included); for a
    single export (MavenTech), Mondays."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    exports = np.sort(crm.history["as_of"].unique())
    if len(exports) < 2:
        return list(pd.date_range(start, end, freq="W-MON"))
    days: list[pd.Timestamp] = []
    for day in map(pd.Timestamp, exports):
        if start <= day <= end and (not days or (day - days[-1]).days >= 7):
            days.append(day)
    return days


def maturity_days(crm: Crm, before: pd.Timestamp | None = None) -> int:
    """Days after which almost every deal open on a day has closed: the 95th percentile of
    engage-to-close days of the deals closed before `before`, within [28, 182]."""
    d = crm.deals
    closed = d["status"].isin(["won", "lost"])
    if before is not None:
        closed &= d["close_date"] < before
    days = (d.loc[closed, "close_date"] - d.loc[closed, "engage_date"]).dt.days.dropna()
    if days.empty:
        return 91
    return int(np.clip(np.ceil(days.quantile(0.95)), 28, 182))


def training_rows(crm: Crm, dates, known_by: pd.Timestamp | None = None) -> pd.DataFrame:
    """Features of the deals open on each date, labelled with their eventual outcome as known on
    `known_by` (default: the data's end); rows of deals still open then are dropped.
    `weight` = 1 / (rows of that deal), so a deal that stays open long does not count more."""
    known_by = pd.Timestamp(known_by) if known_by is not None else crm.data_end
    d = crm.deals.set_index("deal_id")
    done = d["status"].isin(["won", "lost"]) & (d["close_date"] <= known_by)
    label = d["status"].eq("won").astype(float).where(done)
    frames = []
    for t in dates:
        f = features_at(crm, pd.Timestamp(t))
        f["label"] = label.reindex(f.index)
        f = f[f["label"].notna()]
        f["snapshot"] = pd.Timestamp(t)
        frames.append(f)
    if not frames:
        return pd.DataFrame(columns=[*FEATURES, "label", "snapshot", "weight"])
    rows = pd.concat(frames)
    rows["weight"] = 1.0 / rows.groupby(level=0)["label"].transform("size")
    return rows
