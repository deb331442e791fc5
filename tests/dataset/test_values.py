"""Money and date formats seen in CRM exports."""

from __future__ import annotations

import pandas as pd
import pytest

from dataset.values import parse_amounts, parse_dates


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1234", 1234.0),
        ("$1,234.50", 1234.5),
        ("USD 12,500.00", 12500.0),
        ("1.234,50 €", 1234.5),
        ("EUR 1.234.567,89", 1234567.89),
        ("£99", 99.0),
        ("(120.00)", -120.0),
        ("-5", -5.0),
        ("1 234", 1234.0),
        ("12,5", 12.5),
        ("$-5", -5.0),  # the sign after the symbol used to be dropped
        ("-$5", -5.0),
        ("USD -1,234.50", -1234.5),
        ("5-", -5.0),
        ("\u22125", -5.0),  # the Unicode minus sign
        ("1e309", float("inf")),  # for the caller to refuse, not silently finite
    ],
)
def test_amounts(text, value):
    parsed, bad = parse_amounts(pd.Series([text], dtype="object"))
    assert parsed.iloc[0] == pytest.approx(value) and not bad.iloc[0]


def test_amounts_bad_and_blank():
    parsed, bad = parse_amounts(pd.Series(["12abc", None, "1,2,3"], dtype="object"))
    assert bad.tolist() == [True, False, True]
    assert parsed.isna().all()


@pytest.mark.parametrize(
    ("values", "prefer", "expected"),
    [
        (["2017-03-01", "2017-12-31"], "iso", ["2017-03-01", "2017-12-31"]),
        (["3/4/2024", "12/31/2024"], "mdy", ["2024-03-04", "2024-12-31"]),
        (["3/4/2024", "3/4/2024 10:22 AM"], "mdy", ["2024-03-04", "2024-03-04"]),
        (["31/01/2017", "01/02/2017"], "mdy", ["2017-01-31", "2017-02-01"]),  # only d/m/y fits
        (["04.03.2024", "31.12.2024"], "iso", ["2024-03-04", "2024-12-31"]),
        (["2024-03-04 10:22", "2024-03-04T23:59:00Z"], "iso", ["2024-03-04", "2024-03-04"]),
        (["4 Mar 2024", "31 Dec 2024"], "iso", ["2024-03-04", "2024-12-31"]),
    ],
)
def test_dates(values, prefer, expected):
    parsed, bad, _ = parse_dates(pd.Series(values, dtype="object"), prefer)
    assert not bad.any()
    assert parsed.dt.strftime("%Y-%m-%d").tolist() == expected


def test_ambiguous_dates_follow_the_preset_order():
    s = pd.Series(["01/02/2017", "03/04/2017"], dtype="object")
    assert parse_dates(s, "mdy")[0].dt.month.tolist() == [1, 3]
    assert parse_dates(s, "dmy")[0].dt.month.tolist() == [2, 4]


def test_bad_date_is_flagged_not_blanked():
    parsed, bad, fmt = parse_dates(pd.Series(["2017-03-01", "2017-02-30", None], dtype="object"))
    assert bad.tolist() == [False, True, False] and fmt == "ISO8601"
