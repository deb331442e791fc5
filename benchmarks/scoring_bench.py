"""Scoring speed and memory: training on MavenTech, scoring its open deals, explaining one deal,
and a full scoring run over about 1,000,000 generated open deals.

Run: python benchmarks/scoring_bench.py [--deals 1000000] [--maventech ../shared/datasets/maventech]
Each heavy case runs in its own process so that its peak RSS is its own. Prints figures only.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _clock(label: str, fn, *args, **kw):
    start = time.perf_counter()
    out = fn(*args, **kw)
    print(f"  {label:<52} {time.perf_counter() - start:8.2f} s")
    return out


def maventech(source: str, tmp: Path) -> None:
    import pandas as pd

    from dataset import database, deal_history
    from dataset.ingest import ingest_files
    from scoring import explain, scorer
    from scoring.features import prepare
    from scoring.train import fit_at, train

    db = database.connect(tmp / "m.db")
    ingest_files(db, [source])
    crm = prepare(deal_history.load_crm(db))
    print("MavenTech")
    training = _clock("train: evaluation over 4 cutoffs + shipped model", train, crm)
    _clock("train: shipped model only (every pass, on all snapshots)", fit_at, crm,
           crm.data_end + pd.Timedelta(days=1))  # fmt: skip
    model, refs = training.model, training.meta["references"]
    run = _clock("score + risk, all open deals (no explanations)", scorer.score, crm, model, refs,
                 explain_top=0)  # fmt: skip
    _clock(
        "score + risk + drivers for the top 100", scorer.score, crm, model, refs, explain_top=100
    )
    print(f"  open deals scored: {len(run.scores):,}")

    f = run.features
    x = model.matrix(f)
    times, fast = [], []
    for i in range(500):
        row = f.iloc[[i % len(f)]]
        t0 = time.perf_counter()
        scorer.explain_deals(model, row, run.scores.loc[row.index], refs)
        times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        explain.driver_points(model, model.contributions(x[i % len(f) : i % len(f) + 1]))
        fast.append(time.perf_counter() - t0)
    print(
        f"  reasons and actions of one deal (median of 500)        {statistics.median(times) * 1e3:8.2f} ms"
    )
    print(
        f"  driver points of one deal from the matrix (median of 500) {statistics.median(fast) * 1e3:5.2f} ms"
    )
    import shap

    explainer = shap.TreeExplainer(model.booster)
    shap_times, native_times = [], []
    for i in range(200):
        one = x[i % len(f) : i % len(f) + 1]
        t0 = time.perf_counter()
        explainer.shap_values(one)
        shap_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        model.contributions(one)
        native_times.append(time.perf_counter() - t0)
    print(
        f"  SHAP of one deal (median of 200): LightGBM pred_contrib "
        f"{statistics.median(native_times) * 1e3:.2f} ms, shap TreeExplainer "
        f"{statistics.median(shap_times) * 1e3:.2f} ms"
    )
    print(f"  peak RSS {_peak_mb():,.0f} MB")


def demo_model(tmp: Path) -> None:
    """Train on the default demo (one evaluation cutoff) and save the model in `tmp/model`:
    the model the big-pipeline benchmarks score with (here and in dask_bench.py)."""
    from dataset import database, deal_history
    from dataset.demo import DemoConfig, write_demo
    from dataset.ingest import ingest_files
    from forecasting import stage_timing, stage_timing_file
    from scoring import artifact
    from scoring.features import prepare
    from scoring.train import train

    small = database.connect(tmp / "small.db")
    write_demo(tmp / "small", DemoConfig())
    ingest_files(small, [tmp / "small", tmp / "small" / "exports"])
    crm = prepare(deal_history.load_crm(small))
    training = train(crm, n_cutoffs=1)
    artifact.save(training.model, tmp / "model", training.meta)
    # the forecast's stage models beside it, as the refresh's training saves them
    stage_timing_file.save(stage_timing.fit_shipped(crm, training.rows, training.model),
                           tmp / "model")  # fmt: skip


def open_pipeline(deals: int, yesterday: bool = False):
    """The demo generator's config for one export of about `deals` open deals: its span the last
    60 days, so that most deals are still open (about 1 in 1.45); `yesterday`: with the day
    before's export too."""
    from dataset.demo import DemoConfig

    end = DemoConfig().end
    return DemoConfig(deals=int(deals * 1.45), start=end - timedelta(days=60),
                      weekly_exports=False, daily_exports=int(yesterday))  # fmt: skip


