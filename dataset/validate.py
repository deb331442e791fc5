"""Check and type the records of one export: accepted rows as a DataFrame, the rest set aside.

Pure. Every record read ends up in exactly one of `Parsed.frame` or `Parsed.rejected`, so the
balance rows read = accepted + set aside always holds. A record may fail several checks; its
reason lists them all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from dataset.csvfile import RawTable, Rejected
from dataset.ids import clean_ids, mixed_alphabets, salesforce_18, twins
from dataset.limits import DEFAULT_LIMITS, Limits, latest_created
from dataset.presets import DEAL_FIELDS, LOST, OPEN, WON, Preset, name_key
from dataset.values import blank, blank_or_spaced, parse_amounts, parse_dates

# Misspellings in published data sets that we read as the intended word (logged in the notes).
SECTOR_FIXES = {"technolgy": "technology"}

KEYS = {
    "deals": "deal_id",
    "accounts": "account",
    "products": "product",
    "sales_teams": "sales_agent",
}


class AsOfError(ValueError):
    """The as-of date given is earlier than events recorded in the file."""


@dataclass
class Parsed:
    """One file's outcome: typed accepted rows, rejected rows, and what was noticed."""

    table: str
    preset: str
    frame: pd.DataFrame
    rejected: list[Rejected]
    rows_read: int
    as_of: date | None = None
    # the latest date the export cannot have been taken before (a deal's creation); closes and
    # activities may be dated ahead in a CRM, so they do not rule a stated date out
    certain: date | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def rows_accepted(self) -> int:
        return len(self.frame)

    @property
    def rows_set_aside(self) -> int:
        return len(self.rejected)


