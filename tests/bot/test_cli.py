"""The README's main job and the CLI's contract, run for real in a temporary folder."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pandas as pd

from bot.blocks import check_limits
from bot.cli import main
from dataset import database
from dataset.demo import DemoConfig, generate


def test_digest_on_an_empty_database_loads_the_demo(main_job, capsys, monkeypatch):
    tmp_path = main_job["folder"]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REVBOT_DB", raising=False)
    assert main_job["code"] == 0, main_job["out"]
    out = main_job["out"]
    assert "database empty: loading the demo CRM exports" in out
    world = generate(DemoConfig())
    last = (world.config.end - world.config.start).days
    expected_open = int(((world.created <= last) & (world.close > last)).sum())
    assert f"pipeline loaded: {expected_open:,} open deals" in out
    assert f"as of {world.config.end}" in out
    assert (tmp_path / "revbot.db").exists()
    assert "training the win model (none yet)" in out
    # the digest's quarter forecast needs the shared shock: the backtest fits it on the first run
    assert "no forecast test yet: testing the forecast" in out
    digest = (tmp_path / "revbot-out" / "digest.txt").read_text()
    assert digest.startswith(f"revbot digest: all teams, pipeline as of {world.config.end}")
    assert "2025-Q1 forecast (won so far included): P50 " in digest
    assert "What's new: first digest" in digest
    assert "Top 10 deals by value at risk:" in digest and "why: " in digest
    # one pipeline value: the progress line's is the digest's (both the run's)
    loaded = re.search(r"pipeline loaded: [\d,]+ open deals, value (\S+),", out)
    assert loaded and f"pipeline value: {loaded.group(1)} " in digest, (loaded, digest[:300])
    assert (tmp_path / "artifacts" / "report.md").exists()
    message = json.loads((tmp_path / "revbot-out" / "digest.json").read_text())
    assert check_limits(message) == [] and message["text"].startswith("Pipeline digest (all teams)")
    assert (tmp_path / "revbot-out" / "digest.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "revbot-out" / "home.png").read_bytes()[:4] == b"\x89PNG"
    # a second run reuses the database and the model: no demo load, no training
    assert main(["digest"]) == 0
    out = capsys.readouterr().out
    assert "database empty" not in out and "training" not in out and "testing" not in out
    # nothing new was imported: the saved run is current
    assert "score run" not in out and "scoring" not in out and "forecasting" not in out
    assert f"no new CRM data since {world.config.end}" in out
    # the forecast reads the run's saved forecast: nothing is simulated again
    assert main(["forecast"]) == 0
    out = capsys.readouterr().out
    assert "testing the forecast" not in out
    quarter = f"{world.config.end.year}-Q{(world.config.end.month - 1) // 3 + 1}"
    rows = [line.split() for line in out.splitlines() if line.startswith(quarter)]
    assert rows and rows[0][3] in digest  # the quarter's P50, as the digest gave it
    assert (tmp_path / "revbot-out" / "forecast.png").stat().st_size > 20_000
    assert (tmp_path / "artifacts" / "forecast_test.md").exists()
    assert main(["forecast", "--by", "region"]) == 0
    out = capsys.readouterr().out
    assert "testing the forecast" not in out and "by region" in out
    assert "P50s of parts do not add up to the P50 of the whole" in out


# what the tables and the code call things: for the report and `--verbose`, not the main job
INTERNAL = re.compile(
    r"\b(auc|log_loss|brier|ece|p50_mape|p50_median_ape|sigma|coverage_p10_p90|LightGBM)\b"
    r"|shipped \(blended\)|exponential baseline|logistic regression",
    re.IGNORECASE,
)
PROGRESS = [  # each slow step says so as it starts, then how long it took (in this order)
    "training the win model (none yet) on the history of ",
    "  testing it on past date 1 of 4 (",
    "  testing it on past date 4 of 4 (",
    "  fitting it on all the history…",
    "win model trained in ",
    "no forecast test yet: testing the forecast from past dates, to size its range…",
    "  forecasting from past date 1 of 10 (",
    "  forecasting from past date 10 of 10 (",
    "  sizing the forecast's range",
    "forecast tested in ",
    "scoring the open deals and writing their reasons…",
    "score run #1: ",
    "forecasting 10 scopes (the company, ",
    "forecast of 10 scopes saved with run #1, in ",
    "pipeline loaded: ",
]


def test_the_main_job_speaks_plainly_and_shows_its_progress(main_job):
    """On a fresh folder `revbot digest` trains and backtests: it says so in plain sentences,
    one line per slow step, each with how long it took, and the numbers it quotes are the saved
    evaluation's; no table, no internal name."""
    assert main_job["code"] == 0, main_job["out"]
    out, art = main_job["out"], main_job["artifacts"]
    assert INTERNAL.search(out) is None, INTERNAL.search(out)
    at = [out.find(f"\n{line}") for line in PROGRESS]
    assert -1 not in at and at == sorted(at), list(zip(PROGRESS, at, strict=True))
    assert re.search(r"win model trained in \d+(\.\d)? s|win model trained in \d+ min", out)
    assert re.search(r"forecast tested in \d+(\.\d)? s|forecast tested in \d+ min", out)
    assert re.search(r"scored in \d+(\.\d)? s; model confidence", out)
    evaluation = json.loads((art / "win_model.json").read_text())["evaluation"]
    auc = evaluation["mean_over_cutoffs"]["shipped (blended)"]["auc"]
    assert (
        f"tested on the weeks after {len(evaluation['cutoffs'])} past dates, it ranked a deal that "
        f"went on to be won above one that was lost {auc:.0%} of the time (a coin flip: 50%); "
        "report: artifacts/report.md"
    ) in out
    rows = pd.read_csv(art / "forecast_test_cutoffs.csv")
    ours = rows[(rows["method"] == "ours") & (rows["weeks"] == 13)]
    assert (
        f"from {len(ours)} past dates, its P10-P90 range for the next 13 weeks held the revenue "
        f"actually won {int(ours['covered'].sum())} times out of {len(ours)}, and its P50 missed "
        f"by {ours['p50_abs_pct_error'].median():.0%} (median); report: "
        "artifacts/forecast_test.md"
    ) in out
    # a step's lines, not a flood: the training and the backtest say one line per past date
    assert (
        out.count("testing it on past date") == 4 and out.count("forecasting from past date") == 10
    )


