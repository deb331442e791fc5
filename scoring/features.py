"""Point-in-time features: what was known about each open deal on day t, and nothing later.

Pure. The rules that keep the future out (the leakage traps of CRM data, see modeling-notes):
- A deal's state on day t is its latest *history row dated <= t* (with the running facts of
  `crm.prepare`). Where no export that old exists (MavenTech ships one final snapshot), only
  facts dated <= t are used: the engage date, the activity dates, and owner and product (taken as
  fixed); stage, account and amount are unknown then (CRMs fill the account in at close).
- A deal is open on t if it had engaged (or been seen) by t and had not closed by t.
- Rates and typical durations come only from deals closed before t (`rates.rates_before`).

What the CRM itself says is used as it says it: the stage (its rank in the pipeline and its
default probability), the deal's own probability and forecast category, days in the stage and how
that compares with won deals, whether a next step is recorded. A column the exports never had is
unknown (NaN), never "none".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dataset.presets import name_key
from scoring.crm import Crm, deal_index, last_per_deal, prepare  # noqa: F401  (prepare: re-exported)
from scoring.rates import Rates, rates_before

NUMERIC = (
    "age_days",
    "cycle_ratio",
    "stage_rank",
    "stage_probability",
    "crm_probability",
    "forecast_rank",
    "days_in_stage",
    "stage_time_ratio",
    "regressions",
    "owner_changes",
    "days_since_activity",
    "active_weeks",
    "active_share",
    "has_next_step",
    "next_step_missing",
    "close_pushes",
    "push_days",
    "days_to_expected_close",
    "value_change",
    "log_value",
    "rep_lift",
    "product_lift",
    "account_lift",
    "log_account_revenue",
    "days_to_quarter_end",
)
CATEGORICAL = ("stage", "product", "region", "sector", "deal_type", "lead_source")
FEATURES = NUMERIC + CATEGORICAL
FEATURE_VERSION = 8
MEMO_ROWS = 50_000  # open deals: above this a day's features are not memoised
ACTIVE_WEEKS = 8  # how far back "how often is there activity" looks

# Forecast categories of Salesforce (ForecastCategoryName and the API's ForecastCategory) and
# HubSpot, from least to most committed.
FORECAST_RANK = {
    "omitted": 0, "notforecasted": 0, "pipeline": 1, "bestcase": 2, "mostlikely": 2,
    "commit": 3, "forecast": 3, "closed": 4, "closedwon": 4,
}  # fmt: skip

_STATE = ("owner", "product", "account", "value", "stage", "close_date", "cum_pushes", "push_days",
          "regressions", "stage_since", "value_change", "probability", "forecast_category",
          "has_next_step", "deal_type", "lead_source", "stage_rank", "owner_changes", "next_step_missing")  # fmt: skip


def open_deals_at(crm: Crm, t: pd.Timestamp) -> pd.DataFrame:
    """The deals open on day t with their state as known then (one row per deal).

    Rows are matched by deal number (`crm.prepare`), positions into arrays, not by deal id: a
    string index costs about a second per lookup over a million deals, a number nothing."""
    d, h = crm.deals, crm.history
    deal_no, h_no, a_no = deal_numbers(crm)
    size = int(max(deal_no.max(initial=-1), h_no.max(initial=-1), a_no.max(initial=-1))) + 1
    # each deal's last history row on or before t (-1: none yet), and its first row ever
    seen = np.flatnonzero((h["as_of"] <= t).to_numpy())
    last = seen[last_per_deal(h_no[seen])]
    state_row = np.full(size, -1)
    state_row[h_no[last]] = last
    first = np.flatnonzero(np.r_[True, h_no[1:] != h_no[:-1]]) if len(h_no) else np.zeros(0, int)
    first_row = np.full(size, -1)
    first_row[h_no[first]] = first
    engaged = (d["engage_date"].notna() & (d["engage_date"] <= t)).to_numpy()
    closed_by_t = (d["closed_on"] <= t).to_numpy()
    is_open = (engaged | (state_row[deal_no] >= 0)) & ~closed_by_t
    numbers = deal_no[is_open]
    rows = state_row[numbers]
    has_row = rows >= 0
    if has_row.any():
        status = _take(h["status"], rows)
        still_open = (status == "open").fillna(False).to_numpy(bool) | ~has_row
        is_open[np.flatnonzero(is_open)[~still_open]] = False
        numbers, rows, has_row = numbers[still_open], rows[still_open], has_row[still_open]
    # plain Python ids, not pandas' Arrow strings: every lookup by an index of those makes the
    # million ids Python objects again (0.7 s of a run's scoring over a hundred lookups)
    index = pd.Index(d["deal_id"].to_numpy()[is_open], dtype=object, name="deal_id")
    out = pd.DataFrame({c: _take(h[c], rows).array for c in _STATE}, index=index)
    fallback = first_row[numbers]
    for c in ("owner", "product"):
        out[c] = out[c].where(has_row, pd.Series(_take(h[c], fallback).array, index=index))
    out = out.rename(columns={"close_date": "expected_close", "cum_pushes": "close_pushes"})
    for c in ("close_pushes", "push_days", "regressions", "owner_changes"):
        out[c] = out[c].where(has_row, 0).astype(float)
    engage = d["engage_date"].where(d["engage_date"] <= t).to_numpy()[is_open]
    out["engage_date"] = engage
    out["stage_since"] = pd.concat([out["stage_since"], out["engage_date"]], axis=1).max(axis=1)
    on_time = (crm.activity["activity_date"] <= t).to_numpy() & (a_no >= 0)
    act_no = a_no[on_time]
    act_day = crm.activity["activity_date"].to_numpy()[on_time]
    latest = last_per_deal(act_no)
    last_activity = np.full(size, np.datetime64("NaT"), dtype=act_day.dtype)
    last_activity[act_no[latest]] = act_day[latest]
    out["last_activity"] = last_activity[numbers]
    recent, ever = _active_weeks(act_no, act_day, t, size)
    out["active_weeks"], out["active_weeks_ever"] = recent[numbers], ever[numbers]
    return out


def deal_numbers(crm: Crm) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each deal's, history row's and activity row's deal number (activity of a deal the CRM
    does not have: -1), as `prepare` gave them; worked out here for a Crm made by hand."""
    d, h, act = crm.deals, crm.history, crm.activity
    if "deal_no" in d and "deal_no" in h and "deal_no" in act:
        return (d["deal_no"].to_numpy(np.int64), h["deal_no"].to_numpy(np.int64),
                act["deal_no"].to_numpy(np.int64))  # fmt: skip
    ids = deal_index(h["deal_id"].unique() if "deal_id" in h else [], d["deal_id"])
    act_ids = act["deal_id"] if "deal_id" in act else pd.Series([], dtype=object)
    return (ids.get_indexer(d["deal_id"]),
            ids.get_indexer(h["deal_id"]) if "deal_id" in h else np.zeros(0, np.int64),
            ids.get_indexer(act_ids))  # fmt: skip


