"""The CRM tables prepared once for many days' features: running facts of each deal's history.

Pure. A history row is the state a deal was seen in from its `as_of` on. On each row we derive what
was known about the deal by then, and nothing later:
- close-date pushes so far (count, and days added), or the CRM's own push count if larger;
- since when the deal has been in its current stage: the export's "Last Stage Change Date" where
  the CRM gives it, else the export at which the stage was first seen to change (a deal's first
  row says nothing about it: NaT, the features fall back on the engage date);
- moves back to an earlier stage so far, and changes of owner (a deal handed over);
- the share of the states seen so far without a next step (a rep who never records one);
- the change of its amount since it was first recorded (discounts show as a negative log ratio).
And the stage spells of each deal (stage, entered, left), from which the typical time that won
deals spend in a stage is learned (see `rates`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

OPTIONAL_FIELDS = (
    "probability",
    "forecast_category",
    "next_step",
    "stage_changed",
    "push_count",
    "deal_type",
    "lead_source",
    "last_activity",
)


@dataclass
class Crm:
    """The CRM tables, prepared once for many days' features."""

    deals: pd.DataFrame  # latest state per deal (deals table)
    history: pd.DataFrame  # change rows, sorted, with the running facts above
    activity: pd.DataFrame  # deal_id, activity_date (sorted by deal, then date)
    products: pd.DataFrame
    teams: pd.DataFrame
    accounts: pd.DataFrame
    data_end: pd.Timestamp  # the latest as-of date: "today" by default
    stages: pd.DataFrame = field(default_factory=pd.DataFrame)  # stage, status, rank, probability
    spells: pd.DataFrame = field(default_factory=pd.DataFrame)  # deal_id, stage, start, end
    exported: frozenset[str] = frozenset()  # optional fields the newest deals export had
    # features already computed, by day (`features.features_at`): training, the evaluation, the
    # forecast backtest and the scoring each ask for the same days again; likewise the forecast's
    # timing and new deals' win rate, by day (`forecasting.inputs`). Not copied by
    # `dataclasses.replace` (a narrowed Crm starts empty), and never shared between two Crms.
    memo: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def has(self, name: str) -> bool:
        """Did the exports carry this optional column at all? (A column never exported is
        unknown, which is not the same as empty.)"""
        return name in self.exported


def last_per_deal(deal_ids: np.ndarray) -> np.ndarray:
    """Mask of the last row of each run of equal ids (rows sorted by id)."""
    out = np.ones(len(deal_ids), dtype=bool)
    if len(deal_ids) > 1:
        out[:-1] = deal_ids[1:] != deal_ids[:-1]
    return out


def deal_index(history_ids, deal_ids) -> pd.Index:
    """Every deal's number is its position here: the history's deals in its (id) order, then
    the deals with no history. Rows are matched by number, not by id string (see
    `features.open_deals_at`)."""
    ids = pd.Index(history_ids)
    return ids.append(pd.Index(deal_ids).difference(ids, sort=False))


def _arrow(values) -> pa.Array:
    """A column as one Arrow array (no copy where pandas keeps it in Arrow already)."""
    values = values.array if isinstance(values, pd.Series | pd.Index) else values
    out = pa.array(values, from_pandas=True)  # NaN is missing, as in pandas
    return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out


