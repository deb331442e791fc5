"""The heavy steps, shared by the CLI and the bot's morning run: train, score, fit the forecast's
shared shock, ingest the newest export. Each says what it did through `say` (print or a log)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd

from dataset import database, deal_history, score_runs
from scoring.artifact import ModelMismatchError

Say = Callable[[str], None]
EXPORT_SUFFIXES = (".csv", ".txt")


def train_model(
    db, folder: Path, n_cutoffs: int = 4, say: Say = print, truth: Path | None = None
) -> None:
    """Train, save the model and write its report; `truth`: a generated data set's
    truth/probabilities.csv, whose figures the report then shows."""
    from scoring import artifact, report
    from scoring.features import prepare
    from scoring.train import train

    crm = prepare(deal_history.load_crm(db))
    known = pd.read_csv(truth) if truth is not None else None
    training = train(crm, n_cutoffs, known)
    meta = {**training.meta, "database": {"fingerprint": database.fingerprint(db)}}
    artifact.save(training.model, folder, meta)
    path = report.write(
        training, folder, source=str(db.conn.execute("PRAGMA database_list").fetchone()[2])
    )
    say(training.summary.round(4).to_string())
    for c in training.meta["evaluation"]["against_truth"]:
        say(f"{c['day']} {c['what']}: {c['deals']:,} open deals, expected-AUC gap to the truth "
            f"{c['auc_gap']:.3f}, ECE vs truth {c['ece_truth']:.3f}, value x p {c['value_gap']:+.1%}")  # fmt: skip
    say(f"model and report written to {folder}/ ({path.name}, reliability.png)")


def ensure_model(db, folder: Path, say: Say = print):
    """The saved model, trained first if there is none (or it does not fit)."""
    from scoring import artifact

    try:
        return artifact.load(folder)
    except ModelMismatchError as exc:
        say(f"training the win model first ({exc})")
        train_model(db, folder, say=say)
        return artifact.load(folder)


def score_now(
    db, folder: Path, as_of: date | None = None, explain_top: int = 1000, loaded=None,
    say: Say = print,
) -> int:  # fmt: skip
    """Score every open deal and save the run; returns its id."""
    from scoring import artifact, scorer
    from scoring.features import prepare

    model, meta = loaded or artifact.load(folder)
    crm = prepare(deal_history.load_crm(db))
    notes = artifact.check_fits_data(
        meta, crm.deals["product"].dropna().unique().tolist(), database.fingerprint(db)
    )
    run = scorer.score(crm, model, meta["references"], as_of, explain_top)
    run_id = score_runs.write_score_run(
        db,
        as_of=run.as_of,
        scores=run.scores,
        model_hash=meta["trained_on"]["hash"],
        confidence=scorer.confidence_text(model),
        base_rate=model.base_rate,
        notes="\n".join(notes),
    )
    for note in notes:
        say(f"note: {note}")
    say(
        f"score run #{run_id}: {len(run.scores):,} open deals as of "
        f"{pd.Timestamp(run.as_of).date()}; {scorer.confidence_text(model)}"
    )
    return run_id


def backtest_forecast(crm, folder: Path, say: Say = print) -> dict:
    """Backtest on past cutoffs, pick the shared shock (sigma) and save it for live forecasts."""
    from forecasting import report as forecast_report
    from forecasting.backtest import backtest

    bt = backtest(crm)
    folder.mkdir(parents=True, exist_ok=True)
    forecast_report.write(bt, folder)
    config = {"sigma": bt.sigma, "data_end": crm.data_end.date().isoformat()}
    (folder / "forecast.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    say(bt.summary.round(3).to_string(index=False))
    say(f"backtest written to {folder}/forecast_backtest.md (shared shock sigma {bt.sigma})")
    return config


def forecast_settings(crm, folder: Path, say: Say = print) -> dict:
    """The saved forecast settings, backtesting first if there are none."""
    path = folder / "forecast.json"
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    say("no backtest yet: running it to fit the forecast's shared shock")
    return backtest_forecast(crm, folder, say)


def newest_export(folder: Path) -> Path | None:
    """The most recently modified CSV export in a folder (None if there is none)."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in EXPORT_SUFFIXES]
    return max(files, key=lambda p: (p.stat().st_mtime, p.name)) if files else None


def run_is_current(db) -> bool:
    """Is the latest score run newer than every import (nothing new to score)?"""
    run = score_runs.latest_run(db)
    if run is None:
        return False
    last_import = db.execute("SELECT MAX(imported_at) FROM imports").fetchone()[0]
    return last_import is None or last_import < run["created_at"]  # same second: rescore