def _take(column: pd.Series, rows: np.ndarray) -> pd.Series:
    """A column's values at positions `rows`, missing where a position is -1."""
    return pd.Series(pd.api.extensions.take(column.array, rows, allow_fill=True))


def _active_weeks(deal_no: np.ndarray, day: np.ndarray, t: pd.Timestamp, size: int):
    """In how many weeks before t was activity recorded, by deal number (NaN: none): of the last
    ACTIVE_WEEKS (`recent`) and ever (`ever`). Weeks, not days: weekly and daily exports then read
    the same (a weekly export shows only the latest activity of its week)."""
    weeks = (np.datetime64(t) - day).astype("timedelta64[D]").astype(np.int64) // 7
    span = int(weeks.max(initial=0)) + 1
    pairs = np.sort(deal_no.astype(np.int64) * span + weeks)
    pairs = pairs[last_per_deal(pairs)]  # each (deal, week) once: np.unique's, without hashing
    ever = np.bincount(pairs // span, minlength=size).astype(float)
    recent = np.bincount(pairs[pairs % span < ACTIVE_WEEKS] // span, minlength=size).astype(float)
    return np.where(recent > 0, recent, np.nan), np.where(ever > 0, ever, np.nan)


def _forecast_rank(category: pd.Series) -> pd.Series:
    keys = category.dropna().astype(str).unique()
    ranks = {k: FORECAST_RANK.get(name_key(k), np.nan) for k in keys}
    return category.map(ranks).astype(float)


def _days(later: pd.Series | pd.Timestamp, earlier: pd.Series | pd.Timestamp) -> pd.Series:
    return (later - earlier).dt.days.astype(float)


@dataclass(frozen=True)
class ValueRefs:
    """What a deal without an amount is valued at: the median amount of the open deals of its
    product (`by_product`, "?" for none), else of all open deals (`overall`). Population-wide:
    computed once over every open deal, never over a part of them (see `scoring.distributed`)."""

    by_product: pd.Series
    overall: float


def amounts(state: pd.DataFrame) -> pd.Series:
    """The amounts the CRM gives (a zero or negative amount is none)."""
    return state["value"].astype(float).where(state["value"] > 0)


def value_refs(state: pd.DataFrame) -> ValueRefs:
    """The `ValueRefs` of these open deals (`open_deals_at` rows, or their product and value)."""
    amount = amounts(state)
    by_product = amount.groupby(state["product"].fillna("?")).median()
    return ValueRefs(by_product=by_product, overall=float(amount.median()))


def value_used(state: pd.DataFrame, crm: Crm, refs: ValueRefs) -> pd.Series:
    """The value a deal is counted at: its amount; else its product's list price, else the
    median amount of its product's open deals, else of all open deals."""
    price = crm.products.set_index("product")["sales_price"]
    list_price = state["product"].map(price).astype(float)
    peers = state["product"].fillna("?").map(refs.by_product).astype(float)
    estimate = list_price.fillna(peers).fillna(refs.overall)
    return amounts(state).fillna(estimate)


def features_at(
    crm: Crm, t: pd.Timestamp, rates: Rates | None = None, values: ValueRefs | None = None
) -> pd.DataFrame:
    """Feature rows (index deal_id) for the deals open on t, plus context columns that the
    explanations quote (owner, typical_cycle, typical_stage_days, list_price, value_used...).
    `rates` and `values` are population-wide: by default from all of `crm`'s deals. Those
    defaults are computed once per day and Crm (a copy each call: callers add columns); days
    with more than MEMO_ROWS open deals are not kept, so a big pipeline's run holds one frame."""
    t = pd.Timestamp(t)
    default = rates is None and values is None
    if default and t in crm.memo:
        return crm.memo[t].copy()
    rates = rates or rates_before(crm, t)
    s = open_deals_at(crm, t)
    f = features_of(s, crm, t, rates, values or value_refs(s))
    if default and len(f) <= MEMO_ROWS:
        crm.memo[t] = f.copy()
    return f


def features_of(
    s: pd.DataFrame, crm: Crm, t: pd.Timestamp, rates: Rates, values: ValueRefs
) -> pd.DataFrame:
    """The features of open deals' states `s` (`open_deals_at`) on t. Row by row, given the
    population-wide `rates` and `values`: a part of the deals gives the same rows as the whole
    (`crm` is read for its reference tables and exported columns only)."""
    price = crm.products.set_index("product")["sales_price"]
    team = crm.teams.set_index("sales_agent")
    acct = crm.accounts.set_index("account")
    stage_prob = crm.stages.set_index("stage")["probability"] if len(crm.stages) else pd.Series()
    # the columns are gathered in a dict and made a frame once: inserting some fifty columns
    # one by one into a frame was a third of the features' time on a small CRM
    f: dict[str, object] = {}
    by = _mapper(s)
    f["age_days"] = _days(t, s["engage_date"])
    typical = by("product", rates.cycle).astype(float).fillna(rates.cycle_all)
    f["cycle_ratio"] = f["age_days"] / typical.clip(lower=1)
    f["stage_rank"] = s["stage_rank"].astype(float)
    f["stage_probability"] = by("stage", stage_prob).astype(float)
    f["crm_probability"] = s["probability"].astype(float)
    f["forecast_rank"] = _forecast_rank(s["forecast_category"])
    f["days_in_stage"] = _days(t, s["stage_since"])
    typical_stage = by("stage", rates.stage_days).astype(float)
    f["stage_time_ratio"] = f["days_in_stage"] / typical_stage.clip(lower=1)
    f["regressions"] = s["regressions"]
    f["owner_changes"] = s["owner_changes"]
    quiet = _days(t, s["last_activity"])
    # where activity is exported, a deal with none at all has been quiet since it was created
    f["days_since_activity"] = quiet.fillna(f["age_days"]) if crm.has("last_activity") else quiet
    # the share of the weeks it has been open (at most the last 8) with activity recorded
    weeks_open = np.clip(np.ceil(f["age_days"].fillna(7 * ACTIVE_WEEKS) / 7), 1, ACTIVE_WEEKS)
    share = s["active_weeks"].fillna(0.0) / weeks_open
    f["active_weeks"] = share.clip(upper=1.0) if crm.has("last_activity") else np.nan
    # and of all the weeks since it was engaged: how engaged the buyer has been all along
    all_weeks = np.ceil(f["age_days"] / 7).clip(lower=1)
    ever = (s["active_weeks_ever"].fillna(0.0) / all_weeks).clip(upper=1.0)
    f["active_share"] = ever if crm.has("last_activity") else np.nan
    has_next = s["has_next_step"].astype(float)
    f["has_next_step"] = has_next if crm.has("next_step") else np.nan
    missing = s["next_step_missing"].astype(float)
    f["next_step_missing"] = missing if crm.has("next_step") else np.nan
    f["close_pushes"] = s["close_pushes"]
    f["push_days"] = s["push_days"]
    f["days_to_expected_close"] = _days(s["expected_close"], t)
    f["value_change"] = s["value_change"].astype(float)
    list_price = by("product", price).astype(float)
    amount = amounts(s)
    used = value_used(s, crm, values)
    f["log_value"] = np.log1p(used.clip(lower=0))
    rep_rate = by("owner", rates.rep).astype(float).fillna(rates.base)
    product_rate = by("product", rates.product).astype(float).fillna(rates.base)
    account_rate = by("account", rates.account).astype(float)
    # as lifts over the win rate of that time, in log-odds: the rates of the deals closed so far
    # drift (the quick wins close first), a lift does not
    f["rep_lift"] = _logit(rep_rate) - _logit(rates.base)
    f["product_lift"] = _logit(product_rate) - _logit(rates.base)
    f["account_lift"] = _logit(account_rate) - _logit(rates.base)
    f["log_account_revenue"] = np.log1p(by("account", acct["revenue"]).astype(float))
    # quarter ends move deals (a push to next quarter, a clean-up of dead deals): where in the
    # quarter the day is
    f["days_to_quarter_end"] = float(((t + pd.offsets.QuarterEnd(0)).normalize() - t).days)
    f["stage"] = s["stage"]
    f["product"] = s["product"]
    f["region"] = by("owner", team["regional_office"])
    f["sector"] = by("account", acct["sector"])
    f["deal_type"] = s["deal_type"]
    f["lead_source"] = s["lead_source"]
    # context for explanations and risk (not model inputs)
    f["owner"] = s["owner"]
    f["manager"] = by("owner", team["manager"])
    f["account"] = s["account"]
    f["typical_cycle"] = typical
    f["typical_stage_days"] = typical_stage
    f["typical_late_days"] = rates.late_days
    f["longest_cycle"] = rates.longest
    f["list_price"] = list_price
    f["value_used"] = used
    f["value_known"] = amount.notna()
    f["value_source"] = np.where(
        amount.notna(), "amount", np.where(list_price.notna(), "list price", "median")
    )
    f["expected_close"] = s["expected_close"]
    f["forecast_category"] = s["forecast_category"]
    f["base_rate"] = rates.base
    f["rep_win_rate"], f["product_win_rate"], f["account_win_rate"] = (
        rep_rate,
        product_rate,
        account_rate,
    )
    return pd.DataFrame(f, index=s.index)


def _mapper(s: pd.DataFrame):
    """`by(column, mapping)`: `s[column].map(mapping)`, worked out once per distinct value of the
    column (a million open deals have a few thousand reps, products or accounts; mapping each
    row's string costs a third of a second per column), the column's codes kept for the next."""
    codes: dict[str, tuple[np.ndarray, pd.Series]] = {}

    def by(column: str, mapping) -> pd.Series:
        if column not in codes:
            numbers, uniques = pd.factorize(s[column], use_na_sentinel=True)
            keys = pd.Series(uniques)
            if (numbers < 0).any():  # missing values map as missing values do
                keys = pd.concat([keys, pd.Series([np.nan], dtype=keys.dtype)], ignore_index=True)  # fmt: skip
                numbers = np.where(numbers < 0, len(keys) - 1, numbers)
            codes[column] = numbers, keys
        numbers, keys = codes[column]
        return keys.map(mapping).take(numbers).set_axis(s.index)

    return by


def _logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 0.01, 0.99)
    return np.log(p / (1 - p))
