"""Score runs saved column-wise read exactly as runs saved a row per deal (before schema 5) did:
the same scores written both ways into one real SQLite file, every reader compared cell by cell,
with deals that straddle the parts, missing values, names that are numbers, columns with no
value at all, and reasons given after the run was saved."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest

from dataset import database, run_flags, score_columns, score_runs
from dataset.database import _records
from scoring.hygiene import FLAG_COLUMNS, RULE_COLUMNS, Hygiene

RULES = pd.DataFrame([("close_date_passed", "on", 0.0, 3, None)], columns=RULE_COLUMNS)


def scores(n: int, seed: int, all_null: str | None = None) -> pd.DataFrame:
    """A run's scores as the scorer hands them over (indexed by deal id), awkward on purpose."""
    rng = np.random.default_rng(seed)
    ids = [f"D{i:05d}" for i in rng.permutation(3 * n)[:n]]  # runs share some deals
    value = rng.random(n) * 1e5
    value[rng.random(n) < 0.2] = np.nan
    close = pd.Timestamp("2024-04-01") + pd.to_timedelta(rng.integers(0, 90, n), "D")
    close = pd.Series(close).where(rng.random(n) > 0.1)
    owner = pd.Series(rng.choice(["Ann", "Bé Ø", "Cy", None], n), dtype=object)
    owner[rng.random(n) < 0.05] = 42  # a CRM's name that is a number
    frame = pd.DataFrame({
        "rank": rng.permutation(n) + 1,
        "owner": owner.to_numpy(),
        "manager": rng.choice(["M1", "M2"], n),
        "region": rng.choice(["East", "West"], n),
        "product": rng.choice(["GTX", "MG"], n),
        "account": rng.choice(["Acme", "Ünïcode & <b>", "Zeta"], n),
        "stage": rng.choice(["Engaging", "Prospecting"], n),
        "value": value,
        "win_prob": rng.random(n),
        "risk": rng.random(n) * 100,
        "value_at_risk": np.where(np.isnan(value), np.nan, rng.random(n) * 1e4),
        "expected_close": close.to_numpy(),
        "drivers": [f'[{{"key": "k{i}"}}]' if i % 7 == 0 else None for i in range(n)],
        "actions": ['["call"]' if i % 7 == 0 else None for i in range(n)],
        "risk_loss": rng.random(n), "risk_velocity": rng.random(n),
        "risk_stagnation": rng.random(n), "risk_size": rng.random(n),
        "value_known": (~np.isnan(value)).astype(int),
        "forecast_category": rng.choice(["Commit", "Pipeline"], n),
    }, index=pd.Index(ids, name="deal_id"))  # fmt: skip
    if all_null:
        frame[all_null] = None
    return frame


def write_rows(db, run_id: int, frame: pd.DataFrame) -> None:
    """A run as revbot saved it before schema 5: a row per deal in `deal_scores`."""
    rows = frame.reset_index().sort_values("deal_id")
    with db.atomic():
        db.execute(
            "INSERT INTO score_runs (run_id, as_of, created_at, deals) VALUES (?, ?, 'x', ?)",
            [run_id, f"2024-03-{run_id:02d}", len(rows)],
        )
        db.conn.executemany(
            f"INSERT INTO deal_scores (run_id, {', '.join(score_runs.SCORE_COLUMNS)}) VALUES "
            f"({run_id}, {', '.join('?' * len(score_runs.SCORE_COLUMNS))})",
            _records(rows, score_runs.SCORE_COLUMNS),
        )


