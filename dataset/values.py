"""Vectorised parsing of the value formats CRM exports use: dates in many shapes, money with symbols.

Pure: Series of stripped text (None where blank) in, (parsed Series, bad-mask) out. A blank value
parses to missing; a value that is present but cannot be read is flagged bad, never silently
turned into missing.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd

# Tried in this order; the format that reads the most sampled values wins, earlier wins ties.
DATE_FORMATS: dict[str, tuple[str, ...]] = {
    "iso": ("ISO8601",),
    "mdy": ("%m/%d/%Y", "%m/%d/%Y %H:%M", "%m/%d/%Y %I:%M %p", "%m/%d/%Y %H:%M:%S", "%m/%d/%y"),
    "dmy": ("%d/%m/%Y", "%d/%m/%Y %H:%M", "%d.%m.%Y", "%d-%m-%Y", "%d.%m.%Y %H:%M", "%d/%m/%y"),
    "text": ("%d %b %Y", "%b %d, %Y", "%d-%b-%Y", "%Y/%m/%d"),
}


def blank(s: pd.Series) -> pd.Series:
    """True where the cell is missing or empty. Callers pass stripped text (see validate)."""
    return s.isna() | (s == "")


def blank_or_spaced(values: list[str]) -> bool:
    """Is any value empty, or has it white space at either end? A big export's columns have
    none, and a few searches in C over the values joined by NULs say so, where looking at each
    value in Python took seconds. (A NUL inside a value can only make the answer a false yes,
    never hide a blank or spaced value.)"""
    joined = "\x00" + "\x00".join(values) + "\x00"
    return "\x00\x00" in joined or any(_NUL_SPACE.search(j) for j in (joined, joined[::-1]))


_NUL_SPACE = re.compile(r"\x00\s")  # a value starting with white space (ending, when reversed)


def _to_datetime(values: pd.Series, fmt: str) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = pd.to_datetime(values, format=fmt, errors="coerce")
        except (ValueError, TypeError):  # mixed time-zone offsets
            out = pd.to_datetime(values, format=fmt, errors="coerce", utc=True)
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_localize(None)
    return out


def date_formats_for(values: pd.Series, prefer: str = "iso") -> list[str]:
    """The formats to read a date column with: the one that reads the most of a sample of its
    distinct values first, then the others of the same day/month order (a column may mix plain
    dates with date-times)."""
    return _choose_formats(values, prefer)[0]


def _choose_formats(values: pd.Series, prefer: str) -> tuple[list[str], pd.Series | None]:
    """`date_formats_for`'s formats, and what the first of them read of the sample (None when
    no format reads any of it)."""
    sample = values[~blank(values)].drop_duplicates()
    if sample.empty:
        return [], None
    sample = sample.iloc[:500]
    order = [prefer] + [k for k in DATE_FORMATS if k != prefer]
    best, best_family, best_count, best_read = None, prefer, 0, None
    for family in order:
        for fmt in DATE_FORMATS[family]:
            read = _to_datetime(sample, fmt)
            count = int(read.notna().sum())
            if count > best_count:
                best, best_family, best_count, best_read = fmt, family, count, read
            if count == len(sample):
                break
        if best_count == len(sample):
            break
    if best is None:
        return [], None
    return [best] + [f for f in DATE_FORMATS[best_family] if f != best], best_read


def parse_dates(values: pd.Series, prefer: str = "iso") -> tuple[pd.Series, pd.Series, str | None]:
    """Parse a column of dates (time of day dropped). Returns (dates, bad mask, main format).
    Each distinct text is parsed once (a column of a million dates has a few hundred days):
    the formats are chosen on the distinct texts in order of appearance, as on the column; what
    is blank or bad is worked out on them too, and spread to the rows by their codes (an import
    of many exports parses a few thousand short columns, where each pass over a column counts).
    The bad mask is numpy bool whatever the column's dtype."""
    codes, distinct = values.factorize()  # missing: code -1
    parsed, bad, fmt = _parse_distinct(pd.Series(distinct), prefer)
    days = np.append(parsed, np.datetime64("NaT", "us"))
    return (
        pd.Series(days[codes], index=values.index),
        pd.Series(np.append(bad, False)[codes], index=values.index),
        fmt,
    )


def _parse_distinct(values: pd.Series, prefer: str) -> tuple[np.ndarray, np.ndarray, str | None]:
    """(days, bad mask, main format) of distinct texts."""
    todo = ~blank(values).to_numpy(dtype=bool)
    formats, first = _choose_formats(values, prefer)
    parsed = np.full(len(values), np.datetime64("NaT", "us"))
    for i, fmt in enumerate(formats):
        if not todo.any():
            break
        # the first format has read the sample already; where that is every text, it is done
        if i == 0 and first is not None and len(first) == todo.sum():
            read = first.to_numpy().astype("datetime64[us]")
        else:
            read = _to_datetime(values[todo], fmt).to_numpy().astype("datetime64[us]")
        parsed[todo] = read
        todo[todo] = np.isnat(read)
    return (
        parsed.astype("datetime64[D]").astype("datetime64[us]"),
        todo,
        (formats[0] if formats else None),
    )


_CODES = "USD|EUR|GBP|JPY|CAD|AUD|NZD|CHF|SEK|NOK|DKK|PLN|CZK|INR|CNY|HKD|SGD|BRL|MXN|ZAR"
_CURRENCY = rf"^(?:{_CODES})\s*|\s*(?:{_CODES})$|[$€£¥₹\s\u00a0\u202f']"
_MINUS = "\\-\u2212"  # the hyphen-minus and the minus sign


def parse_amounts(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse money: `$1,234.50`, `1 234,50 €`, `EUR 1.234,50`, `(120.00)` (negative), `-5`.

    A minus sign anywhere the number allows one (`-$5`, `$-5`, `USD -5`, `5-`, the Unicode
    minus `−5`) or accounting brackets make it negative: a sign is never dropped. `inf` and
    `1e309` come back as infinity for the caller to refuse.

    Returns (float Series with NaN for blanks, bad mask).
    """
    is_blank = blank(values)
    out = pd.to_numeric(values, errors="coerce").astype("float64")
    todo = out.isna() & ~is_blank
    if todo.any():
        s = values[todo].astype("str").str.strip()
        brackets = s.str.match(r"^\(.*\)$")
        s = s.where(~brackets, s.str.slice(1, -1)).str.replace(_CURRENCY, "", regex=True)
        minus = s.str.match(f"^[{_MINUS}]|.*[{_MINUS}]$")
        s = s.str.replace(f"^[{_MINUS}]|[{_MINUS}]$", "", regex=True)
        s = s.str.replace(_CURRENCY, "", regex=True)  # `-$5`: the symbol after the sign
        us = s.str.match(r"^\d{1,3}(,\d{3})+(\.\d+)?$")
        eu = s.str.match(r"^\d{1,3}(\.\d{3})+(,\d+)?$") | s.str.match(r"^\d+,\d{1,2}$")
        s = s.where(~us, s.str.replace(",", "", regex=False))
        s = s.where(~eu, s.str.replace(".", "", regex=False).str.replace(",", ".", regex=False))
        number = pd.to_numeric(s.where(s.str.match(r"^\d+(\.\d+)?$")), errors="coerce")
        out.loc[todo] = np.where(brackets | minus, -number, number)
    bad = out.isna() & ~is_blank
    return out, bad
