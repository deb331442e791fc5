"""Single bad cells that used to crash an import or poison every later run (issue "Bad input
never stops the morning"): each is set aside with its reason, through the real import into a
real SQLite file, and the balance read = accepted + set aside holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataset.ingest import FileResult, ingest_files

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
