"""Files refused as a whole say why in one line, with no traceback (issue "Bad input never stops
the morning", item 13, import parts): an unknown encoding, a column named twice, a deals file
none of whose rows could be taken. Real files, real SQLite, the real import and `revbot ingest`."""

from __future__ import annotations

import re

import pytest

from bot.cli import main
from dataset.ingest import IngestError, ingest_files
from tests.dataset.test_bad_cells import GOOD, MAVENTECH, write


def refused(capsys, argv: list[str]) -> str:
    """`revbot ingest ARGV`'s error, checked to be the one line a user sees."""
    assert main(["ingest", *argv]) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert "Traceback" not in err and err.endswith("\n") and err.count("\n") == 1, err
    return err.removeprefix("revbot ingest: error: ").rstrip("\n")


@pytest.mark.parametrize(
    ("encoding", "message"),
    [
        ("no-such-enc", "unknown encoding 'no-such-enc': give a text encoding such as utf-8"),
        ("base64", "'base64' is not a text encoding: give one such as utf-8"),
    ],
)
def test_an_encoding_that_is_not_one_is_named(db, tmp_path, capsys, encoding, message):
    path = write(tmp_path, MAVENTECH, [GOOD])
    with pytest.raises(IngestError, match=message):
        ingest_files(db, [path], encoding=encoding)
    database = tmp_path / "x.db"
    assert refused(capsys, [str(path), "--db", str(database), "--encoding", encoding]).startswith(
        message
    )


def test_a_utf16_file_read_as_utf8_says_which_encoding_to_give(tmp_path, capsys):
    path = tmp_path / "unicode.csv"
    path.write_bytes("\n".join([MAVENTECH, GOOD]).encode("utf-16"))
    err = refused(capsys, [str(path), "--db", str(tmp_path / "x.db")])
    assert err == (
        "unicode.csv: the file starts with a UTF-16 byte-order mark (Excel's 'Unicode Text'): "
        "re-run with --encoding utf-16"
    )
    assert main(["ingest", str(path), "--db", str(tmp_path / "x.db"), "--encoding", "utf-16"]) == 0


def test_a_stray_byte_in_a_utf16_file_is_set_aside_as_written(db, tmp_path):
    path = tmp_path / "unicode.csv"
    path.write_bytes(("\n".join([MAVENTECH, GOOD]) + "\n").encode("utf-16") + b"A")
    (result,) = ingest_files(db, [path], encoding="utf-16")
    assert (result.rows_read, result.rows_accepted, result.rows_set_aside) == (2, 1, 1)
    (stored,) = db.query("SELECT line, reason, raw FROM quarantine")
    assert stored["line"] == 3 and stored["raw"] == "\\x41"
    assert stored["reason"].startswith("bytes that are not valid utf-16")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            MAVENTECH + ",close_value",
            "column 'close_value' appears 2 times in the header (columns 8 and 9)",
        ),
        (
            "Opportunity ID,Amount,Opportunity Owner,Stage,Created Date,Close Date, amount",
            "column 'Amount' appears 2 times in the header (columns 2 and 7)",
        ),
    ],
)
def test_a_column_named_twice_refuses_the_file(db, tmp_path, capsys, header, message):
    rows = ["006A1,100,Ann Lee,Prospecting,1/5/2017,3/1/2017,200"]
    if header.startswith(MAVENTECH):
        rows = [GOOD + ",200"]
    path = write(tmp_path, header, rows)
    with pytest.raises(IngestError, match=re.escape(message)):
        ingest_files(db, [path])
    assert db["imports"].count == 0
    err = refused(capsys, [str(path), "--db", str(tmp_path / "x.db")])
    assert err == f"export.csv: {message}: which one holds the data cannot be told; rename or remove the others"  # fmt: skip


def test_a_column_named_twice_that_is_not_read_does_no_harm(db, tmp_path):
    path = write(tmp_path, MAVENTECH + ",Notes,notes", [GOOD + ",a,b"])
    (result,) = ingest_files(db, [path])
    assert (result.status, result.rows_accepted) == ("imported", 1)


ALL_BAD = [
    "B1,Ann Lee,GTX Pro,Acme,,2017-01-05,,",
    "B2,Ann Lee,GTX Pro,Acme, ,2017-01-05,,",
    "B3,Ann Lee",
    "B4,Ann Lee,GTX Pro,Acme,Won,2017-01-05,2017-02-01,-5",
]


@pytest.mark.parametrize("as_of", [None, "2017-03-01"])
def test_a_deals_file_whose_every_row_is_set_aside_is_refused_saying_so(tmp_path, capsys, as_of):
    path = write(tmp_path, MAVENTECH, ALL_BAD)
    database = tmp_path / "x.db"
    err = refused(
        capsys, [str(path), "--db", str(database), *(["--as-of", as_of] if as_of else [])]
    )
    assert err.startswith(
        "export.csv: every row was set aside (4 read = 0 accepted + 4 set aside), so nothing was "
        "imported; commonest reasons: blank stage (known: "
    )
    assert "(2 rows); expected 8 fields, found 2 (1 row); negative value -5 (1 row)" in err  # fmt: skip
    assert "--as-of" not in err and "no date" not in err
    assert main(["imports", "--db", str(database)]) == 0
    assert capsys.readouterr().out == ""


def test_a_refusal_quotes_a_reason_holding_a_line_break_on_one_line(db, tmp_path):
    rows = ['B1,Ann Lee,GTX Pro,Acme,"Won\nfor sure",2017-01-05,2017-02-01,100']
    path = write(tmp_path, MAVENTECH, rows)
    with pytest.raises(IngestError) as caught:
        ingest_files(db, [path])
    assert "\n" not in str(caught.value) and "Won\\nfor sure" in str(caught.value)