def sorted_rows(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """`frame.sort_values(keys)` for keys that are unique together, renumbered: ordered by
    Arrow, which sorts a million id strings in a tenth of the time pandas takes; rows already in
    order (as `dataset.deal_columns` gives them) are not copied."""
    table = pa.table({k: _arrow(frame[k]) for k in keys})
    if _in_order(table):
        return frame.reset_index(drop=True)
    order = pc.sort_indices(table, sort_keys=[(k, "ascending") for k in keys]).to_numpy()
    return frame.take(order).reset_index(drop=True)


def _in_order(table: pa.Table) -> bool:
    """Does each row come strictly after the one before it, by its columns in turn?"""
    n = table.num_rows
    if n < 2:
        return True
    after = None
    for column in reversed(table.columns):
        a, b = column.slice(0, n - 1), column.slice(1)
        later = pc.less(a, b)
        after = later if after is None else pc.or_kleene(later, pc.and_(pc.equal(a, b), after))
    return bool(pc.all(pc.fill_null(after, False)).as_py())


def positions(values, index) -> np.ndarray:
    """`pd.Index(index).get_indexer(values)` for unique `index` (-1: not there), by Arrow."""
    known, look = _arrow(pd.Index(index)), _arrow(values)
    if look.type != known.type:  # string and large_string; none at all
        look, known = look.cast(pa.large_string()), known.cast(pa.large_string())
    where = pc.index_in(look, value_set=known)
    return where.fill_null(-1).to_numpy().astype(np.intp)


def among(values, members) -> np.ndarray:
    """`values.isin(members)` for deal ids, by Arrow: pandas' isin on Arrow strings turns the
    members into Python objects one by one (a second of a training on 15,000 deals, at every
    snapshot). Anything but strings on both sides (or missing ones) is left to pandas, whose
    rules for missing values and mixed types Arrow's is_in does not share."""
    strings = (pa.string(), pa.large_string(), pa.null())
    try:
        look, known = _arrow(values), _arrow(members)
        plain = look.type in strings and known.type in strings
    except pa.ArrowException:  # mixed types
        plain = False
    if not plain or look.null_count or known.null_count:
        return np.asarray(pd.Series(values).isin(members), dtype=bool)
    if look.type != known.type:  # string and large_string; none at all
        look, known = look.cast(pa.large_string()), known.cast(pa.large_string())
    return pc.is_in(look, value_set=known).to_numpy(zero_copy_only=False).astype(bool)


def _stage_rank(h: pd.DataFrame, stages: pd.DataFrame) -> pd.Series:
    if stages.empty:
        return pd.Series(np.nan, index=h.index)
    ranks = np.append(stages["rank"].to_numpy(dtype=float), np.nan)  # -1: a stage not listed
    return pd.Series(ranks[positions(h["stage"], stages["stage"])], index=h.index)


def prepare(tables: dict[str, pd.DataFrame]) -> Crm:
    """Derive the running facts of every history row (see the module docstring)."""
    h = sorted_rows(tables["history"], ["deal_id", "as_of"])
    # each deal's number, grouped on below (integers group far faster than id strings); the last
    # row of each deal on a day is found by position (history is sorted by deal, day). Sorted,
    # a deal's number counts the ids seen so far (what pd.factorize gives, without hashing).
    same_deal = h["deal_id"].eq(h["deal_id"].shift()).to_numpy(dtype=bool, na_value=False)
    codes = np.cumsum(~same_deal) - 1
    uniques = h["deal_id"].array[~same_deal]
    h["deal_no"] = codes
    for c in ("probability", "forecast_category", "has_next_step", "stage_changed", "push_count",
              "deal_type", "lead_source"):  # fmt: skip
        if c not in h:
            h[c] = pd.NaT if c == "stage_changed" else np.nan
    stages = tables.get("stages", pd.DataFrame(columns=["stage", "status", "rank", "probability"]))
    both_open = same_deal & h["status"].eq("open").to_numpy() & h["status"].shift().eq("open")
    moved = (h["close_date"] - h["close_date"].shift()).dt.days.to_numpy()
    push = both_open.to_numpy() & (moved > 0)
    pushes = pd.Series(push.astype(int)).groupby(codes).cumsum().to_numpy()
    days = pd.Series(np.where(push, moved, 0.0)).groupby(codes).cumsum()
    h["cum_pushes"] = np.fmax(pushes, h["push_count"].to_numpy(dtype=float))
    h["push_days"] = days.to_numpy()
    rank = _stage_rank(h, stages)
    back = same_deal & (rank < rank.shift()).to_numpy()
    h["regressions"] = pd.Series(back.astype(int)).groupby(codes).cumsum()
    h["stage_rank"] = rank
    # the share of the deal's exports so far that showed no next step, among those that had
    # the column (an export without it says nothing either way)
    has_next = h["has_next_step"].astype(float)
    seen = has_next.notna().astype(float).groupby(codes).cumsum()
    missing = (1.0 - has_next).fillna(0.0).groupby(codes).cumsum()
    h["next_step_missing"] = (missing / seen.where(seen > 0)).to_numpy()
    handed = same_deal & h["owner"].ne(h["owner"].shift()).to_numpy()
    h["owner_changes"] = pd.Series(handed.astype(int)).groupby(codes).cumsum()
    changed = same_deal & h["stage"].ne(h["stage"].shift()).to_numpy()
    since = h["as_of"].where(changed)
    since = since.where(same_deal, pd.Timestamp.min)
    since = since.groupby(codes).ffill().replace(pd.Timestamp.min, pd.NaT)
    stated = h["stage_changed"].where(h["stage_changed"] <= h["as_of"])
    h["stage_since"] = stated.fillna(since)
    first_value = h["value"].where(h["value"] > 0).groupby(codes).transform("first")
    h["value_change"] = np.log(h["value"].where(h["value"] > 0) / first_value)
    deals = tables["deals"].copy()
    activity = sorted_rows(tables["activity"], ["deal_id", "activity_date"])
    ids = deal_index(uniques, deals["deal_id"])
    deals["deal_no"] = positions(deals["deal_id"], ids)
    activity["deal_no"] = positions(activity["deal_id"], ids)
    deals["closed_on"] = closed_on(h, deals)
    deals["late_days"] = late_days(h, deals)
    data_end = h["as_of"].max()  # NaT without history (then there are no deals either)
    fields = tables.get("fields")
    exported = frozenset(fields["field"]) if fields is not None and len(fields) else frozenset()
    return Crm(
        deals=deals,
        history=h,
        activity=activity,
        products=tables["products"],
        teams=tables["teams"],
        accounts=tables["accounts"],
        data_end=pd.Timestamp(data_end),
        stages=stages,
        spells=stage_spells(h, deals),
        exported=exported,
    )


def closed_on(h: pd.DataFrame, deals: pd.DataFrame) -> pd.Series:
    """The day each closed deal is taken as closed (NaT for open deals): its close date, but
    not before the day after the last export that still showed it open (a loss back-dated when
    the pipeline is cleaned up was open in the CRM until then) nor after the first export that
    showed it closed (a win booked to the month end is won already). With one export (MavenTech)
    that is the close date. Every "closed by day t" question asks this day, so that on the day
    of an export a deal is open or closed as that export showed it. (History keeps changes
    only: the deal was open in every export before the first that showed it closed.)
    Deals and history rows are matched by `deal_no`."""
    exports = np.sort(h["as_of"].dropna().unique())
    is_open = h["status"].eq("open")
    numbers = h["deal_no"].to_numpy()
    seen_open = is_open.groupby(numbers).any()
    first_closed = h["as_of"].where(~is_open).groupby(numbers).min()
    mine = deals["deal_no"].to_numpy()
    upper = pd.Series(first_closed.reindex(mine).to_numpy(), index=deals.index)
    at = np.searchsorted(exports, upper.to_numpy(dtype="datetime64[ns]"))
    before = np.where(at > 0, exports[np.maximum(at - 1, 0)], np.datetime64("NaT"))
    lower = pd.Series(before, index=deals.index) + pd.Timedelta(days=1)
    was_open = seen_open.reindex(mine).fillna(False).to_numpy(bool)
    lower = lower.where(was_open & upper.notna().to_numpy())
    day = deals["close_date"].where(deals["close_date"].notna(), upper)
    day = day.where(~(day < lower), lower)
    day = day.where(~(day > upper), upper)
    return day.where(deals["status"].isin(["won", "lost"]))


def late_days(h: pd.DataFrame, deals: pd.DataFrame) -> pd.Series:
    """Days from the expected close date to the day each closed deal closed (negative: early;
    NaN for open deals, or where the last export that showed the deal open before that day had
    no date). Only exports before the day `closed_on` takes count: a deal reopened later, or
    shown open after it, is judged by what was known when it closed. Why: where won deals
    routinely close months after the date the CRM showed, a passed date is the org's habit,
    not a sign that nobody steers the deal (`scoring.risk`)."""
    numbers, mine = h["deal_no"].to_numpy(), deals["deal_no"].to_numpy()
    closed = _closed_by_number(h, deals)
    is_open = h["status"].eq("open").to_numpy(dtype=bool, na_value=False)
    rows = np.flatnonzero(is_open & (h["as_of"].to_numpy() < closed[numbers]))  # NaT: never
    last = rows[last_per_deal(numbers[rows])]
    close = h["close_date"].to_numpy()  # in its own unit: a far date must not wrap around
    shown = np.full(len(closed), np.datetime64("NaT"), dtype=close.dtype)
    shown[numbers[last]] = close[last]
    expected = np.where(mine >= 0, shown[np.maximum(mine, 0)], np.datetime64("NaT"))
    return (deals["closed_on"] - pd.Series(expected, index=deals.index)).dt.days.astype(float)


def _closed_by_number(h: pd.DataFrame, deals: pd.DataFrame) -> np.ndarray:
    """Each deal number's `closed_on` (NaT where none), indexed by number, for every number the
    history or the deals table uses (rows are matched by number, not by id string)."""
    mine = deals["deal_no"].to_numpy()
    size = int(max(h["deal_no"].to_numpy().max(initial=-1), mine.max(initial=-1))) + 1
    day = deals["closed_on"].to_numpy()
    out = np.full(size, np.datetime64("NaT"), dtype=day.dtype)
    out[mine[mine >= 0]] = day[mine >= 0]
    return out


def stage_spells(h: pd.DataFrame, deals: pd.DataFrame) -> pd.DataFrame:
    """Each deal's completed stays in an open stage: (deal_id, stage, start, end). A stay ends at
    the next stage's start (or, for the last open stage, at the deal's close); stays whose start
    is unknown (the deal's first row) are left out. Worked on positions into the history, five
    columns taken once (a boolean index of the whole history copied all its columns: 1.8 s of a
    million-deal morning)."""
    rows = np.flatnonzero(h["status"].eq("open").to_numpy(dtype=bool, na_value=False))
    if not len(rows):
        return pd.DataFrame(columns=["deal_id", "stage", "start", "end"])
    # the first row of each deal's stay in each stage, in the history's order
    codes = pc.dictionary_encode(_arrow(h["stage"].take(rows)))  # the open rows' stages only
    stage = codes.indices.fill_null(-1).to_numpy().astype(np.int64)
    deal_no = h["deal_no"].to_numpy()
    pair = deal_no[rows].astype(np.int64) * (len(codes.dictionary) + 1) + stage + 1
    first = rows[~pd.Series(pair).duplicated().to_numpy() & (stage >= 0)]
    # deal numbers follow the ids' order
    as_of = h["as_of"].to_numpy()
    first = first[np.lexsort((as_of[first], deal_no[first]))]
    number = deal_no[first]
    stage_since = h["stage_since"]
    if not pd.api.types.is_datetime64_dtype(stage_since):  # a table made by hand: no dates at all
        stage_since = pd.to_datetime(stage_since)
    since = stage_since.to_numpy()[first]
    same = np.r_[number[1:] == number[:-1], False]  # the deal's next stay is the next row
    after = np.r_[first[1:], 0]
    nat = np.datetime64("NaT")
    unit = since.dtype  # the stay's end in its start's unit, as the other days are cast
    end = np.where(same, stage_since.to_numpy()[after], nat).astype(unit)
    end = np.where(np.isnat(end) & same, as_of[after].astype(unit), end)
    close = _closed_by_number(h, deals)[number].astype(unit)
    end = np.where(np.isnat(end), close, end)
    spells = pd.DataFrame(
        {
            "deal_id": h["deal_id"].take(first).to_numpy(),
            "stage": h["stage"].take(first).to_numpy(),
            "start": since,
            "end": end,
        }
    )
    return spells[
        spells["start"].notna() & spells["end"].notna() & (spells["end"] >= spells["start"])
    ]
