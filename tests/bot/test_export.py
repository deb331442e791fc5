"""`revbot export scores`: saved score runs written to CSV, on real SQLite files under tmp_path."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pandas as pd
import pytest

from bot import export
from bot.cli import main
from dataset import database, score_runs
from scoring.reasons import Reason
from scoring.risk import WEIGHTS, risk_score
from scoring.scorer import reasons_json

HOSTILE = '=HYPERLINK("http://x")'
HEADER = [
    "run_id", "as_of", "rank", "deal_id", "owner", "manager", "region", "product", "account",
    "stage", "expected_close", "win_probability", "risk", "value", "value_source",
    "value_at_risk", "risk_loss", "risk_velocity", "risk_stagnation", "risk_size",
    "risk_loss_points", "risk_velocity_points", "risk_stagnation_points", "risk_size_points",
    "reason_1_key", "reason_1_text", "reason_1_risk", "reason_1_money",
    "reason_2_key", "reason_2_text", "reason_2_risk", "reason_2_money",
    "reason_3_key", "reason_3_text", "reason_3_risk", "reason_3_money",
    "reasons_json", "actions",
]  # fmt: skip

# deal id -> (win probability, velocity, stagnation, size, value, CRM amount?, account)
DEALS = {
    "D1": (0.20, 0.9, 1.0, 0.8, 50_000.0, True, "Zoë Müller GmbH, Berlin"),
    "D2": (0.35, 0.5, 0.4, 0.7, 30_000.0, False, HOSTILE),
    "D3": (0.60, 0.0, 0.6, 0.5, 12_000.0, True, "+1 555 0100 Corp"),
    "D4": (0.80, 0.0, 0.0, 0.3, 4_000.0, True, "@mention Ltd"),
    "D5": (0.90, 0.0, 0.1, 0.2, 1_500.0, False, "Quiet Co"),
}


def scores_frame(explain: int, stage: str = "Engaging") -> pd.DataFrame:
    """A run's scores as `scorer.score` makes them: risk from its parts, ranked by value at
    risk, reasons and actions saved for the `explain` deals with the most value at risk."""
    rows = []
    for deal_id, (p, velocity, stagnation, size, value, known, account) in DEALS.items():
        parts = {"loss": 1 - p, "velocity": velocity, "stagnation": stagnation, "size": size}
        risk = float(risk_score({k: pd.Series([v]) for k, v in parts.items()})[0])
        rows.append({
            "deal_id": deal_id, "owner": "Ana Ortiz", "manager": "Cara Lee", "region": "West",
            "product": "GTX Pro", "account": account, "stage": stage,
            "expected_close": "2024-04-30", "value": value, "win_prob": p, "risk": risk,
            "value_at_risk": round(value * risk / 100, 2), "value_known": known,
            **{f"risk_{k}": v for k, v in parts.items()},
        })  # fmt: skip
    frame = pd.DataFrame(rows).sort_values("value_at_risk", ascending=False)
    frame["rank"] = range(1, len(frame) + 1)
    frame["drivers"] = None
    frame["actions"] = None
    for i in frame.index[:explain]:
        row = frame.loc[i]
        risk = float(row["risk"])
        reasons = [
            Reason("activity", "no activity for 40 days, activity in 1 of the last 8 weeks",
                   -12.0, risk * 0.5, row["value"] * risk * 0.5 / 100),
            Reason("time open", "open 300 days, longer than 90% of won GTX Pro deals took "
                   "(120 days)", 0.0, risk * 0.3, row["value"] * risk * 0.3 / 100),
            Reason("deal size", "deal size 50,000, 3.1 times the median open deal (16,000)",
                   -1.0, risk * 0.15, row["value"] * risk * 0.15 / 100),
            Reason("rep", "Ana Ortiz's past win rate 70% (all reps: 60%)", 4.0, -2.2, -100.0),
        ]  # fmt: skip
        frame.at[i, "drivers"] = reasons_json(reasons)
        frame.at[i, "actions"] = json.dumps(
            ["Re-engage: no activity for 40 days. Book a call with the buyer this week.",
             "-1 step back? Review this deal with your manager: its circumstances (deal size) "
             "weigh on it."]
        )  # fmt: skip
    return frame.set_index("deal_id")


def save_run(db, explain: int = 2, as_of: date = date(2024, 3, 5), **kw) -> int:
    return score_runs.write_score_run(
        db, as_of=as_of, scores=scores_frame(explain, **kw), model_hash="h",
        confidence="model confidence: high", base_rate=0.6,
    )  # fmt: skip


@pytest.fixture
def db_path(tmp_path):
    path = tmp_path / "x.db"
    db = database.connect(path)
    save_run(db)
    db.close()
    return path


def read_export(path) -> list[dict]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def test_header_rank_order_and_summary(db_path, tmp_path, capsys):
    out = tmp_path / "out" / "scores.csv"
    assert main(["export", "scores", "--out", str(out), "--db", str(db_path)]) == 0
    assert capsys.readouterr().out.startswith(
        f"5 deals of score run #1 (as of 2024-03-05) written to {out} (2 with reasons; "
    )
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM: Excel then reads UTF-8
    assert "Zoë Müller GmbH, Berlin".encode() in raw
    header = next(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert header == HEADER == list(export.COLUMNS)
    rows = read_export(out)
    assert [r["rank"] for r in rows] == ["1", "2", "3", "4", "5"]
    expected = scores_frame(2)
    assert [r["deal_id"] for r in rows] == expected.index.tolist()
    var = [float(r["value_at_risk"]) for r in rows]
    assert var == sorted(var, reverse=True)
    first = rows[0]
    assert first["run_id"] == "1" and first["as_of"] == "2024-03-05"
    assert first["account"] == "Zoë Müller GmbH, Berlin"  # quoted by the csv module, verbatim
    assert first["win_probability"] == "0.2000" and first["expected_close"] == "2024-04-30"
    sources = {r["deal_id"]: r["value_source"] for r in rows}
    assert sources == {"D1": "amount", "D2": "estimate", "D3": "amount", "D4": "amount",
                       "D5": "estimate"}  # fmt: skip
    for r in rows:
        assert float(r["value_at_risk"]) == pytest.approx(
            float(r["value"]) * float(r["risk"]) / 100, abs=0.01
        )


def test_the_parts_points_add_up_to_risk(db_path, tmp_path):
    out = tmp_path / "scores.csv"
    assert main(["export", "scores", "--out", str(out), "--db", str(db_path)]) == 0
    for r in read_export(out):
        points = [float(r[f"risk_{p}_points"]) for p in WEIGHTS]
        assert sum(points) == pytest.approx(float(r["risk"]), abs=0.07)  # risk is saved to 0.1
        for p in WEIGHTS:
            part = float(r[f"risk_{p}"])
            assert 0 <= part <= 1
            assert float(r[f"risk_{p}_points"]) == pytest.approx(100 * WEIGHTS[p] * part, abs=0.01)
        assert float(r["risk_loss"]) == pytest.approx(1 - float(r["win_probability"]), abs=1e-4)


def test_reasons_for_explained_deals_only(db_path, tmp_path):
    out = tmp_path / "scores.csv"
    assert main(["export", "scores", "--out", str(out), "--db", str(db_path)]) == 0
    rows = read_export(out)
    saved = score_runs.run_scores(database.connect(db_path), 1).set_index("deal_id")
    for r in rows[:2]:
        reasons = json.loads(saved.at[r["deal_id"], "drivers"])
        assert r["reasons_json"] == saved.at[r["deal_id"], "drivers"]  # as saved
        for i, reason in enumerate(reasons[:3], start=1):
            assert r[f"reason_{i}_key"] == reason["key"]
            assert r[f"reason_{i}_text"] == reason["text"]
            assert float(r[f"reason_{i}_risk"]) == pytest.approx(reason["risk"])
            assert float(r[f"reason_{i}_money"]) == pytest.approx(reason["money"])
        assert r["reason_1_key"] == "activity" and r["reason_3_key"] == "deal size"
        assert r["actions"].startswith("Re-engage: no activity for 40 days.")
        assert " | -1 step back? Review this deal" in r["actions"]
    for r in rows[2:]:
        reason_cells = [v for k, v in r.items() if k.startswith("reason")]
        assert reason_cells == [""] * (4 * 3 + 1) and r["actions"] == ""


def test_formula_injection_is_neutralised(tmp_path):
    db = database.connect(tmp_path / "x.db")
    save_run(db, explain=5, stage="-1 Lost?")
    rows = {r["deal_id"]: r for r in read_export(_export(tmp_path))}
    assert rows["D2"]["account"] == "'" + HOSTILE
    assert rows["D3"]["account"] == "'+1 555 0100 Corp"
    assert rows["D4"]["account"] == "'@mention Ltd"
    assert rows["D5"]["account"] == "Quiet Co" and rows["D1"]["stage"] == "'-1 Lost?"
    assert rows["D1"]["reasons_json"].startswith("[")  # JSON is safe as saved
    # numbers are ours: a reason that lowers the risk stays a (negative) number
    assert export.number(-2.2, 1) == "-2.2"
    for cell in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert export.safe_text(cell) == "'" + cell
    assert export.safe_text("ok = fine") == "ok = fine" and export.safe_text(None) == ""


def _export(tmp_path, *extra: str):
    out = tmp_path / "scores.csv"
    assert (
        main(["export", "scores", "--out", str(out), "--db", str(tmp_path / "x.db"), *extra]) == 0
    )
    return out


def test_out_dash_writes_to_standard_output(db_path, capsys):
    assert main(["export", "scores", "--out", "-", "--db", str(db_path)]) == 0
    captured = capsys.readouterr()
    assert not captured.out.startswith("\ufeff")  # no BOM in a pipe
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    assert len(rows) == 5 and rows[0]["rank"] == "1"
    assert captured.out == export.csv_text(score_runs.run_scores(database.connect(db_path), 1),
                                           score_runs.run_of(database.connect(db_path), 1))  # fmt: skip
    assert captured.err.startswith("5 deals of score run #1 (as of 2024-03-05) written to "
                                   "standard output (2 with reasons")  # fmt: skip


def test_no_run_yet_is_a_friendly_error(tmp_path, capsys):
    path = tmp_path / "x.db"
    database.connect(path).close()
    out = tmp_path / "scores.csv"
    assert main(["export", "scores", "--out", str(out), "--db", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"revbot export: error: no score run yet in {path}")
    assert "`revbot score`" in err and "`revbot digest`" in err and "Traceback" not in err
    assert not out.exists()
    # a missing database is said, and not created
    missing = tmp_path / "typo.db"
    assert main(["export", "scores", "--out", str(out), "--db", str(missing)]) == 2
    assert f"no database at {missing}" in capsys.readouterr().err
    assert not missing.exists()


def test_run_picks_that_run_and_the_reader_writes_nothing(tmp_path, capsys):
    db = database.connect(tmp_path / "x.db")
    save_run(db, explain=1, as_of=date(2024, 3, 4))
    save_run(db, explain=5, as_of=date(2024, 3, 5))
    before = database.table_counts(db)
    rows = read_export(_export(tmp_path, "--run", "1"))
    assert {r["run_id"] for r in rows} == {"1"} and rows[0]["as_of"] == "2024-03-04"
    assert sum(r["reason_1_key"] != "" for r in rows) == 1
    assert "(1 with reasons; " in capsys.readouterr().out
    rows = read_export(_export(tmp_path))  # the latest
    assert {r["run_id"] for r in rows} == {"2"} and rows[0]["as_of"] == "2024-03-05"
    out = capsys.readouterr().out
    assert out.endswith("(5 with reasons)\n") and "--explain-top" not in out
    assert database.table_counts(db) == before
    assert (
        main(["export", "scores", "--out", "-", "--db", str(tmp_path / "x.db"), "--run", "7"]) == 2
    )
    err = capsys.readouterr().err
    assert "revbot export: error: no score run #7 in " in err and "(the latest is #2)" in err


def test_runs_saved_before_parts_and_reason_risk_leave_cells_empty():
    # a deal of an older run: no risk parts, no value source, reasons with points only
    row = {"rank": 1, "deal_id": "D9", "win_prob": 0.5, "risk": 40.0, "value": 100.0,
           "value_at_risk": 40.0, "value_known": float("nan"),
           "drivers": json.dumps([{"key": "activity", "text": "no activity", "points": -8.0}]),
           "actions": None}  # fmt: skip
    cells = dict(zip(export.COLUMNS, export.export_row(row, {"run_id": 3, "as_of": "2023-01-02"}),
                     strict=True))  # fmt: skip
    assert cells["value_source"] == "" and cells["risk_loss"] == "" and cells["actions"] == ""
    assert cells["risk_size_points"] == "" and cells["reason_1_key"] == "activity"
    assert cells["reason_1_risk"] == "" and cells["reason_2_key"] == ""
    assert export.number(-0.001, 2) == "0.00" and export.number(1e-7, 4) == "0.0000"


def test_a_real_run_exports_whole(small_crm, db_copy, tmp_path, capsys):
    """The bot tests' small pipeline, trained and scored for real: every open deal, reasons for
    the explained ones, and the parts' points adding up to each deal's risk."""
    out = tmp_path / "real.csv"
    assert main(["export", "scores", "--out", str(out), "--db", str(db_copy)]) == 0
    rows = read_export(out)
    scores = small_crm["scores"]
    assert [r["deal_id"] for r in rows] == scores["deal_id"].tolist()
    explained = int(scores["drivers"].notna().sum())
    assert f"({explained:,} with reasons" in capsys.readouterr().out
    assert sum(r["reasons_json"] != "" for r in rows) == explained
    for r in rows:
        points = sum(float(r[f"risk_{p}_points"]) for p in WEIGHTS)
        assert points == pytest.approx(float(r["risk"]), abs=0.07)
        assert (r["reason_1_key"] != "") == (r["reasons_json"] != "")