def flags_of(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    ids = list(frame.index[:6]) + ["NOT-IN-RUN"]
    return pd.DataFrame({
        "deal_id": ids, "rule": ["close_date_passed"] * 4 + ["amount_missing"] * 3,
        "detail": [f"d{i}" for i in range(7)],
        "value": [5.0, 5.0, np.nan, 9.0, 1.0, 1.0, 2.0],
        "threshold": [0.0, 0.0, 0.0, np.nan, 0.0, 0.0, 0.0],
    })[list(FLAG_COLUMNS)].sample(frac=1, random_state=seed)  # fmt: skip


@pytest.mark.parametrize("part_rows", [3, 16_384])
@pytest.mark.parametrize("all_null", [None, "manager", "value_at_risk"])
def test_a_run_saved_column_wise_reads_as_its_rows_did(tmp_path, monkeypatch, part_rows, all_null):
    monkeypatch.setattr(score_columns, "PART_ROWS", part_rows)
    db = database.connect(tmp_path / "s.db")
    runs = [scores(40, 1, all_null), scores(35, 2, all_null)]
    # old-style runs 1-2, then the same scores column-wise as runs 3-4
    for i, frame in enumerate(runs, 1):
        write_rows(db, i, frame)
    new = []
    for i, frame in enumerate(runs):
        new.append(score_runs.write_score_run(
            db, as_of=pd.Timestamp(f"2024-03-{i + 3:02d}"), scores=frame, model_hash="h",
            confidence="high", base_rate=0.5, hygiene=Hygiene(flags_of(frame, i), RULES),
        ))  # fmt: skip
        run_flags.insert(db, i + 1, RULES, flags_of(frame, i))  # the old runs' flags
    assert new == [3, 4] and all(score_columns.stored(db, r) for r in new)
    assert not score_columns.stored(db, 1) and db["deal_scores"].count == 2 * 75
    for old, run in ((1, 3), (2, 4)):
        pd.testing.assert_frame_equal(
            score_runs.run_scores(db, run).drop(columns="run_id"),
            score_runs.run_scores(db, old).drop(columns="run_id"),
        )
        assert list(score_runs.run_scores(db, run)) == list(score_runs.run_scores(db, old))
        for columns in (("deal_id", "risk"), ("risk", "drivers", "owner"), ("actions",),
                        ("expected_close", "value_known", "rank", "bogus")):  # fmt: skip
            pd.testing.assert_frame_equal(score_runs.run_scores(db, run, columns),
                                          score_runs.run_scores(db, old, columns))  # fmt: skip
        for deal in [*runs[old - 1].index, "NOPE"]:
            a, b = score_runs.run_deal(db, run, deal), score_runs.run_deal(db, old, deal)
            assert (a is None and b is None) or {**a, "run_id": 0} == {**b, "run_id": 0}, deal
        for deal in [None, runs[old - 1].index[0], "NOT-IN-RUN"]:
            for rule in (None, "amount_missing"):
                pd.testing.assert_frame_equal(run_flags.run_flags(db, run, deal, rule),
                                              run_flags.run_flags(db, old, deal, rule))  # fmt: skip
    # against the run before: 3 against 2 (rows), 4 against 3 (columns) as 2 against 1
    pd.testing.assert_frame_equal(score_runs.risk_changes(db, 4), score_runs.risk_changes(db, 2))


def test_a_deal_s_history_spans_runs_saved_both_ways(tmp_path, monkeypatch):
    """Its last runs, however far back (a deal closed long ago still shows its trend), whichever
    way each run was saved."""
    monkeypatch.setattr(score_columns, "PART_ROWS", 4)
    db = database.connect(tmp_path / "h.db")
    frames = [scores(30, s) for s in range(5)]
    for i, frame in enumerate(frames[:2], 1):
        write_rows(db, i, frame)
    for i, frame in enumerate(frames[2:], 3):
        score_runs.write_score_run(db, as_of=pd.Timestamp(f"2024-03-{i:02d}"), scores=frame,
                                   model_hash="h", confidence="high", base_rate=0.5)  # fmt: skip
    every = sorted(set().union(*(f.index for f in frames)))
    for deal in [*every, "NOPE"]:
        for runs in (2, 4, 10):  # its last 2, 4 or all runs, whichever way they were saved
            history = score_runs.deal_risk_history(db, deal, runs)
            expected = [(i, f.at[deal, "risk"], f.at[deal, "win_prob"])
                        for i, f in enumerate(frames, 1) if deal in f.index][-runs:]  # fmt: skip
            got = list(zip(history["run_id"], history["risk"], history["win_prob"], strict=True))
            assert got == expected, deal
            assert history["as_of"].dt.day.tolist() == [e[0] for e in expected]


def test_reasons_given_later_are_kept_with_the_run_and_never_replaced(tmp_path):
    db = database.connect(tmp_path / "r.db")
    frame = scores(20, 3)
    run = score_runs.write_score_run(db, as_of=pd.Timestamp("2024-03-05"), scores=frame,
                                     model_hash="h", confidence="high", base_rate=0.5)  # fmt: skip
    explained, bare = frame.index[0], frame.index[1]  # deal 0 came with reasons, deal 1 without
    score_runs.save_reasons(db, run, {explained: ("new", "new"), bare: ('[{"key": "x"}]', "[]")})
    saved = score_runs.run_scores(db, run).set_index("deal_id")
    assert saved.at[explained, "drivers"] == frame.at[explained, "drivers"]
    assert saved.at[bare, "drivers"] == '[{"key": "x"}]'
    assert score_runs.run_deal(db, run, bare)["actions"] == "[]"


def test_a_run_the_rows_table_refuses_is_refused_whole(tmp_path):
    db = database.connect(tmp_path / "x.db")
    twice = pd.concat([scores(5, 4), scores(5, 4).head(1)])
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        score_runs.write_score_run(db, as_of=pd.Timestamp("2024-03-05"), scores=twice,
                                   model_hash="h", confidence="high", base_rate=0.5)  # fmt: skip
    no_rank = scores(5, 4).assign(rank=[1, 2, None, 4, 5])
    with pytest.raises(sqlite3.IntegrityError, match="NOT NULL"):
        score_runs.write_score_run(db, as_of=pd.Timestamp("2024-03-05"), scores=no_rank,
                                   model_hash="h", confidence="high", base_rate=0.5)  # fmt: skip
    assert db["score_runs"].count == 0 and db["score_columns"].count == 0
    assert db["deal_scores"].count == 0


def test_an_empty_run_is_saved_column_wise_and_reads_empty(tmp_path):
    db = database.connect(tmp_path / "e.db")
    run = score_runs.write_score_run(db, as_of=pd.Timestamp("2024-03-05"),
                                     scores=scores(3, 5).iloc[:0], model_hash="h",
                                     confidence="high", base_rate=0.5)  # fmt: skip
    write_rows(db, 9, scores(3, 5).iloc[:0])
    assert score_columns.stored(db, run)
    pd.testing.assert_frame_equal(score_runs.run_scores(db, run), score_runs.run_scores(db, 9))
    assert score_runs.run_deal(db, run, "D00001") is None


def test_a_schema_4_file_loses_the_index_by_deal_and_keeps_its_runs(tmp_path):
    """Opening a file of revbot before schema 5: its runs read as they did, its index by deal
    (rewritten all over by every run, read by nothing now) is dropped, new runs are column-wise."""
    db = database.connect(tmp_path / "old.db")
    write_rows(db, 1, scores(12, 6))
    db.execute("CREATE INDEX deal_scores_deal ON deal_scores(deal_id, run_id)")
    db.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    db.conn.commit()
    before = score_runs.run_scores(db, 1)
    db.close()
    db = database.connect(tmp_path / "old.db")
    indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "deal_scores_deal" not in indexes
    assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "5"
    pd.testing.assert_frame_equal(score_runs.run_scores(db, 1), before)
    new = score_runs.write_score_run(db, as_of=pd.Timestamp("2024-03-09"), scores=scores(12, 6),
                                     model_hash="h", confidence="high", base_rate=0.5)  # fmt: skip
    assert score_columns.stored(db, new) and not score_columns.stored(db, 1)
    deal = before["deal_id"].iloc[0]
    assert score_runs.deal_risk_history(db, deal)["run_id"].tolist() == [1, new]


def test_numeric_deal_ids_are_found_as_the_table_stores_them(tmp_path, monkeypatch):
    """Ids handed over as numbers are stored as text (as the table's affinity did) and the parts
    ordered so: each deal is found in its part (sorted as numbers, "2" was looked for in the
    wrong one)."""
    monkeypatch.setattr(score_columns, "PART_ROWS", 3)
    db = database.connect(tmp_path / "n.db")
    frame = scores(20, 7)
    frame.index = pd.Index(range(1, 21), name="deal_id")
    write_rows(db, 1, frame)
    run = score_runs.write_score_run(db, as_of=pd.Timestamp("2024-03-05"), scores=frame,
                                     model_hash="h", confidence="high", base_rate=0.5)  # fmt: skip
    for deal in range(1, 21):
        a, b = score_runs.run_deal(db, run, str(deal)), score_runs.run_deal(db, 1, str(deal))
        assert {**a, "run_id": 0} == {**b, "run_id": 0}, deal
