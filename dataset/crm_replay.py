"""Replay a CRM's change history into the daily exports it never wrote (issue 13, live sync).

Why: the model trains point-in-time on the pipeline as it stood on past days, and the CSV import
learns that from one export a day. A CRM's API instead gives each opportunity as it is now plus
a log of changes (Salesforce's OpportunityHistory: stage, amount, close date, probability and
forecast category after each change, stamped with its date; HubSpot's property history). Turning
that log back into "the export of day d" lets the sync hand each day to the same import as a
file (`dataset.ingest.ingest_sources`): the same checks, set-aside rules, balance line and
history tables, so a first sync with backfill gives a new install months of history at once.

Pure: records in, CSV bytes out. Columns are the CRM's API field names, which the salesforce
preset reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, timedelta

import numpy as np
import pandas as pd

from dataset.ingest import Source

# the fields a change log carries (Salesforce OpportunityHistory); the rest of an export's
# columns are taken from the record as it is now
TRACKED = ("StageName", "Amount", "CloseDate", "Probability", "ForecastCategoryName")
# fields a CRM may log one at a time, old and new value (Salesforce's field history tracking)
FIELD_TRACKED = ("OwnerName", "Name", "NextStep", "Type", "LeadSource")
# the record's fields (API names; owner, account and product by name) -> the export's header,
# which the salesforce preset reads
HEADER = {
    "Id": "Id", "Name": "Name", "OwnerName": "Opportunity Owner", "AccountName": "Account Name",
    "ProductName": "Product Name", "StageName": "StageName", "CreatedDate": "CreatedDate",
    "CloseDate": "CloseDate", "Amount": "Amount", "Probability": "Probability",
    "ForecastCategoryName": "ForecastCategoryName", "LastActivityDate": "LastActivityDate",
    "NextStep": "NextStep", "Type": "Type", "LeadSource": "LeadSource",
}  # fmt: skip
DATES = ("CreatedDate", "CloseDate", "LastActivityDate")


def weekly_days(first: date, last: date, weekday: int = 0) -> list[date]:
    """The days a weekly export would have been taken from `first` to `last`: every `weekday`
    (0 = Monday) in between, and `last` itself (today's export)."""
    start = first + timedelta(days=(weekday - first.weekday()) % 7)
    days = [start + timedelta(weeks=i) for i in range((last - start).days // 7 + 1)]
    return [d for d in days if d < last] + [last]


def _day(values: pd.Series) -> pd.Series:
    """Timestamps or ISO text (with or without a time and zone) as calendar days."""
    parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    return parsed.dt.tz_localize(None).dt.normalize()


class Replay:
    """The pipeline on any past day, from the records and their change log, read once: the log
    is sorted and its dates parsed here, so that each day costs one pass over what changed by
    then (a backfill asks for a hundred days of a hundred thousand deals)."""

    def __init__(
        self, current: pd.DataFrame, history: pd.DataFrame, fields: pd.DataFrame | None = None
    ):
        self.deals = current.copy()
        for field in DATES:
            self.deals[field] = _day(self.deals[field])
        for field in TRACKED:  # a date stays a date; others take whatever the log holds
            if field not in DATES:
                self.deals[field] = self.deals[field].astype("object")
        changes = history.assign(_at=_day(history["CreatedDate"]))
        for field in DATES:
            if field in TRACKED and field in changes.columns:
                changes[field] = _day(changes[field])
        self.changes = changes.sort_values("_at", kind="stable").reset_index(drop=True)
        self._ends = self.changes["_at"].to_numpy()
        fields = fields if fields is not None and len(fields) else None
        if fields is not None:
            fields = fields.assign(_at=_day(fields["CreatedDate"]))
            fields = fields.loc[fields["Field"].isin(FIELD_TRACKED)]
            fields = fields.sort_values("_at", kind="stable").reset_index(drop=True)
        self.fields = fields

    def state_on(self, day: date) -> pd.DataFrame:
        """Every opportunity that existed on `day`, as an export taken that evening would show
        it. A tracked field takes its value from the last change on or before `day`; a deal with
        no change by then keeps its current value (its history begins with its creation, so this
        is only the case for a CRM that does not log creation). The last activity is known only
        from the day it happened on (before that, which earlier activity was the last is not in
        the record)."""
        end = pd.Timestamp(day)
        deals = self.deals.loc[self.deals["CreatedDate"] <= end].copy()
        upto = int(np.searchsorted(self._ends, np.datetime64(end), side="right"))
        seen = self.changes.iloc[:upto]
        last = seen.drop_duplicates("OpportunityId", keep="last").set_index("OpportunityId")
        known = deals["Id"].isin(last.index)
        ids = deals.loc[known, "Id"]
        for field in TRACKED:
            if field in last.columns:
                deals.loc[known, field] = ids.map(last[field]).to_numpy()
        deals["LastActivityDate"] = deals["LastActivityDate"].where(
            deals["LastActivityDate"] <= end
        )
        if self.fields is not None:
            self._fields_on(deals, end)
        return deals

    def _fields_on(self, deals: pd.DataFrame, end: pd.Timestamp) -> None:
        """A logged field's value on a day: the new value of its last change by then, else the
        old value of its first change after (it held that until then), else today's value."""
        log = self.fields
        before = log.loc[log["_at"] <= end].drop_duplicates(["OpportunityId", "Field"], keep="last")
        after = log.loc[log["_at"] > end].drop_duplicates(["OpportunityId", "Field"], keep="first")
        known = pd.concat(
            [after.assign(_v=after["OldValue"]), before.assign(_v=before["NewValue"])]
        )
        for field, group in known.groupby("Field"):
            value = group.drop_duplicates("OpportunityId", keep="last").set_index("OpportunityId")
            hit = deals["Id"].isin(value.index)
            deals[field] = deals[field].astype("object")
            deals.loc[hit, field] = deals.loc[hit, "Id"].map(value["_v"]).to_numpy()

    def export(self, day: date, crm: str = "salesforce") -> Source:
        """The export of `day`, named and dated for the import log."""
        return Source(f"{crm} sync {day.isoformat()}.csv", to_csv(self.state_on(day)), as_of=day)


def state_on(
    current: pd.DataFrame, history: pd.DataFrame, day: date, fields: pd.DataFrame | None = None
) -> pd.DataFrame:
    """`Replay.state_on` for one day. `current`: one row per opportunity with HEADER's fields
    (as the API gives it now). `history`: rows of OpportunityId, CreatedDate (when the change
    happened) and the TRACKED fields after it."""
    return Replay(current, history, fields).state_on(day)


def cells(frame: pd.DataFrame, header: dict[str, str] = HEADER) -> pd.DataFrame:
    """An export's cells as text: dates as ISO days, whole numbers without a decimal point,
    blanks for missing values. Column at a time (a backfill writes millions of cells)."""
    out = frame.reindex(columns=list(header))
    return pd.DataFrame({field: _cells(out[field], field) for field in header}, index=frame.index)


def to_csv(frame: pd.DataFrame, header: dict[str, str] = HEADER) -> bytes:
    """An export's bytes, with the export's header."""
    return _csv(cells(frame, header), header)


def _csv(text: pd.DataFrame, header: dict[str, str] = HEADER) -> bytes:
    return text.to_csv(index=False, header=list(header.values()), lineterminator="\n").encode()


def _cells(values: pd.Series, field: str) -> pd.Series:
    if field in DATES:
        return _day(values).dt.strftime("%Y-%m-%d").fillna("")
    values = values.infer_objects()
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return values.astype("object").where(values.notna(), "").astype(str)
    numbers = values.astype("float64")
    text = numbers.astype(str)
    whole = numbers.notna() & (numbers == numbers.round()) & (numbers.abs() < 2**53)
    text[whole] = numbers[whole].astype("int64").astype(str)
    return text.where(numbers.notna(), "")


def replay(
    current: pd.DataFrame,
    history: pd.DataFrame,
    days: Iterable[date],
    crm: str = "salesforce",
    fields: pd.DataFrame | None = None,
) -> Iterator[Source]:
    """One in-memory export per day, made as it is asked for (a backfill's exports together
    would not fit in memory). `fields`: the log of FIELD_TRACKED changes, if any.

    Every day but the last holds only the deals that are new or read differently than the day
    before: the import keeps a deal it does not see as it was and records changes only, so the
    history is the same as from whole exports, for a fraction of the rows (a backfill of a
    hundred weeks would otherwise import every deal a hundred times). The last day is whole, so
    every deal is seen on the sync's day. A day where nothing changed is skipped."""
    replayer = Replay(current, history, fields)
    days = list(days)
    before: pd.DataFrame | None = None
    for i, day in enumerate(days):
        now = cells(replayer.state_on(day).set_index("Id", drop=False))
        out = now
        if before is not None and i < len(days) - 1:
            seen = now.index.isin(before.index)
            same = (now.loc[seen] == before.reindex(now.index[seen])).all(axis=1)
            out = now.drop(same.index[same])
        before = now
        if len(out):
            yield Source(f"{crm} sync {day.isoformat()}.csv", _csv(out), as_of=day)
