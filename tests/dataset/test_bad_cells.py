"""Single bad cells that used to crash an import or poison every later run (issue "Bad input
never stops the morning"): each is set aside with its reason, through the real import into a
real SQLite file, and the balance read = accepted + set aside holds."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from bot.cli import main
from dataset import deal_history
from dataset.ingest import FileResult, IngestError, ingest_files

MAVENTECH = (
    "opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value"
)
GOOD = "G1,Ann Lee,GTX Pro,Acme,Won,2017-01-05,2017-02-01,100"

# (header, a good open row, a row with the stage cell replaced by {stage}) per built-in preset
PRESETS = {
    "maventech": (
        MAVENTECH,
        "G1,Ann Lee,GTX Pro,Acme,Engaging,2017-01-05,,",
        "B1,Ann Lee,GTX Pro,Acme,{stage},2017-01-05,,",
    ),
    "salesforce": (
        "Opportunity ID,Opportunity Owner,Stage,Created Date,Close Date,Amount",
        "006G1,Ann Lee,Prospecting,1/5/2017,3/1/2017,100",
        "006B1,Ann Lee,{stage},1/5/2017,3/1/2017,100",
    ),
    "hubspot": (
        "Record ID,Deal owner,Deal Stage,Create Date,Close Date,Amount",
        "101,Ann Lee,Appointment Scheduled,2017-01-05,2017-03-01,100",
        "102,Ann Lee,{stage},2017-01-05,2017-03-01,100",
    ),
}


def write(folder: Path, header: str, rows: list[str], name: str = "export.csv") -> Path:
    path = folder / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def set_aside(db, result: FileResult) -> dict[int, str]:
    """The stored reasons by line, after checking the balance both in the result and in the
    import log."""
    assert result.rows_read == result.rows_accepted + result.rows_set_aside
    logged = db.execute(
        "SELECT rows_read, rows_accepted, rows_set_aside FROM imports WHERE id = ?",
        [result.import_id],
    ).fetchone()
    assert logged == (result.rows_read, result.rows_accepted, result.rows_set_aside)
    stored = {
        r["line"]: r["reason"]
        for r in db.query(
            "SELECT line, reason FROM quarantine WHERE import_id = ?", [result.import_id]
        )  # fmt: skip
    }
    assert len(stored) == result.rows_set_aside
    return stored


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("stage", ["", "   ", "\u00a0", "\u00a0 \u2003"])
def test_blank_stage_is_set_aside_in_every_preset(db, tmp_path, preset, stage):
    header, good, bad = PRESETS[preset]
    path = write(tmp_path, header, [good, bad.format(stage=stage)])
    (result,) = ingest_files(db, [path])
    assert result.preset == preset
    assert (result.rows_read, result.rows_accepted, result.rows_set_aside) == (2, 1, 1)
    reason = set_aside(db, result)[3]
    assert reason.startswith("blank stage (known: ")
    assert db.execute("SELECT COUNT(*) FROM deal_history").fetchone()[0] == 1


TODAY = date(2024, 6, 1)  # the day of the import, given so that the reasons do not drift
DATE_ROWS = [
    "G1,Ann Lee,GTX Pro,Acme,Won,2017-01-05,2017-02-01,100",  # 2 ok
    "F1,Ann Lee,GTX Pro,Acme,Won,2017-01-05,9999-12-31,100",  # 3 pandas cannot hold it
    "F2,Ann Lee,GTX Pro,Acme,Won,2017-01-05,2262-04-12,100",  # 4 a day past pandas' range
    "F3,Ann Lee,GTX Pro,Acme,Engaging,2017-01-05,2262-04-12,",  # 5 an expected close
    "F4,Ann Lee,GTX Pro,Acme,Won,2017-01-05,2030-01-01,100",  # 6 13 years after the as-of
    "F5,Ann Lee,GTX Pro,Acme,Engaging,2024-06-03,,",  # 7 created after the import day
    "Y1,Ann Lee,GTX Pro,Acme,Won,2017-01-05,0000-01-01,100",  # 8 year 0
    "Y2,Ann Lee,GTX Pro,Acme,Lost,2017-01-05,-0044-03-15,0",  # 9 a negative year
    "E1,Ann Lee,GTX Pro,Acme,Engaging,0000-01-01,,",  # 10 engaged in year 0
    "E2,Ann Lee,GTX Pro,Acme,Engaging,-0001-06-01,,",  # 11 engaged in year -1
    "A1,Ann Lee,GTX Pro,Acme,Won,2017-01-05,2025-01-31,100",  # 12 ok: booked ahead
    "G2,Ann Lee,GTX Pro,Acme,Engaging,2017-02-10,,",  # 13 ok: the latest real event
]
DATE_REASONS = {
    3: "close_date '9999-12-31' is more than 10 years ahead (after 2034-06-02)",
    4: "close_date '2262-04-12' is more than 10 years ahead (after 2034-06-02)",
    5: "close_date '2262-04-12' is more than 10 years ahead (after 2034-06-02)",
    6: "close_date 2030-01-01 is more than 10 years after the as-of date 2017-02-10",
    7: "engage_date '2024-06-03' is in the future (after 2024-06-02)",
    8: "close_date '0000-01-01' is before 1990-01-01",
    9: "close_date '-0044-03-15' is before 1990-01-01",
    10: "engage_date '0000-01-01' is before 1990-01-01",
    11: "engage_date '-0001-06-01' is before 1990-01-01",
}


def test_implausible_dates_are_set_aside_and_never_become_the_as_of_date(db, tmp_path):
    path = write(tmp_path, MAVENTECH, DATE_ROWS)
    (result,) = ingest_files(db, [path], today=TODAY)
    assert (result.rows_read, result.rows_accepted, result.rows_set_aside) == (12, 3, 9)
    assert set_aside(db, result) == DATE_REASONS
    assert {r[0] for r in db.execute("SELECT deal_id FROM deals")} == {"G1", "A1", "G2"}
    # the win booked ahead is kept but does not carry the export's date with it
    assert result.as_of == "2017-02-10" and deal_history.latest_as_of(db) == "2017-02-10"
    assert any("do not count towards the export's as-of date" in n for n in result.notes)


def test_a_far_close_date_does_not_outweigh_the_date_the_file_states(db, tmp_path):
    rows = [GOOD, "F1,Ann Lee,GTX Pro,Acme,Won,2017-01-05,2024-06-02,100"]
    path = write(tmp_path, MAVENTECH, rows, name="pipeline_2017-02-03.csv")
    (result,) = ingest_files(db, [path], today=TODAY)
    assert result.rows_set_aside == 0 and result.as_of == "2017-02-03"


def test_an_as_of_date_after_today_is_refused(db, tmp_path, capsys):
    path = write(tmp_path, MAVENTECH, [GOOD])
    with pytest.raises(IngestError, match="the as-of date 9999-12-31 is not between 1990-01-01"):
        ingest_files(db, [path], as_of=date(9999, 12, 31))
    assert db["imports"].count == 0
    argv = ["ingest", str(path), "--db", str(tmp_path / "x.db"), "--as-of", "2262-04-12"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "revbot ingest: error: the as-of date 2262-04-12 is not between" in err
    assert "Traceback" not in err


CEILING = "is above the ceiling of 1,000,000,000,000 (if it is real, raise [exports] max_amount"
AMOUNTS = {  # line: (close_value cell, reason or None if accepted)
    2: ("100", None),
    3: ("inf", "value 'inf' is not a finite number"),
    4: ("Infinity", "value 'Infinity' is not a finite number"),
    5: ("1e309", "value '1e309' is not a finite number"),
    6: ("-inf", "value '-inf' is not a finite number"),
    7: ("$-5", "negative value -5 (written '$-5')"),
    8: ("-$5", "negative value -5 (written '-$5')"),
    9: ("(5)", "negative value -5 (written '(5)')"),
    10: ("USD -5", "negative value -5 (written 'USD -5')"),
    11: ("5-", "negative value -5 (written '5-')"),
    12: ("1e308", f"value '1e308' {CEILING}"),
    13: ('"$1,000,000,000,001"', f"value '$1,000,000,000,001' {CEILING}"),
    14: ('"$999,999,999,999"', None),
}


def test_infinite_negative_and_absurd_amounts_are_set_aside(db, tmp_path):
    rows = [f"V{n},Ann Lee,GTX Pro,Acme,Won,2017-01-05,2017-02-01,{v}" for n, (v, _) in AMOUNTS.items()]  # fmt: skip
    (result,) = ingest_files(db, [write(tmp_path, MAVENTECH, rows)], today=TODAY)
    expected = {line: why for line, (_, why) in AMOUNTS.items() if why}
    assert (result.rows_read, result.rows_set_aside) == (len(AMOUNTS), len(expected))
    stored = set_aside(db, result)
    assert {line: stored[line][: len(why)] for line, why in expected.items()} == expected
    values = [r[0] for r in db.execute("SELECT value FROM deals ORDER BY value")]
    assert values == [100.0, 999_999_999_999.0]


def test_product_prices_keep_their_sign(db, tmp_path):
    rows = ["GTX Pro,GTX,4821", "GTX Neg,GTX,$-5", "GTX Inf,GTX,inf", "GTX Big,GTX,1e308"]
    path = write(tmp_path, "product,series,sales_price", rows, name="products.csv")
    (result,) = ingest_files(db, [path], today=TODAY)
    assert set_aside(db, result) == {
        3: "negative sales_price -5 (written '$-5')",
        4: "sales_price 'inf' is not a finite number",
        5: f"sales_price '1e308' {CEILING} in revbot.toml)",
    }
    assert list(db.execute("SELECT product, sales_price FROM products")) == [("GTX Pro", 4821.0)]


def test_the_ceiling_comes_from_revbot_toml(tmp_path, capsys):
    config = tmp_path / "revbot.toml"
    config.write_text('[exports]\nfolder = "exports"\nmax_amount = 5_000\n')
    rows = [GOOD, "B1,Ann Lee,GTX Pro,Acme,Won,2017-01-05,2017-02-01,6000"]
    argv = ["ingest", str(write(tmp_path, MAVENTECH, rows)), "--db", str(tmp_path / "x.db")]
    assert main([*argv, "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "export.csv: deals via preset maventech: 2 read = 1 accepted + 1 set aside" in out
    assert "set aside line 3: value '6000' is above the ceiling of 5,000 (if it is real" in out
    config.write_text("[exports]\nmax_amount = -1\n")
    assert main([*argv, "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "revbot ingest: error: [exports] max_amount: -1 is not a positive number" in err


def deal(deal_id: str) -> str:
    return f"{deal_id},Ann Lee,GTX Pro,Acme,Engaging,2017-01-05,,"


ID_ROWS = {  # line: (deal id as written, reason or None if accepted)
    2: ("D1", None),
    3: ("D1\u200b", "duplicate of line 2 (deal_id 'D1', identical)"),  # zero-width space
    4: ("\ufeffN1", None),  # a byte-order mark
    5: ("N\u202e2", None),  # a right-to-left override
    6: ("\u2003N3\u2003", None),  # em spaces
    7: ("d1", "deal_id 'd1' differs only in case from 'D1' (already imported)"),
    8: ("x1", "deal_id 'x1' differs only in case from 'X1' (already imported)"),
    9: ("\u04201", "deal_id '\u04201' looks like 'P1' (line 10): Greek or Cyrillic letters"),
    10: ("P1", "deal_id 'P1' looks like '\u04201' (line 9): Greek or Cyrillic letters"),
    11: ("\u0410cme7", "deal_id '\u0410cme7' mixes Cyrillic and Latin letters"),
    12: ("Q7", "deal_id 'Q7' differs only in case from 'q7' (line 13)"),
    13: ("q7", "deal_id 'q7' differs only in case from 'Q7' (line 12)"),
    14: (
        "006000000000aBc",
        "deal_id '006000000000aBc' differs only in case from '006000000000ABC' (line 15)",
    ),  # fmt: skip
    15: ("006000000000ABC", None),  # the reason is the mirror of line 14's
    16: ("\u200b", "missing deal_id"),
    17: ("\uff26\uff37\uff11", None),  # full-width FW1
}


def test_look_alike_ids_are_cleaned_or_set_aside(db, tmp_path):
    first = write(tmp_path, MAVENTECH, [deal("D1"), deal("X1")], name="first.csv")
    ingest_files(db, [first], today=TODAY)
    path = write(tmp_path, MAVENTECH, [deal(text) for text, _ in ID_ROWS.values()])
    (result,) = ingest_files(db, [path], today=TODAY)
    stored = set_aside(db, result)
    expected = {line: why for line, (_, why) in ID_ROWS.items() if why}
    assert {line: stored[line] for line in expected} == expected
    assert set(stored) == {*expected, 15}
    assert result.rows_read == len(ID_ROWS) and result.rows_accepted == 5
    ids = [r[0] for r in db.execute("SELECT deal_id FROM deals")]
    assert sorted(ids) == ["D1", "FW1", "N1", "N2", "N3", "X1"]
    assert len({i.casefold() for i in ids}) == len(ids)  # /deal's any-case lookup is unambiguous
    assert any("deal id(s) cleaned of invisible characters" in n for n in result.notes)


SALESFORCE_HEADER = (
    '"Opportunity ID","Opportunity Owner","Stage","Amount","Close Date","Created Date"'
)


def test_salesforce_report_ids_that_differ_by_case_are_two_deals(db, tmp_path):
    """A Salesforce report shows 15-character ids, which are case-sensitive: `...0Ab` and `...0AB`
    are two opportunities. They are stored in Salesforce's 18-character case-safe form (as its
    API gives them), so both are kept and no two ids differ only by case."""
    rows = [
        f'"{i}","Jane Smith","Qualification","1,000","3/15/2024","1/2/2024"'
        for i in ("0065g00000AbCdE", "0065g00000abcde", "001A0000006Vm9r", "0065g00000AbCdEAAV")
    ]
    path = tmp_path / "opportunities_2024-03-05.csv"
    path.write_text("\n".join([SALESFORCE_HEADER, *rows]) + "\n", encoding="utf-8")
    (result,) = ingest_files(db, [path], today=TODAY)
    stored = set_aside(db, result)
    # the 18-character copy of the first id is the same opportunity: a duplicate, said so
    assert list(stored) == [5] and "duplicate of line 2" in stored[5]
    ids = sorted(r[0] for r in db.execute("SELECT deal_id FROM deals"))
    # 001A0000006Vm9r -> 001A0000006Vm9rIAC is Salesforce's documented example
    assert ids == ["001A0000006Vm9rIAC", "0065g00000AbCdEAAV", "0065g00000abcdeAAA"]
    assert len({i.casefold() for i in ids}) == len(ids)