def test_db_comes_from_the_environment(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REVBOT_DB", str(tmp_path / "env.db"))
    assert main(["demo", "--out", "crm", "--deals", "200", "--daily", "0", "--no-weekly"]) == 0
    assert main(["ingest", "crm"]) == 0
    assert database.connect(tmp_path / "env.db")["deals"].count == 200
    demo = ["demo", "--out", "crm2", "--deals", "50", "--daily", "0", "--no-weekly", "--load"]
    assert main([*demo, "--db", str(tmp_path / "other.db")]) == 0
    assert database.connect(tmp_path / "other.db")["deals"].count == 50
    assert main(["imports"]) == 0
    assert "#4 sales_pipeline.csv (deals, maventech): 200 read = 200 accepted" in (
        capsys.readouterr().out
    )


def test_console_script_errors_are_friendly(tmp_path):
    env = {**os.environ, "REVBOT_DB": str(tmp_path / "x.db")}
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "ingest", str(tmp_path / "nope.csv")],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert done.returncode == 2
    assert "revbot ingest: error:" in done.stderr and "no such file or folder" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_and_morning_say_what_is_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "REVBOT_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    assert main(["serve", "--db", str(tmp_path / "x.db")]) == 2
    assert "SLACK_BOT_TOKEN is not set" in capsys.readouterr().err
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    assert main(["serve", "--db", str(tmp_path / "x.db")]) == 2
    assert "set SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET" in capsys.readouterr().err
    assert main(["morning", "--db", str(tmp_path / "x.db")]) == 2
    assert "no [[channels]] in the configuration" in capsys.readouterr().err
    (tmp_path / "bad.toml").write_text('[[channels]]\nid = "#sales"\n')
    assert main(["morning", "--config", str(tmp_path / "bad.toml")]) == 2
    assert "is not a Slack channel ID" in capsys.readouterr().err


def test_a_bad_top_is_one_clear_line_not_a_traceback(tmp_path, capsys, monkeypatch):
    import pytest

    monkeypatch.chdir(tmp_path)
    for bad in ("-3", "0", "ten", "2.5"):
        with pytest.raises(SystemExit) as exit_:
            main(["digest", "--top", bad])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and "Traceback" not in err
        assert err.splitlines()[-1] == (
            "revbot digest: error: argument --top: expected a whole number, 1 or more, not "
            + (repr(bad) if bad in ("ten", "2.5") else bad)
        )
    assert not (tmp_path / "revbot.db").exists()  # refused before anything ran


def test_every_bad_count_or_threshold_is_one_clear_line(tmp_path, capsys, monkeypatch):
    import pytest

    monkeypatch.chdir(tmp_path)
    cases = [
        (["score", "--explain-top", "-5"], "--explain-top: expected a whole number, 1 or more"),
        (["train", "--cutoffs", "0"], "--cutoffs: expected a whole number, 1 or more"),
        (["quarantine", "--limit", "x"], "--limit: expected a whole number, 1 or more"),
        (["demo", "--deals", "-1"], "--deals: expected a whole number, 1 or more"),
        (["digest", "--min-risk", "150"], "--min-risk: expected a number from 0 to 100"),
        (["digest", "--min-risk", "high"], "--min-risk: expected a number from 0 to 100"),
    ]
    for args, message in cases:
        with pytest.raises(SystemExit) as exit_:
            main(args)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and "Traceback" not in err, args
        assert f"revbot {args[0]}: error: argument {message}" in err.splitlines()[-1], err
    assert list(tmp_path.iterdir()) == []  # refused before anything ran
