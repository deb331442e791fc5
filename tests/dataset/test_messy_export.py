"""A crafted messy export: every defect gives its exact reason and sets aside exactly its rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from dataset.ingest import IngestError, ingest_files

HEADER = "opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value"
ROWS = [
    'A1,Ann Lee,GTX Pro,Acme,Won,2017-01-05,2017-02-01,"$4,821.00"',  # 2 ok: money with symbols
    "A2,Ann Lee,MG Special,Acme,Lost,2017-01-05,2017-13-45,0",  # 3 bad date
    "A3,Bob Roy,GTXPro,,Engaging,2017-02-10,,",  # 4 ok: open, no account, alias
    "A4,Bob Roy,GTX Basic,Betatech,Won,2017-01-10,2017-02-01,-550",  # 5 negative
    "A5,Bob Roy,GTX Basic,Betatech,Negotiating,2017-01-10,,",  # 6 unknown stage
    'A1,Ann Lee,GTX Pro,Acme,Won,2017-01-05,2017-02-01,"$4,821.00"',  # 7 identical duplicate
    "A6,Cy Doe,MG Advanced,Caf\xe9 Co,Won,2017-01-02,2017-01-20,3393",  # 8 not UTF-8
    "A7,Cy Doe,MG Advanced,Zumgoity,Won,2017-01-02,2017-01-20,3393",  # 9 conflicting dup
    "A7,Cy Doe,MG Advanced,Zumgoity,Lost,2017-01-02,2017-01-20,0",  # 10 conflicting dup
    "A8,Cy Doe,MG Advanced,Zumgoity,Won,2017-01-02",  # 11 too few fields
    "A9,Dee Ray,GTX Pro,Acme,Won,2017-02-05,2017-01-20,4821",  # 12 closes before it engages
    ",Dee Ray,GTX Pro,Acme,Engaging,2017-02-05,,",  # 13 no id
    'A10,Dee Ray,GTX Pro,"Acme, ""Intl""\r\nBranch",Engaging,2017-02-05,,',  # 14-15 ok
    "A11,Dee Ray,GTX Pro,Acme,Won,2017-02-05,,4821",  # 16 won without close date
]
EXPECTED_SET_ASIDE = {
    3: "bad close_date '2017-13-45' (read as ISO8601)",
    5: "negative value -550",
    6: "unknown stage 'Negotiating' (known: Prospecting, Engaging, Won, Lost)",
    7: "duplicate of line 2 (deal_id 'A1', identical)",
    8: "bytes that are not valid utf-8 (if the export is Windows-1252, re-import it with "
    "--encoding cp1252)",
    9: "duplicate deal_id 'A7' with conflicting data (lines 9, 10)",
    10: "duplicate deal_id 'A7' with conflicting data (lines 9, 10)",
    11: "expected 8 fields, found 6",
    12: "close_date 2017-01-20 before engage_date 2017-02-05",
    13: "missing deal_id",
    16: "closed deal (Won) without a close date",
}


def messy_bytes() -> bytes:
    text = "\r\n".join([HEADER, *ROWS]) + "\r\n"
    return b"\xef\xbb\xbf" + text.encode("latin-1")  # BOM, CRLF, one latin-1 byte (é)


@pytest.fixture
def messy(tmp_path: Path) -> Path:
    path = tmp_path / "messy.csv"
    path.write_bytes(messy_bytes())
    return path


def test_exact_rows_set_aside_with_exact_reasons(db, messy):
    (result,) = ingest_files(db, [messy])
    assert (result.rows_read, result.rows_accepted, result.rows_set_aside) == (14, 3, 11)
    stored = {r["line"]: r["reason"] for r in db.query("SELECT line, reason FROM quarantine")}
    assert stored == EXPECTED_SET_ASIDE
    accepted = {r["deal_id"]: r for r in db.query("SELECT * FROM deals")}
    assert set(accepted) == {"A1", "A3", "A10"}
    assert accepted["A1"]["value"] == 4821.0
    assert accepted["A3"]["product"] == "GTXPro"  # no product table yet: kept as exported
    assert accepted["A3"]["account"] is None
    assert accepted["A10"]["account"] == 'Acme, "Intl"\r\nBranch'
    assert result.as_of == "2017-02-10"


def test_set_aside_rows_are_kept_verbatim(db, messy):
    ingest_files(db, [messy])
    raw = {r["line"]: r["raw"] for r in db.query("SELECT line, raw FROM quarantine")}
    assert raw[5] == ROWS[3] + "\r\n"
    assert raw[8] == ROWS[6].replace("\xe9", "\\xe9") + "\r\n"  # the undecodable byte, escaped
    assert raw[11] == ROWS[9] + "\r\n"


def test_windows_1252_export_loads_with_its_encoding(db, tmp_path):
    path = tmp_path / "cp1252.csv"
    path.write_bytes(("\r\n".join([HEADER, ROWS[6]]) + "\r\n").encode("cp1252"))
    (result,) = ingest_files(db, [path], encoding="cp1252")
    assert result.rows_set_aside == 0
    assert db.execute("SELECT account FROM deals").fetchone()[0] == "Café Co"


@pytest.mark.parametrize(
    "encoding, cell", [("unicode_escape", b"X\\ud800Y"), ("utf-7", b"X+2AA-Y")]
)
def test_a_code_point_no_text_may_hold_sets_its_row_aside_not_the_import(
    db, tmp_path, encoding, cell
):
    """An escape codec can decode to a lone surrogate (U+D800 here), which no string may be
    stored or compared as: that row is set aside with its text escaped, the rest imported."""
    path = tmp_path / "escaped.csv"
    good = ROWS[0].encode("ascii")
    path.write_bytes(HEADER.encode() + b"\n" + cell + good[2:] + b"\n" + good + b"\n")
    (result,) = ingest_files(db, [path], encoding=encoding)
    assert (result.status, result.rows_accepted) == ("imported", 1)
    (aside,) = result.set_aside
    assert aside.line == 2 and aside.reason.startswith(f"bytes that are not valid {encoding}")
    assert aside.raw.startswith("X\\ud800Y,Ann Lee")
    assert db.execute("SELECT deal_id FROM deals").fetchall() == [("A1",)]


def test_cli_prints_balance_and_reasons(messy, tmp_path, capsys):
    assert main(["ingest", str(messy), "--db", str(tmp_path / "x.db")]) == 0
    out = capsys.readouterr().out
    assert "messy.csv: deals via preset maventech: 14 read = 3 accepted + 11 set aside" in out
    assert "set aside line 6: unknown stage 'Negotiating'" in out
    assert main(["quarantine", "--db", str(tmp_path / "x.db")]) == 0
    assert "messy.csv:12 (import #1): close_date 2017-01-20 before engage_date" in (
        capsys.readouterr().out
    )


def test_missing_columns_refuse_the_file_naming_them_and_the_preset(db, tmp_path, capsys):
    path = tmp_path / "short.csv"
    path.write_text("opportunity_id,sales_agent,deal_stage,close_value\nA1,Ann,Won,10\n")
    with pytest.raises(IngestError) as err:
        ingest_files(db, [path])
    message = str(err.value)
    assert message.startswith("short.csv: missing required column(s) ")
    for column in ("account ('account')", "close_date ('close_date')",
                   "engage_date ('engage_date')", "product ('product')"):  # fmt: skip
        assert column in message
    assert "for preset 'maventech'" in message
    assert db["imports"].count == 0
    assert main(["ingest", str(path), "--db", str(tmp_path / "y.db")]) == 2
    assert "revbot ingest: error: short.csv: missing required column(s)" in capsys.readouterr().err


def test_one_refused_file_refuses_the_batch(db, messy, tmp_path):
    bad = tmp_path / "empty.csv"
    bad.write_bytes(b"")
    with pytest.raises(IngestError, match="empty.csv: the file is empty"):
        ingest_files(db, [messy, bad])
    assert db["imports"].count == 0 and db["deals"].count == 0


def test_as_of_before_the_data_is_refused(db, messy):
    from datetime import date

    with pytest.raises(IngestError, match="created up to 2017-02-10, after the as-of date"):
        ingest_files(db, [messy], as_of=date(2017, 2, 1))


def test_unterminated_quote_sets_aside_the_rest_verbatim(db, tmp_path):
    path = tmp_path / "quote.csv"
    path.write_text(
        f'{HEADER}\n{ROWS[0]}\nA2,Ann,"GTX Pro,Acme,Won,2017-01-05,2017-02-01,1\nA3,x\n'
    )
    (result,) = ingest_files(db, [path])
    assert (result.rows_read, result.rows_accepted, result.rows_set_aside) == (2, 1, 1)
    (row,) = db.query("SELECT line, reason, raw FROM quarantine")
    assert row["line"] == 3 and row["reason"].startswith("malformed CSV")
    assert row["raw"].endswith("A3,x\n")
