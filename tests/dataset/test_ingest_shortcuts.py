"""The ingest's shortcuts for big exports give what the plain definitions give, on random input
full of the cases they skip: white space of every kind and NULs in cells, look-alike letters in
ids, numbers, strings and dates of mixed types in a deal's state."""

from __future__ import annotations

import gc
import random
from datetime import date

import numpy as np
import pandas as pd
import pytest

from dataset import database, deal_history, import_log
from dataset.csvfile import (
    CsvFileError,
    RawTable,
    _no_cycle_collection,
    _read_records,
    read_table,
)
from dataset.history import _same_text, _text
from dataset.ids import clean, clean_ids, skeleton, twins
from dataset.validate import _column
from dataset.values import _to_datetime, blank, date_formats_for, parse_dates

CELL_PIECES = ["a", "B", " ", "\u00a0", "\u2003", "\u2028", "\x00", "\n", "\t", "\x1c", "é", ""]


def _cell_text(v: str) -> str | None:
    """`_column`'s definition, one value at a time."""
    return v.strip() or None


def test_a_column_is_stripped_and_blanked_exactly_as_cell_by_cell():
    rng = random.Random(1)
    for _ in range(20_000):
        cells = [
            "".join(rng.choice(CELL_PIECES) for _ in range(rng.randint(0, 4)))
            for _ in range(rng.randint(0, 6))
        ]
        raw = RawTable.of_rows(["x"], [[c] for c in cells], list(range(1, len(cells) + 1)))
        column = _column(raw.hand_over(), {"x": 0}, "x", len(cells))
        assert column.to_list() == [_cell_text(c) for c in cells], cells


def _twins_by_hand(ids: list, known: list[str]) -> dict[int, tuple[str, bool]]:
    """Every id against every other, as `twins` says it: a new id whose skeleton another id
    shares, with that other id (imported ones first, then in sort order)."""
    pool = {t for t in ids if isinstance(t, str)} | set(known)
    out = {}
    for i, text in enumerate(ids):
        if not isinstance(text, str) or text in known:
            continue
        others = [o for o in pool if o != text and skeleton(o) == skeleton(text)]
        if others:
            first = min(others, key=lambda o: (o not in known, o))
            out[i] = (first, first in known)
    return out


def test_twins_are_those_found_by_comparing_every_pair():
    rng = random.Random(2)
    letters = "abAB12аАеЕΑΒкК"  # Latin, Cyrillic and Greek look-alikes
    found = 0
    for _ in range(800):
        pool = ["".join(rng.choice(letters) for _ in range(rng.randint(1, 3))) for _ in range(8)]
        ids = [rng.choice([*pool, None]) for _ in range(rng.randint(0, 10))]
        known = rng.sample(pool, rng.randint(0, 4))
        series = pd.Series(ids, dtype=rng.choice(["object", "str"]))
        expected = _twins_by_hand(ids, known)
        assert twins(series, known) == expected, (ids, known)
        found += bool(expected)
    assert found > 80  # the cases were not all twin-free


def test_a_big_column_of_distinct_ids_has_no_twins_but_the_one_planted():
    ids = pd.Series([f"D{i:07d}" for i in range(50_000)], dtype="str")
    assert twins(ids, [f"D{i:07d}" for i in range(40_000, 60_000)]) == {}
    ids[123] = "d0049999"  # the lower case of an id imported before
    assert twins(ids, ["D0049999"]) == {123: ("D0049999", True)}