def million_setup(deals: int, tmp: Path) -> None:
    """Train on the default demo and save the model; write ~`deals` open deals as yesterday's
    and today's exports; ingest the reference tables and yesterday's, save the columnar copy of the deal tables as
    yesterday's refresh did, then ingest today's: the morning the run below is."""
    from dataset import database, deal_history
    from dataset.demo import write_demo
    from dataset.ingest import ingest_files

    demo_model(tmp)
    write_demo(tmp / "big", open_pipeline(deals, yesterday=True))
    print("1,000,000-deal run (setup: demo model trained, two days' exports written)")
    big = database.connect(tmp / "big.db")
    # the reference tables first, as a user imports them (the teams give the regions and
    # managers' teams the refresh forecasts)
    reference = [tmp / "big" / f for f in ("sales_teams.csv", "accounts.csv", "products.csv")]
    _clock("setup: ingest the reference tables and yesterday's export", ingest_files, big,
           [*reference, *sorted((tmp / "big" / "exports").glob("*.csv"))])  # fmt: skip
    _clock("setup: yesterday's load, the tables read whole, copy saved", deal_history.load_crm,
           big, keep=True)  # fmt: skip
    _clock("setup: ingest today's export", ingest_files, big,
           [tmp / "big" / "sales_pipeline.csv"])  # fmt: skip


def million_run(tmp: Path) -> None:
    """The nightly run itself, in a fresh process: load (yesterday's columnar copy and today's
    import), score, explain the top, forecast, write; then its floor, in the same process: the
    columnar copy read as Arrow tables (no frames built) and LightGBM's predict on the same
    matrix; and, for comparison, the same tables fetched whole from SQLite."""

    from bot.refresh import owners_of, scopes_text, scopes_to_forecast
    from bot.settings import Settings
    from dataset import database, deal_columns, deal_history, score_runs
    from forecasting import stage_timing, stage_timing_file
    from forecasting.bands import Bands
    from forecasting.forecast import forecast_scopes
    from scoring import artifact, scorer
    from scoring.features import prepare

    big = database.connect(tmp / "big.db")
    model, meta = artifact.load(tmp / "model")
    t0 = time.perf_counter()
    tables = _clock("load (the columnar copy + today's import; copy saved)",
                    deal_history.load_crm, big, keep=True)  # fmt: skip
    crm = _clock("prepare", prepare, tables)
    del tables  # as the refresh, which prepares the tables it loaded and keeps only the Crm
    run = _clock("features + probability + risk + drivers for top 1,000", scorer.score, crm,
                 model, meta["references"], explain_top=1000)  # fmt: skip
    win = run.scores["win_prob"].reindex(run.features.index).to_numpy()
    # every scope the refresh forecasts with no channel configured (the company, each region
    # and each manager's team: `bot.refresh.scopes_to_forecast`), drawn together as it does
    scopes = scopes_to_forecast(Settings(), crm.teams, run.scores)
    owners = {str(s): owners_of(s, crm.teams, run.scores) for s in scopes}
    # the stage models' chances to close within 28 and 91 days, as `Refresher._within` gives
    # them where the CRM has stage history (two exports here)
    within = _clock("stage models: each deal's chances to close within 28, 91 days",
                    stage_timing.chances, stage_timing_file.load(tmp / "model"), crm, run.as_of,
                    run.features, win)  # fmt: skip
    _clock(f"forecast: {scopes_text(scopes)} (10,000 scenarios)", forecast_scopes, crm,
           run.as_of, run.features, win, owners, bands=Bands(0.4), within=within)  # fmt: skip
    _clock("write the run to SQLite", score_runs.write_score_run, big, as_of=run.as_of,
           scores=run.scores, model_hash="bench", confidence="bench", base_rate=0.5)  # fmt: skip
    total = time.perf_counter() - t0
    print(
        f"  open deals scored: {len(run.scores):,}; total {total:.1f} s; peak RSS {_peak_mb():,.0f} MB"
    )
    t1 = time.perf_counter()
    copy = deal_columns._read_copy(big)  # the Parquet files as Arrow tables: no frames built
    read = time.perf_counter() - t1
    rows = sum(t.num_rows for t in copy.values())
    x = model.matrix(run.features)
    t1 = time.perf_counter()
    model.booster.predict(x, raw_score=True)
    predict = time.perf_counter() - t1
    print(f"  floor: the columnar copy read ({rows:,} rows) {read:.2f} s + LightGBM predict on "
          f"the same {x.shape[0]:,} x {x.shape[1]} matrix {predict:.2f} s = {read + predict:.1f} s; "
          f"the run is {total / (read + predict):.1f}x it")  # fmt: skip
    t1 = time.perf_counter()
    whole = {
        p: len(big.conn.execute(sql).fetchall()) for p, (sql, _, _) in deal_columns.PARTS.items()
    }
    print(f"  for comparison: the same tables fetched whole from SQLite ({sum(whole.values()):,} "
          f"rows, no frames built) {time.perf_counter() - t1:.2f} s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--maventech", default=str(ROOT.parent / "shared/datasets/maventech"))
    parser.add_argument("--case", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        kind, arg, tmp = args.case
        if kind == "maventech":
            maventech(arg, Path(tmp))
        elif kind == "setup":
            million_setup(int(arg), Path(tmp))
        else:
            million_run(Path(tmp))
        return
    print(f"scoring benchmark, {date.today()}")  # the wall clock only labels the printout
    with tempfile.TemporaryDirectory() as tmp:
        cases = (("maventech", args.maventech), ("setup", str(args.deals)), ("run", "-"))
        for kind, arg in cases:
            subprocess.run(
                [sys.executable, __file__, "--case", kind, arg, tmp], check=True, cwd=ROOT
            )


if __name__ == "__main__":
    main()
