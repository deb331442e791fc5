"""Which deals of a new export differ from what we knew before: the pure half of deal history.

CRM exports are snapshots. We keep a deal's state only when it changes, so comparing each incoming
row with the deal's previous recorded state is all it takes; re-importing identical data adds
nothing. A back-filled (older) export can make a later row redundant: `redundant_next` finds those.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.types import infer_dtype, is_datetime64_any_dtype, is_float_dtype

from dataset.deal_history import STATE


def _text(s: pd.Series) -> pd.Series:
    """Comparable text: ISO dates, numbers without float noise, '' for missing."""
    if pd.api.types.is_datetime64_any_dtype(s):
        return s.dt.strftime("%Y-%m-%d").fillna("")
    if pd.api.types.is_numeric_dtype(s):
        return s.round(6).astype("str").where(s.notna(), "")
    return s.astype("object").where(s.notna(), "").astype("str")


def same_state(a: pd.DataFrame, b: pd.DataFrame) -> np.ndarray:
    """Row-wise: do a and b (aligned, same length) hold the same tracked state?"""
    out = np.ones(len(a), dtype=bool)
    for c in STATE:
        left, right = a[c], b[c]
        if c == "value":
            left, right = pd.to_numeric(left), pd.to_numeric(right)
        elif c in ("engage_date", "close_date"):
            left, right = _dates(left), _dates(right)
        out &= _same_text(left, right)
    return out


def _same_text(left: pd.Series, right: pd.Series) -> np.ndarray:
    """`_text(left) == _text(right)`, without writing the text where both sides' types say what
    it would show: the same day, the same number rounded to 6 places (and sign: "-0.0" is not
    "0.0"), the same string. An export re-read every morning is mostly unchanged rows, and
    building their text was most of an import of many exports."""
    # a column the CRM does not fill reads back as all missing (object dtype): its text is ""
    # everywhere, so the other side's text must be "" too (a number or a day never is)
    if right.isna().all():
        return _blank_text(left)
    if left.isna().all():
        return _blank_text(right)
    if is_datetime64_any_dtype(left) and is_datetime64_any_dtype(right):
        days_l = left.dt.floor("D").reset_index(drop=True)  # aligned by position, as `_text`'s
        days_r = right.dt.floor("D").reset_index(drop=True)
        return ((days_l == days_r) | (days_l.isna() & days_r.isna())).to_numpy(dtype=bool)
    if is_float_dtype(left) and is_float_dtype(right):
        x, y = left.round(6).to_numpy(), right.round(6).to_numpy()
        return ((x == y) & (np.signbit(x) == np.signbit(y))) | (np.isnan(x) & np.isnan(y))
    if _strings(left) and _strings(right):
        same = _same_strings(left, right)
        return same if same is not None else _filled(left) == _filled(right)
    return _text(left).to_numpy() == _text(right).to_numpy()


def _blank_text(s: pd.Series) -> np.ndarray:
    """`_text(s) == ""`: missing, or the empty string."""
    if is_datetime64_any_dtype(s) or pd.api.types.is_numeric_dtype(s):
        return s.isna().to_numpy(dtype=bool)
    return (_filled(s) if _strings(s) else _text(s).to_numpy()) == ""


def _same_strings(left: pd.Series, right: pd.Series) -> np.ndarray | None:
    """`_filled(left) == _filled(right)` compared by Arrow, a quarter of the time of Python
    objects at an export's size; None where a value will not go into Arrow (the caller then
    compares the objects)."""
    try:
        a, b = _arrow_text(left), _arrow_text(right)
    except (pa.ArrowException, UnicodeError, TypeError, ValueError):
        return None
    return pc.equal(a, b).to_numpy(zero_copy_only=False)


def _arrow_text(s: pd.Series) -> pa.Array:
    """The column as one Arrow string array (not copied where pandas keeps it in Arrow), ""
    for missing."""
    values = s.array if isinstance(s.dtype, pd.StringDtype) else s.to_numpy()
    arr = pa.array(values, type=pa.large_string(), from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return pc.fill_null(arr, "")


def _strings(s: pd.Series) -> bool:
    """Only strings and missing values (which `_text` shows as themselves and as "")."""
    return infer_dtype(s, skipna=True) in ("string", "empty")


def _filled(s: pd.Series) -> np.ndarray:
    return s.astype("object").where(s.notna(), "").to_numpy(dtype=object)


def _dates(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s, errors="coerce") if not pd.api.types.is_datetime64_any_dtype(s) else s


def changes(snapshot: pd.DataFrame, previous: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    """Rows of `snapshot` whose state differs from `previous` (deal_id + STATE, one row a deal),
    and the counts of new and changed deals. Only the deals known before are compared, each
    against its own previous row; where every row changed, `snapshot` itself is returned (a big
    first import is not copied)."""
    at = pd.Index(previous["deal_id"]).get_indexer(snapshot["deal_id"])
    known = at >= 0
    same = np.zeros(len(snapshot), dtype=bool)
    if known.any():
        same[known] = same_state(
            snapshot.loc[known, list(STATE)].reset_index(drop=True),
            previous[list(STATE)].iloc[at[known]].reset_index(drop=True),
        )
    changed = snapshot[~same] if same.any() else snapshot
    return changed, int((~known).sum()), int((known & ~same).sum())


def redundant_next(snapshot: pd.DataFrame, following: pd.DataFrame) -> pd.DataFrame:
    """The later rows (deal_id, as_of) that now repeat the back-filled state and can go."""
    if following.empty:
        return following[["deal_id", "as_of"]]
    merged = following.merge(snapshot[["deal_id", *STATE]], on="deal_id", suffixes=("", "_new"))
    new = merged[[f"{c}_new" for c in STATE]].set_axis(list(STATE), axis=1)
    same = same_state(merged[list(STATE)], new)
    return merged.loc[same, ["deal_id", "as_of"]]