STATE_VALUES = {
    "float": [0.0, -0.0, 1.0, 1.0000001, 1.00000049, np.nan, np.inf, 2.5],
    "int": [0, 1, 5],
    "str": ["a", "b", "", "A", None, np.nan, "5"],
    "mixed": ["5", 5, 5.0, True, None, "a"],
    "date": [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-01 13:00"), pd.NaT],
}
DTYPES = {
    "float": ["float64"],
    "int": ["int64", "float64", "object"],
    "str": ["object", "str"],
    "mixed": ["object"],
    "date": ["datetime64[ns]", "datetime64[us]", "object"],
}


def test_the_same_state_is_the_same_text_whatever_the_types():
    rng = random.Random(3)
    for _ in range(1500):
        kind_a = rng.choice(list(STATE_VALUES))
        kind_b = rng.choice([kind_a, kind_a, rng.choice(list(STATE_VALUES))])
        size = rng.randint(0, 6)
        a, b = (
            pd.Series(
                [rng.choice(STATE_VALUES[k]) for _ in range(size)], dtype=rng.choice(DTYPES[k])
            )
            for k in (kind_a, kind_b)
        )
        b.index = rng.sample(range(100, 200), size)  # compared by position, whatever the index
        expected = _text(a).to_numpy() == _text(b).to_numpy()
        assert np.array_equal(_same_text(a, b), np.asarray(expected, dtype=bool)), (a, b)


def test_columns_blank_in_the_whole_export_are_stored_null(tmp_path):
    db = database.connect(tmp_path / "d.db")
    day = date(2024, 2, 1)
    with db.atomic():
        import_id = import_log.add_import(
            db, file_name="a.csv", path="a.csv", sha256="x", table_name="deals", preset="maventech",
            encoding="utf-8", rows_read=2, rows_accepted=2, rows_set_aside=0, as_of=day, notes="",
        )  # fmt: skip
        snapshot = pd.DataFrame(
            {
                "deal_id": ["D1", "D2"],
                "stage": ["Engaging", "Won"],
                "status": ["open", "won"],
                "value": [100.0, np.nan],
                "close_date": pd.to_datetime([None, "2024-02-01"]),
                "last_activity": pd.to_datetime(["2024-01-30", None]),
            }
        )
        for c in deal_history.STATE:
            if c not in snapshot:
                snapshot[c] = None
        # D2 changed; D1 did not (its state is known from before): only D2's goes to history
        changed, redundant = snapshot.iloc[[1]], pd.DataFrame(columns=["deal_id", "as_of"])
        deal_history.write_deal_snapshot(db, import_id, day, snapshot, changed, redundant)
    assert db.execute(
        "SELECT deal_id, stage, value, close_date, owner FROM deal_history"
    ).fetchall() == [("D2", "Won", None, "2024-02-01", None)]
    assert db.execute(
        "SELECT deal_id, value, close_date, last_activity, owner, first_seen FROM deals ORDER BY 1"
    ).fetchall() == [
        ("D1", 100.0, None, "2024-01-30", None, "2024-02-01"),
        ("D2", None, "2024-02-01", None, None, "2024-02-01"),
    ]
    assert db.execute("SELECT deal_id, activity_date FROM deal_activity").fetchall() == [
        ("D1", "2024-01-30")
    ]


CSV_PIECES = ["a", "b", "1", ",", ",", '"', '""', "\n", "\r\n", "\n\n", " ", "\x00", "é"]
CSV_PIECES += ["Copyright 2024", "Generated By x"]


def _read(table: RawTable) -> tuple:
    rejected = [(r.line, r.reason, r.raw, r.fields) for r in table.rejected]
    footer = [(r.line, r.reason, r.raw) for r in table.footer]
    raws = [table.raw(i) for i in range(len(table.line))]
    return table.header, table.rows, list(table.line), rejected, footer, sorted(table.blank), raws


def test_plain_rows_read_in_bulk_land_as_the_careful_reader_puts_them():
    """The careful path (taken for every record of a file with undecodable bytes) against the
    bulk one, on files of quotes, NULs, blank lines, short and long rows and footers."""
    rng = random.Random(4)
    for _ in range(3000):
        head = rng.choice(["id,name,v\n", "id\n", "a,b\n"])
        text = head + "".join(rng.choice(CSV_PIECES) for _ in range(rng.randint(0, 25)))
        try:
            careful = _read(_read_records(text.encode("utf-8"), "utf-8", has_bad_bytes=True))
        except CsvFileError as exc:
            careful = str(exc)
        try:
            bulk = _read(read_table(text.encode("utf-8")))
        except CsvFileError as exc:
            bulk = str(exc)
        assert bulk == careful, text


def test_ids_are_cleaned_as_one_by_one_whether_or_not_the_column_is_plain():
    rng = random.Random(5)
    pieces = ["A1", "b", " ", "\u200b", "\ufeff", "Ａ", "\u2003", "\x1c", "\x00", ""]
    for _ in range(2000):
        ids = [
            rng.choice([None, "".join(rng.choice(pieces) for _ in range(rng.randint(1, 3)))])
            for _ in range(rng.randint(0, 6))
        ]
        if rng.random() < 0.5:  # a plain column, the shortcut's case
            ids = [f"D{i}" if v is not None else None for i, v in enumerate(ids)]
        values = pd.Series(ids, dtype="object")
        cleaned, changed = clean_ids(values)
        expected = [clean(v) if v is not None else None for v in ids]
        assert [None if pd.isna(v) else v for v in cleaned] == expected, ids  # None or NaN
        assert changed == {
            v: c or "" for v, c in zip(ids, expected, strict=True) if v is not None and c != v
        }


def test_changed_rows_must_be_rows_of_the_snapshot(tmp_path):
    db = database.connect(tmp_path / "d.db")
    snapshot = pd.DataFrame({c: ["x"] for c in ["deal_id", *deal_history.STATE, "last_activity"]})
    moved = snapshot.set_axis([7])  # a copy under another index: which rows it means is unknown
    with pytest.raises(ValueError, match="rows of `snapshot`"):
        deal_history.write_deal_snapshot(db, 1, date(2024, 2, 1), snapshot, moved, moved.iloc[:0])


def test_reads_that_overlap_share_one_pause_of_the_collector():
    """Two reads on two threads: the first to finish must not restart the collector under the
    second, and the second must restart it (each saw it paused when it began)."""
    assert gc.isenabled()
    first, second = _no_cycle_collection(), _no_cycle_collection()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()
    gc.disable()  # paused by someone else before a read: left paused after it
    try:
        with _no_cycle_collection():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def _dates_by_definition(values: pd.Series, prefer: str) -> tuple[pd.Series, pd.Series, str | None]:
    """`parse_dates` as it was written before it parsed each distinct text once: every cell
    through the formats in turn."""
    is_blank = blank(values)
    formats = date_formats_for(values, prefer)
    parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us]")
    for fmt in formats:
        todo = parsed.isna() & ~is_blank
        if not todo.any():
            break
        parsed.loc[todo] = _to_datetime(values[todo], fmt).astype("datetime64[us]")
    parsed = parsed.dt.normalize()
    return parsed, parsed.isna() & ~is_blank, (formats[0] if formats else None)


DATE_TEXTS = [
    "2024-03-05", "2024-03-05T10:00:00+02:00", "2024-03-05T23:30:00-05:00", "2024-02-30",
    "03/05/2024", "5/3/2024 9:41 AM", "05.03.2024", "5 Mar 2024", "Mar 5, 2024", "2024/03/05",
    "13/25/2024", "x", "", None, float("nan"), "2023-12-31 23:59", "1/2/24",
]  # fmt: skip


def test_dates_parsed_once_per_distinct_text_read_as_cell_by_cell():
    rng = random.Random(6)
    for _ in range(150):
        cells = [rng.choice(DATE_TEXTS) for _ in range(rng.randint(0, 12))]
        values = pd.Series(cells, dtype=rng.choice(["object", "str"]))
        prefer = rng.choice(["iso", "mdy", "dmy"])
        dates, bad, fmt = parse_dates(values, prefer)
        want, want_bad, want_fmt = _dates_by_definition(values, prefer)
        pd.testing.assert_series_equal(dates, want, check_names=False)
        assert bad.to_list() == want_bad.to_list() and fmt == want_fmt, cells
