"""Hygiene in the one writer and its readers, on the small real pipeline (demo exports, a model
trained for real): the refresh saves the rules' findings with the run, the reader reads the same
rows the rules give, the configured thresholds and `off` reach the saved run, and `revbot
hygiene` reports from the saved run only."""

from __future__ import annotations

import pandas as pd
import pytest

from bot.cli import main
from bot.reader import Reader
from bot.refresh import Refresher
from bot.settings import Settings
from dataset import database, deal_history
from scoring.features import features_at, prepare
from scoring.hygiene import (
    FLAG_COLUMNS,
    NOT_AVAILABLE,
    OFF,
    ON,
    RULE_NAMES,
    HygieneConfig,
    evaluate,
)


def _key(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[FLAG_COLUMNS].sort_values(["deal_id", "rule"]).reset_index(drop=True)


def _recomputed(db_path, as_of: str, config: HygieneConfig):
    db = database.connect(db_path)
    crm = prepare(deal_history.load_crm(db))
    db.close()
    return evaluate(crm, features_at(crm, pd.Timestamp(as_of)), as_of, config)


def test_the_writer_saves_hygiene_with_the_run_and_the_reader_reads_it(db_copy):
    reader = Reader(db_copy, Settings())
    saved = reader.latest()  # made by the refresh of the session's pipeline, default [hygiene]
    rules, flags = saved.hygiene_rules(), saved.flags()
    assert rules["rule"].tolist() == list(RULE_NAMES)
    states = rules.set_index("rule")
    # the demo exports last activity and close dates, and no next step
    assert states.loc["no_next_step", "state"] == NOT_AVAILABLE
    assert states.loc["no_next_step", "note"] == "its exports have no next-step column"
    assert states.loc["no_activity", "state"] == ON and states.loc["close_date_passed", "state"] == ON  # fmt: skip
    assert len(flags) > 0 and set(flags["rule"]) <= set(RULE_NAMES) - {"no_next_step"}
    assert (states["flagged"] == flags["rule"].value_counts().reindex(states.index).fillna(0)).all()
    # the rows are the rules' own, on the run's deals as of its day
    again = _recomputed(db_copy, saved.as_of, HygieneConfig())
    pd.testing.assert_frame_equal(_key(flags), _key(again.flags))
    assert set(flags["deal_id"]) <= set(saved.scores["deal_id"])
    # one deal's, through the run and through the reader
    deal = flags["deal_id"].iloc[0]
    mine = saved.flags(deal_id=deal)
    assert set(mine["deal_id"]) == {deal} and len(mine) == (flags["deal_id"] == deal).sum()
    pd.testing.assert_frame_equal(mine, reader.flags(saved.run_id, deal_id=deal))
    reader.close()


def test_thresholds_and_off_reach_the_saved_run(small_crm, db_copy):
    config = HygieneConfig(no_activity_days=30, close_date_grace_days=10,
                           off=frozenset({"close_date_pushed"}))  # fmt: skip
    writer = Refresher(db_copy, small_crm["artifacts"], Settings(hygiene=config))
    said: list[str] = []
    run_id = writer.refresh(said.append, force=True).run_id
    writer.close()
    assert any(line.startswith("deals breaking a hygiene rule: close_date_passed ") and
               "off: close_date_pushed" in line for line in said), said  # fmt: skip
    reader = Reader(db_copy, Settings())
    saved = reader.run(run_id)
    states = saved.hygiene_rules().set_index("rule")
    assert states.loc["close_date_pushed", "state"] == OFF
    assert states.loc["no_activity", "threshold"] == 30
    assert states.loc["close_date_passed", "threshold"] == 10
    flags = saved.flags()
    assert "close_date_pushed" not in set(flags["rule"])
    quiet = flags[flags["rule"] == "no_activity"]
    assert len(quiet) and (quiet["value"] >= 30).all() and (quiet["threshold"] == 30).all()
    late = flags[flags["rule"] == "close_date_passed"]
    assert len(late) and (late["value"] > 10).all()
    pd.testing.assert_frame_equal(
        _key(flags), _key(_recomputed(db_copy, saved.as_of, config).flags)
    )
    # the run before it kept its own findings, made with the defaults
    before = reader.hygiene_rules(run_id - 1).set_index("rule")
    assert before.loc["close_date_pushed", "state"] == ON and before.loc["no_activity", "threshold"] == 14  # fmt: skip
    reader.close()


def _cli(db_copy, small_crm, capsys, *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(
        ["hygiene", "--db", str(db_copy), "--artifacts", str(small_crm["artifacts"]), *args]
    )
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_revbot_hygiene_reports_the_saved_run_only(small_crm, db_copy, capsys, monkeypatch):
    """Counts per rule and each rule's worst deals, from the saved rows; with the rules, the
    feature builder and the CRM's preparation made to fail."""
    import scoring.features
    import scoring.hygiene

    reader = Reader(db_copy, Settings())
    saved = reader.latest()
    flags, rules = saved.flags(), saved.hygiene_rules().set_index("rule")
    reader.close()

    def forbidden(*_, **__):
        raise AssertionError("a reader evaluated the rules")

    for name in ("evaluate", "check"):
        monkeypatch.setattr(scoring.hygiene, name, forbidden)
    for name in ("features_at", "prepare"):
        monkeypatch.setattr(scoring.features, name, forbidden)
    code, out = _cli(db_copy, small_crm, capsys)
    assert code == 0, out
    lines = out.splitlines()
    deals = int(saved.run["deals"])
    assert lines[0] == (
        f"deal hygiene in score run #{saved.run_id}: {deals:,} open deals as of {saved.as_of}"
    )
    assert (
        "  no_next_step       not available in this CRM's data: its exports have no next-step "
        "column"
    ) in lines
    for rule in ("close_date_passed", "no_activity", "close_date_pushed"):
        n = int(rules.loc[rule, "flagged"])
        assert any(line.startswith(f"  {rule:<17}  {n:,} deal") for line in lines), rule
    # each rule's worst five, furthest past the rule first
    quiet = flags[flags["rule"] == "no_activity"]
    at = lines.index(f"no_activity: 5 of {len(quiet)}, furthest past the rule")
    listed = [line.split()[0] for line in lines[at + 1 : at + 6]]
    assert listed == quiet["deal_id"].head(5).tolist()
    assert quiet["value"].head(5).tolist() == sorted(quiet["value"], reverse=True)[:5]
    assert f": {quiet['detail'].iloc[0]}" in lines[at + 1]

    code, out = _cli(db_copy, small_crm, capsys, "--rule", "close_date_pushed", "--limit", "3")
    lines = out.splitlines()
    counted = [line.split()[0] for line in lines if line.startswith("  ") and not line.startswith("  D")]  # fmt: skip
    assert code == 0 and counted == ["close_date_pushed"], out
    pushed = flags[flags["rule"] == "close_date_pushed"]
    assert f"close_date_pushed: 3 of {len(pushed)}, furthest past the rule" in lines
    assert sum(line.startswith("  D") for line in lines) == 3


def test_revbot_hygiene_says_when_the_run_was_checked_otherwise(small_crm, db_copy, capsys, tmp_path):  # fmt: skip
    config = tmp_path / "revbot.toml"
    config.write_text('[hygiene]\nno_activity_days = 30\noff = ["amount_missing"]\n')
    code, out = _cli(db_copy, small_crm, capsys, "--config", str(config))
    assert code == 0, out
    assert out.splitlines()[-1] == (
        "note: [hygiene] in revbot.toml has changed for no_activity, amount_missing since this "
        "run was saved; `revbot score` checks the rules again"
    )


def test_a_run_saved_before_hygiene_says_how_to_get_one(small_crm, db_copy, capsys):
    db = database.connect(db_copy)
    db.conn.executescript("DELETE FROM deal_flags; DELETE FROM hygiene_rules;")
    run_id = db.execute("SELECT MAX(run_id) FROM score_runs").fetchone()[0]
    db.close()
    code, out = _cli(db_copy, small_crm, capsys)
    assert code == 2
    assert out.strip() == (
        f"revbot hygiene: error: score run #{run_id} was saved before revbot checked deal "
        "hygiene: make a new run with `revbot score`, then ask again"
    )


def test_an_unknown_rule_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        main(["hygiene", "--rule", "no_such_rule"])
    assert "invalid choice: 'no_such_rule'" in capsys.readouterr().err