class _Checks:
    """Collects vectorised failure masks with a message maker per check."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.items: list[tuple[np.ndarray, Callable[[int], str]]] = []

    def add(self, mask: pd.Series | np.ndarray, message: Callable[[int], str]) -> None:
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            self.items.append((mask, message))

    def failed(self) -> np.ndarray:
        out = np.zeros(self.n, dtype=bool)
        for mask, _ in self.items:
            out |= mask
        return out

    def reason(self, i: int) -> str:
        return "; ".join(msg(i) for mask, msg in self.items if mask[i])


def _column(columns: list[list[str]], found: dict[str, int], name: str, n: int) -> pd.Series:
    """The text of a canonical column of the `n` records, stripped of any Unicode white space (a
    no-break or an em space too), None where blank (all None if absent)."""
    if name not in found:
        return pd.Series([None] * n, dtype="object")
    values = columns[found[name]]
    if blank_or_spaced(values):
        values = [
            (v.strip() or None) if v and (v[0].isspace() or v[-1].isspace()) else (v or None)
            for v in values
        ]
    return pd.Series(values, dtype="object")


def _frame(raw: RawTable, preset: Preset, found: dict[str, int]) -> pd.DataFrame:
    """The preset's columns found in the file, as text; each record column is let go as soon as
    its last canonical column is made (a big file's cells are not held twice over)."""
    columns, n = raw.hand_over(), len(raw.line)
    names = [c for c in preset.columns if c in found]
    left = Counter(found[c] for c in names)
    out = {}
    for c in names:
        out[c] = _column(columns, found, c, n)
        left[found[c]] -= 1
        if not left[found[c]]:
            columns[found[c]] = []
    return pd.DataFrame(out)


@dataclass(frozen=True)
class _Window:
    """The days a date column may hold, and what a later day means."""

    earliest: date
    latest: date
    after: str  # e.g. "is in the future (after 2026-12-04)"


def _date_column(text: pd.Series, name: str, preset: Preset, checks: _Checks, window: _Window):
    """Dates outside the window are set aside and blanked here, so that no later check or
    message meets a year 0 or a 9999-12-31 (which pandas cannot format or hold)."""
    dates, bad, fmt = parse_dates(text, preset.date_order)
    hint = f" (read as {fmt})" if fmt else ""
    checks.add(bad, lambda i, t=text, n=name, h=hint: f"bad {n} {t.iloc[i]!r}{h}")
    early = dates.notna() & (dates < pd.Timestamp(window.earliest))
    late = dates.notna() & (dates > pd.Timestamp(window.latest))
    checks.add(
        early, lambda i, t=text, n=name, d=window.earliest: f"{n} {t.iloc[i]!r} is before {d}"
    )
    checks.add(late, lambda i, t=text, n=name, w=window.after: f"{n} {t.iloc[i]!r} {w}")
    return dates.mask(early | late)


def _amount_column(text: pd.Series, name: str, checks: _Checks, ceiling: float) -> pd.Series:
    """Money and plain numbers alike (years, head counts): separators and symbols allowed.
    Infinity, a negative and anything above `ceiling` are set aside: one such value would
    swamp every total (and a 1e308 prints as a 309-digit number)."""
    values, bad = parse_amounts(text)
    checks.add(bad, lambda i, t=text, n=name: f"bad {n} {t.iloc[i]!r} (not a number)")
    infinite = np.isinf(values.to_numpy())
    checks.add(infinite, lambda i, t=text, n=name: f"{n} {t.iloc[i]!r} is not a finite number")
    checks.add((values < 0) & ~infinite, lambda i, t=text, n=name: _negative(n, t.iloc[i]))
    checks.add(
        (values > ceiling) & ~infinite,
        lambda i, t=text, n=name: (
            f"{n} {t.iloc[i]!r} is above the ceiling of {ceiling:,.0f} "
            "(if it is real, raise [exports] max_amount in revbot.toml)"
        ),
    )
    return values.mask(infinite)


def _negative(name: str, text: str) -> str:
    """`negative value -550`, or with the text as written where it differs: `'$-5'`."""
    value = parse_amounts(pd.Series([text], dtype="object"))[0].iloc[0]
    shown = f"{value:g}"
    return f"negative {name} {shown}" + ("" if text == shown else f" (written {text!r})")


def _id_checks(ids: pd.Series, known: Iterable[str], lines: list[int], checks: _Checks) -> None:
    """Ids mixing alphabets, and ids that are another's twin but for case or look-alike letters
    (`/deal` could not tell them apart), are set aside naming the other id and where it is."""
    # only an id with a letter outside ASCII can mix alphabets
    odd = [
        i
        for i, t in enumerate(ids.to_numpy(dtype=object))
        if isinstance(t, str) and not t.isascii()
    ]
    mixed = {i: m for i in odd if (m := mixed_alphabets(ids.iloc[i]))}
    checks.add(
        np.isin(np.arange(len(ids)), list(mixed)),
        lambda i: f"deal_id {ids.iloc[i]!r} mixes {' and '.join(mixed[i])} letters",
    )
    twin = twins(ids, known)
    if not twin:
        return
    first_line: dict[str, int] = {}
    for text, line in zip(ids, lines, strict=True):
        first_line.setdefault(text, line)

    def reason(i: int) -> str:
        text, (other, imported) = ids.iloc[i], twin[i]
        where = "already imported" if imported else f"line {first_line[other]}"
        if text.casefold() != other.casefold():
            return f"deal_id {text!r} looks like {other!r} ({where}): Greek or Cyrillic letters"
        return f"deal_id {text!r} differs only in case from {other!r} ({where})"

    checks.add(np.isin(np.arange(len(ids)), list(twin)), reason)


def _duplicates(frame: pd.DataFrame, key: str, ok: np.ndarray, lines: list[int]) -> dict[int, str]:
    """Among rows that passed the other checks: later identical copies of a row are set aside;
    rows sharing an id but disagreeing are all set aside (we cannot tell which one is right)."""
    keys = frame[key].to_numpy(dtype=object)
    live = np.flatnonzero(ok & pd.notna(keys))
    # equal ids have equal hashes: only rows whose id's hash repeats are looked at (a table of
    # a million strings for `duplicated` cost a big import 100 MB)
    hashes = np.fromiter(map(hash, keys[live]), np.int64, len(live))
    order = np.argsort(hashes, kind="stable")
    repeats = np.zeros(len(live), dtype=bool)
    same = hashes[order[1:]] == hashes[order[:-1]]
    repeats[order[1:][same]] = repeats[order[:-1][same]] = True
    candidates = frame.iloc[live[repeats]]
    dup = candidates[candidates[key].duplicated(keep=False)]
    out: dict[int, str] = {}
    for key_value, group in dup.groupby(key, sort=False):
        idx = group.index.to_list()
        at = ", ".join(str(lines[i]) for i in idx)
        if len(group.drop(columns=[key]).astype("str").drop_duplicates()) == 1:
            for i in idx[1:]:
                out[i] = f"duplicate of line {lines[idx[0]]} ({key} {key_value!r}, identical)"
        else:
            for i in idx:
                out[i] = f"duplicate {key} {key_value!r} with conflicting data (lines {at})"
    return out


def resolve_names(values: pd.Series, known: Iterable[str]) -> tuple[pd.Series, dict[str, str]]:
    """Map spelling variants (`GTXPro`) onto the known names (`GTX Pro`); returns the aliases used."""
    by_key = {name_key(k): k for k in known}
    aliases = {}
    for v in values.dropna().unique():
        canonical = by_key.get(name_key(v))
        if canonical is not None and canonical != v:
            aliases[v] = canonical
    return (values.replace(aliases) if aliases else values), aliases


def parse_table(
    raw: RawTable,
    preset: Preset,
    found: dict[str, int],
    known_products: Iterable[str] = (),
    as_of: date | None = None,
    *,
    today: date,
    limits: Limits = DEFAULT_LIMITS,
    known_ids: Iterable[str] = (),
) -> Parsed:
    """Validate and type one file's records according to its preset. `today` is the day of the
    import: no deal can have been created after it, nor can the export speak for a later day.
    `known_ids`: the deal ids already imported, which a new id may not mimic."""
    n = len(raw.line)
    checks = _Checks(n)
    notes: list[str] = []
    key = KEYS[preset.table]
    frame = _frame(raw, preset, found)
    # the columns the export lacks share one array of None (a million rows' worth each, else)
    none = pd.Series(np.full(n, None, dtype=object), copy=False) if len(frame) == n else None
    for c in (*preset.columns, *(DEAL_FIELDS if preset.table == "deals" else ())):
        if c not in frame:
            frame[c] = none
    if preset.table == "deals":
        frame[key], cleaned = clean_ids(frame[key])
        if cleaned:
            before, after = next(iter(cleaned.items()))
            notes.append(
                f"{len(cleaned)} deal id(s) cleaned of invisible characters, compatibility forms "
                f"or surrounding spaces, e.g. {before!r} read as {after!r}"
            )
        if preset.case_safe_ids:
            frame[key] = frame[key].map(salesforce_18, na_action="ignore")
        _id_checks(frame[key], known_ids, raw.line, checks)
    checks.add(frame[key].isna(), lambda i, k=key: f"missing {k}")

    if preset.table == "deals":
        frame = _deal_fields(preset, frame, checks, _windows(today, limits), limits.max_amount)
    elif preset.table == "accounts":
        for c in ("year_established", "employees", "revenue"):
            frame[c] = _amount_column(frame[c], c, checks, limits.max_amount)
        fixed = frame["sector"].str.lower().map(SECTOR_FIXES)
        if fixed.notna().any():
            counts = frame.loc[fixed.notna(), "sector"].value_counts().to_dict()
            notes.append(f"sector spelling corrected: {counts} -> {SECTOR_FIXES}")
            frame["sector"] = fixed.fillna(frame["sector"])
    elif preset.table == "products":
        frame["sales_price"] = _amount_column(
            frame["sales_price"], "sales_price", checks, limits.max_amount
        )

    lines = raw.line
    failed = checks.failed()
    dup = _duplicates(frame, key, ~failed, lines)
    rejected = list(raw.rejected)
    drop = np.zeros(n, dtype=bool)
    for i in np.flatnonzero(failed | np.isin(np.arange(n), list(dup))):
        reason = checks.reason(i) if failed[i] else dup[i]
        rejected.append(Rejected(lines[i], reason, raw.raw(i)))
        drop[i] = True
    rejected.sort(key=lambda r: r.line)
    if drop.any():  # (a copy of a big frame's every column, only where rows go)
        frame = frame[~drop]
    frame.insert(0, "line", np.asarray(lines)[~drop])
    frame = frame.reset_index(drop=True)

    if preset.table == "deals" and known_products:
        frame["product"], aliases = resolve_names(frame["product"], known_products)
        for variant, canonical in aliases.items():
            count = int((frame["product"] == canonical).sum())
            notes.append(f"product {variant!r} read as {canonical!r} ({count} deals in all)")

    data_as_of = None
    if preset.table == "deals":
        data_as_of, ahead = _latest_event(frame, latest_created(today))
        if ahead:
            notes.append(
                f"{ahead} close or activity date(s) after {latest_created(today)} (booked ahead "
                "in the CRM) do not count towards the export's as-of date"
            )
    certain = _latest_creation(frame) if preset.table == "deals" else None
    if as_of is not None and certain is not None and certain > as_of:
        raise AsOfError(
            f"the file has deals created up to {certain}, after the as-of date {as_of}; "
            "give a later --as-of or leave it out"
        )
    footer = len(raw.footer)
    if footer:
        notes.append(f"report footer of {footer} line(s) skipped (not data)")
    return Parsed(
        table=preset.table,
        preset=preset.name,
        frame=frame,
        rejected=rejected,
        rows_read=n + len(raw.rejected),
        as_of=as_of or data_as_of,
        certain=certain,
        notes=notes,
    )


NEXT_STEP_CHARS = 255  # Salesforce's own limit for Next Step


def _percent_column(text: pd.Series, checks: _Checks, scale: str) -> pd.Series:
    """The CRM's win probability as a percentage: `75`, `75%` or, where every value of the file
    is a fraction (HubSpot exports 0.2 for 20%), the fraction times 100, unless the preset says
    its CRM writes percentages (`scale`: a Salesforce file of 0% and 1% deals is not 0-100%)."""
    if text.isna().all():  # not exported: nothing to parse (its text copies cost 100 MB a 2M rows)
        return pd.Series(np.nan, index=text.index, dtype="float64")
    values, bad = parse_amounts(text.str.rstrip("%").str.strip())
    checks.add(bad, lambda i, t=text: f"bad probability {t.iloc[i]!r} (not a number)")
    known = values.dropna()
    signed = text.fillna("").str.contains("%", regex=False).any()  # "0.5%" is half a percent
    if scale != "percent" and not signed and len(known) and known.max() <= 1.0:
        values = values * 100.0
    checks.add(
        (values < 0) | (values > 100),
        lambda i, t=text: f"probability {t.iloc[i]!r} outside 0-100%",
    )
    return values


def _windows(today: date, limits: Limits) -> dict[str, _Window]:
    """Per date column: creation and stage changes are past events; an expected close, a win
    booked to the month end or a meeting in the calendar may lie ahead, by some years at most
    (`set_aside_beyond` then measures that from the as-of date)."""
    created = latest_created(today)
    past = _Window(limits.earliest, created, f"is in the future (after {created})")
    far = limits.ahead(created)
    years = limits.years_ahead
    ahead = _Window(limits.earliest, far, f"is more than {years} years ahead (after {far})")
    return {"engage_date": past, "stage_changed": past, "close_date": ahead, "last_activity": ahead}


def _deal_fields(
    preset: Preset,
    frame: pd.DataFrame,
    checks: _Checks,
    windows: dict[str, _Window],
    ceiling: float,
) -> pd.DataFrame:
    stages = preset.stage_status()
    seen = {s: stages.get(name_key(s), (None, None)) for s in frame["stage"].dropna().unique()}
    label = frame["stage"].map({s: v[0] for s, v in seen.items()})
    status = frame["stage"].map({s: v[1] for s, v in seen.items()})
    known = ", ".join(preset.stages)
    # a blank stage is as unusable as an unknown one (and deal_history.stage is NOT NULL)
    checks.add(frame["stage"].isna(), lambda i: f"blank stage (known: {known})")
    checks.add(
        frame["stage"].notna() & status.isna(),
        lambda i, s=frame["stage"]: f"unknown stage {s.iloc[i]!r} (known: {known})",
    )
    frame["stage"] = label.where(label.notna(), frame["stage"])
    frame["status"] = status
    close_text = frame["close_date"]
    for c in ("engage_date", "close_date", "last_activity"):
        frame[c] = _date_column(frame[c], c, preset, checks, windows[c])
    frame["value"] = _amount_column(frame["value"], "value", checks, ceiling)
    frame["stage_changed"] = _date_column(
        frame["stage_changed"], "stage_changed", preset, checks, windows["stage_changed"]
    )
    frame["probability"] = _percent_column(frame["probability"], checks, preset.probability_scale)
    frame["push_count"] = _amount_column(frame["push_count"], "push_count", checks, ceiling)
    frame["next_step"] = frame["next_step"].str.slice(0, NEXT_STEP_CHARS)
    closed = frame["status"].isin([WON, LOST])
    checks.add(
        closed & blank(close_text),
        lambda i, s=frame["stage"]: f"closed deal ({s.iloc[i]}) without a close date",
    )
    before = closed & (frame["close_date"] < frame["engage_date"])
    checks.add(
        before,
        lambda i, f=frame: (
            f"close_date {f['close_date'].iloc[i]:%Y-%m-%d} before engage_date "
            f"{f['engage_date'].iloc[i]:%Y-%m-%d}"
        ),
    )
    return frame


def _latest_creation(frame: pd.DataFrame) -> date | None:
    """The latest day a deal in the export was created: the export was taken on it or later.
    (A close date or last activity can be dated ahead: a win booked to the month end, a meeting
    in the calendar.)"""
    latest = frame["engage_date"].max()
    return latest.date() if pd.notna(latest) else None


def _latest_event(frame: pd.DataFrame, until: date) -> tuple[date | None, int]:
    """The as-of date a deals export speaks for: its latest *event* up to `until` (an expected
    close date of an open deal lies in the future and does not count), and how many closes and
    activities were passed over for lying after `until`: no single row booked ahead may carry
    the export's date past the day it was taken.
    """
    cap = pd.Timestamp(until)
    closes = frame.loc[frame["status"] != OPEN, "close_date"]
    events = [frame["engage_date"], closes, frame["last_activity"]]
    ahead = sum(int((s > cap).sum()) for s in events[1:])
    candidates = [s[s <= cap].max() for s in events]
    candidates = [c for c in candidates if pd.notna(c)]
    return (max(candidates).date() if candidates else None), ahead


def set_aside_beyond(parsed: Parsed, raw: RawTable, limits: Limits) -> None:
    """Once the as-of date is decided: set aside deals whose close or last activity lies more
    than `limits.years_ahead` years after it (no real pipeline plans that far)."""
    if parsed.table != "deals" or parsed.as_of is None or parsed.frame.empty:
        return
    horizon = limits.ahead(parsed.as_of)
    frame = parsed.frame
    reasons: dict[int, list[str]] = {}
    for c in ("close_date", "last_activity"):
        for i in np.flatnonzero((frame[c] > pd.Timestamp(horizon)).to_numpy()):
            reasons.setdefault(int(i), []).append(
                f"{c} {frame[c].iloc[i].date()} is more than {limits.years_ahead} years after "
                f"the as-of date {parsed.as_of}"
            )
    if not reasons:
        return
    record = {line: k for k, line in enumerate(raw.line)}
    for i, why in reasons.items():
        line = int(frame["line"].iloc[i])
        parsed.rejected.append(Rejected(line, "; ".join(why), raw.raw(record[line])))
    parsed.rejected.sort(key=lambda r: r.line)
    parsed.frame = frame.drop(index=list(reasons)).reset_index(drop=True)


__all__ = [
    "Parsed",
    "parse_table",
    "set_aside_beyond",
    "resolve_names",
    "AsOfError",
    "OPEN",
    "WON",
    "LOST",
]
