"""`revbot` command line: one database (`--db`) serves every subcommand, the scheduler and the bot.

Errors from the core are translated here, once, into a message and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from bot.config import ConfigError, config_path, load_config
from dataset import store
from dataset.demo import DemoConfig, write_demo
from dataset.ingest import FileResult, IngestError, ingest_files
from dataset.presets import BUILTIN, PresetError, apply_overrides
from scoring.artifact import ModelMismatchError

SHOW_SET_ASIDE = 10


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        type=Path,
        default=None,
        help="SQLite file (default: $REVBOT_DB, else ./revbot.db)",
    )
    p.add_argument("--config", help="revbot.toml (default: $REVBOT_CONFIG, else ./revbot.toml)")


def _as_of(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="revbot", description="Slack-native revenue intelligence for sales leadership."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="import CRM CSV exports (files or folders) into SQLite")
    _add_db(p)
    p.add_argument("paths", nargs="+", help="CSV files or folders of them")
    p.add_argument("--as-of", type=_as_of, help="the export's date (default: its latest date)")
    p.add_argument("--encoding", default="utf-8", help="file encoding (default utf-8)")
    p.add_argument("--preset", help="force a column preset (default: detected from the header)")

    p = sub.add_parser("demo", help="write the demo CRM exports (deterministic)")
    _add_db(p)
    p.add_argument("--load", action="store_true", help="also import them into --db")
    p.add_argument("--out", type=Path, default=Path("revbot-demo"), help="folder to write")
    p.add_argument("--deals", type=int, default=DemoConfig.deals, help="number of deals")
    p.add_argument("--seed", type=int, default=DemoConfig.seed)
    p.add_argument("--daily", type=int, default=DemoConfig.daily_exports, help="daily exports")
    p.add_argument("--no-weekly", action="store_true", help="skip the weekly exports")

    p = sub.add_parser("imports", help="list the import log")
    _add_db(p)

    p = sub.add_parser("quarantine", help="show the rows set aside by imports")
    _add_db(p)
    p.add_argument("--import-id", type=int, help="only this import")
    p.add_argument("--limit", type=int, default=50)

    p = sub.add_parser("train", help="evaluate over past cutoffs and train the win model")
    _add_db(p)
    _add_artifacts(p)
    p.add_argument("--cutoffs", type=int, default=4, help="number of evaluation cutoffs")

    p = sub.add_parser("score", help="score every open deal and save the run")
    _add_db(p)
    _add_artifacts(p)
    p.add_argument("--as-of", type=_as_of, help="score as of this day (default: latest data)")
    p.add_argument("--explain-top", type=int, default=1000, help="deals to explain (by risk)")

    p = sub.add_parser("forecast", help="P10/P50/P90 revenue forecast, table and fan chart")
    _add_db(p)
    _add_artifacts(p)
    p.add_argument("--out", type=Path, default=Path("revbot-out"), help="folder for the chart")
    p.add_argument("--as-of", type=_as_of, help="forecast as of this day (default: latest data)")
    p.add_argument("--by", choices=["region", "manager", "rep"], help="break the quarter down")
    p.add_argument("--scenarios", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target", type=float, help="this quarter's target, drawn on the chart")
    p.add_argument(
        "--backtest", action="store_true", help="backtest on past cutoffs first (and refit)"
    )

    p = sub.add_parser(
        "digest",
        help="the morning job: load the pipeline and render the digest (terminal + files)",
    )
    _add_db(p)
    p.add_argument("--out", type=Path, default=Path("revbot-out"), help="folder for the files")
    _add_artifacts(p)
    p.add_argument(
        "--demo",
        action="store_true",
        help="load the demo data first (done anyway when the database is empty)",
    )
    p.add_argument("--top", type=int, default=10, help="deals listed")
    return parser


def _add_artifacts(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--artifacts",
        type=Path,
        default=None,
        help="folder of the model and its report (default: $REVBOT_ARTIFACTS, else ./artifacts)",
    )


def _artifacts(args: argparse.Namespace) -> Path:
    return args.artifacts or Path(os.environ.get("REVBOT_ARTIFACTS") or "artifacts")


def _db(args: argparse.Namespace):
    return store.connect(args.db or store.default_db_path())


def _print_results(results: list[FileResult]) -> None:
    for r in results:
        print(r.summary())
        for note in r.notes if r.status == "imported" else ():
            print(f"    note: {note}")
        for rej in r.set_aside[:SHOW_SET_ASIDE]:
            print(f"    set aside line {rej.line}: {rej.reason}")
        if len(r.set_aside) > SHOW_SET_ASIDE:
            print(f"    ... and {len(r.set_aside) - SHOW_SET_ASIDE} more")
    imported = [r for r in results if r.status == "imported"]
    read = sum(r.rows_read for r in imported)
    accepted = sum(r.rows_accepted for r in imported)
    aside = sum(r.rows_set_aside for r in imported)
    print(f"total: {read} rows read = {accepted} accepted + {aside} set aside")
    if aside:
        print("set-aside rows are kept verbatim: `revbot quarantine` lists them")


def cmd_ingest(args: argparse.Namespace) -> int:
    config = load_config(config_path(args.config))
    presets = apply_overrides(BUILTIN, config.get("presets", {}))
    db = _db(args)
    results = ingest_files(
        db, args.paths, as_of=args.as_of, encoding=args.encoding, presets=presets,
        preset=args.preset,
    )  # fmt: skip
    _print_results(results)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    cfg = DemoConfig(
        deals=args.deals, seed=args.seed, daily_exports=args.daily,
        weekly_exports=not args.no_weekly,
    )  # fmt: skip
    counts = write_demo(args.out, cfg)
    print(
        f"demo CRM written to {args.out}/: {len(counts)} files, "
        f"{counts['sales_pipeline.csv']} deals as of {cfg.end}"
    )
    if args.load:
        _print_results(ingest_files(_db(args), [args.out, args.out / "exports"]))
    else:
        print(f"load it with: revbot ingest {args.out} {args.out}/exports")
    return 0


def cmd_imports(args: argparse.Namespace) -> int:
    db = _db(args)
    for row in store.import_log(db):
        print(
            f"#{row['id']} {row['file_name']} ({row['table_name']}, {row['preset']}): "
            f"{row['rows_read']} read = {row['rows_accepted']} accepted + "
            f"{row['rows_set_aside']} set aside; as of {row['as_of'] or '-'}"
        )
    return 0


def cmd_quarantine(args: argparse.Namespace) -> int:
    db = _db(args)
    rows = store.quarantined(db, args.import_id, args.limit)
    for r in rows:
        print(f"{r['file_name']}:{r['line']} (import #{r['import_id']}): {r['reason']}")
        print(f"    {r['raw'].rstrip()}")
    if not rows:
        print("no rows set aside")
    return 0


def _train(db, folder: Path, n_cutoffs: int = 4) -> None:
    from scoring import artifact, report
    from scoring.features import prepare
    from scoring.train import train

    crm = prepare(store.load_crm(db))
    training = train(crm, n_cutoffs)
    meta = {**training.meta, "database": {"fingerprint": store.fingerprint(db)}}
    artifact.save(training.model, folder, meta)
    path = report.write(
        training, folder, source=str(db.conn.execute("PRAGMA database_list").fetchone()[2])
    )
    print(training.summary.round(4).to_string())
    print(f"model and report written to {folder}/ ({path.name}, reliability.png)")


def cmd_train(args: argparse.Namespace) -> int:
    _train(_db(args), _artifacts(args), args.cutoffs)
    return 0


def _score(
    db, folder: Path, as_of: date | None = None, explain_top: int = 1000, loaded=None
) -> int:
    import pandas as pd

    from scoring import artifact, scorer
    from scoring.features import prepare

    model, meta = loaded or artifact.load(folder)
    crm = prepare(store.load_crm(db))
    notes = artifact.check_fits_data(
        meta, crm.deals["product"].dropna().unique().tolist(), store.fingerprint(db)
    )
    run = scorer.score(crm, model, meta["references"], as_of, explain_top)
    run_id = store.write_score_run(
        db,
        as_of=run.as_of,
        scores=run.scores,
        model_hash=meta["trained_on"]["hash"],
        confidence=scorer.confidence_text(model),
        base_rate=model.base_rate,
        notes="\n".join(notes),
    )
    for note in notes:
        print(f"note: {note}")
    print(
        f"score run #{run_id}: {len(run.scores):,} open deals as of "
        f"{pd.Timestamp(run.as_of).date()}; {scorer.confidence_text(model)}"
    )
    return run_id


def cmd_score(args: argparse.Namespace) -> int:
    _score(_db(args), _artifacts(args), args.as_of, args.explain_top)
    return 0


def _ensure_model(db, folder: Path):
    """The saved model, trained first if there is none (or it does not fit)."""
    from scoring import artifact

    try:
        return artifact.load(folder)
    except ModelMismatchError as exc:
        print(f"training the win model first ({exc})")
        _train(db, folder)
        return artifact.load(folder)


def _backtest(crm, folder: Path) -> dict:
    import json

    from forecasting import report as forecast_report
    from forecasting.backtest import backtest

    bt = backtest(crm)
    folder.mkdir(parents=True, exist_ok=True)
    forecast_report.write(bt, folder)
    config = {"sigma": bt.sigma, "data_end": crm.data_end.date().isoformat()}
    (folder / "forecast.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    print(bt.summary.round(3).to_string(index=False))
    print(f"backtest written to {folder}/forecast_backtest.md (shared shock sigma {bt.sigma})")
    return config


def cmd_forecast(args: argparse.Namespace) -> int:
    import json

    import pandas as pd

    from forecasting.chart import fan_chart, money
    from forecasting.forecast import forecast
    from scoring.features import features_at, prepare

    db = _db(args)
    folder = _artifacts(args)
    model, _ = _ensure_model(db, folder)
    crm = prepare(store.load_crm(db))
    settings = folder / "forecast.json"
    if args.backtest or not settings.exists():
        if not args.backtest:
            print("no backtest yet: running it to fit the forecast's shared shock")
        config = _backtest(crm, folder)
    else:
        config = json.loads(settings.read_text(encoding="utf-8"))
    as_of = pd.Timestamp(args.as_of) if args.as_of else crm.data_end
    f = features_at(crm, as_of)
    fc = forecast(crm, as_of, f, model.predict(f), model.base_rate, sigma=config["sigma"],
                  scenarios=args.scenarios, seed=args.seed, by=args.by)  # fmt: skip
    shown = fc.table[fc.table["kind"] != "cumulative"]
    print(
        f"forecast as of {as_of.date()}: {fc.open_deals:,} open deals, {fc.scenarios:,} scenarios"
    )
    print(f"{'period':<22}{'won so far':>12}{'P10':>12}{'P50':>12}{'P90':>12}")
    for _, r in shown.iterrows():
        print(f"{r['period']:<22}{money(r['won_to_date']):>12}{money(r['p10']):>12}"
              f"{money(r['p50']):>12}{money(r['p90']):>12}")  # fmt: skip
    if fc.by_group is not None:
        q = fc.by_group[fc.by_group["kind"] == "quarter"]
        print(f"\nopen pipeline by {args.by} (excludes new deals and revenue won so far):")
        for _, r in q.iterrows():
            print(f"  {r['group']:<24}{r['period']:<10}{money(r['p10']):>10}"
                  f"{money(r['p50']):>10}{money(r['p90']):>10}")  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    png = fan_chart(fc.table, crm.deals, as_of, args.target)
    (args.out / "forecast.png").write_bytes(png)
    fc.table.to_csv(args.out / "forecast.csv", index=False)
    print(f"written: {args.out / 'forecast.png'}, {args.out / 'forecast.csv'}")
    return 0


def cmd_digest(args: argparse.Namespace) -> int:
    import json

    from bot.blocks import digest_message
    from bot.digest_text import render

    db = _db(args)
    if args.demo or store.latest_as_of(db) is None:
        demo_dir = args.out / "demo-crm"
        write_demo(demo_dir)
        print(f"database empty: loading the demo CRM exports written to {demo_dir}/")
        results = ingest_files(db, [demo_dir, demo_dir / "exports"])
        imported = [r for r in results if r.status == "imported"]
        print(
            f"imported {len(imported)} files: {sum(r.rows_read for r in imported)} rows read = "
            f"{sum(r.rows_accepted for r in imported)} accepted + "
            f"{sum(r.rows_set_aside for r in imported)} set aside"
        )
    summary = store.pipeline_summary(db)
    print(
        f"pipeline loaded: {summary.open_deals:,} open deals, value "
        f"{summary.open_value:,.0f}, as of {summary.as_of}"
    )
    folder = _artifacts(args)
    run_id = _score(db, folder, loaded=_ensure_model(db, folder))
    run = store.latest_run(db)
    scores = store.run_scores(db, run_id)
    text = render(run, scores, run["confidence"], args.top)
    changes = store.risk_changes(db, run_id).dropna(subset=["previous_risk"])
    previous = dict(zip(changes["deal_id"], changes["previous_risk"], strict=True))
    message = digest_message(run, scores, run["confidence"], previous, args.top)
    args.out.mkdir(parents=True, exist_ok=True)
    print()
    print(text)
    (args.out / "digest.txt").write_text(text, encoding="utf-8")
    (args.out / "digest.json").write_text(json.dumps(message, indent=2), encoding="utf-8")
    print(f"written: {args.out / 'digest.txt'}, {args.out / 'digest.json'} (Block Kit)")
    return 0


COMMANDS = {
    "ingest": cmd_ingest,
    "demo": cmd_demo,
    "imports": cmd_imports,
    "quarantine": cmd_quarantine,
    "train": cmd_train,
    "score": cmd_score,
    "forecast": cmd_forecast,
    "digest": cmd_digest,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (IngestError, ConfigError, PresetError, ModelMismatchError) as exc:
        print(f"revbot {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
