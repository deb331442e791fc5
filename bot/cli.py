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

from bot import export, ledger
from bot.config import ConfigError, SetupError, config_path, load_config
from bot.export import ExportError
from bot.preflight import PreflightError, check_truth, open_db, require_deals
from bot.settings import Scope
from dataset import database, deal_history, import_log, score_runs
from dataset.demo import DemoConfig, write_demo
from dataset.ingest import FileResult, IngestError, ingest_files
from dataset.money import default_currency, plural, set_default_currency
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


def _risk(text: str) -> float:
    """A risk threshold: a number from 0 to 100."""
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 100, not {text!r}") from None
    if not 0 <= x <= 100:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 100, not {text}")
    return x


def _count(text: str) -> int:
    """A whole number of 1 or more (`--top -3` would otherwise reach pandas and fail there)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number, 1 or more, not {text!r}"
        ) from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number, 1 or more, not {n}")
    return n


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("revbot")
    except PackageNotFoundError:  # run from a checkout that was not installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="revbot", description="Slack-native revenue intelligence for sales leadership."
    )
    parser.add_argument("--version", action="version", version=f"revbot {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "deal",
        help="explain one deal as /deal does (e.g. `revbot deal D0123` or `revbot deal Acme`)",
    )
    _add_db(p)
    _add_artifacts(p)
    p.add_argument("query", nargs="+", help="deal id (any case) or part of an account name")

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
    p.add_argument("--deals", type=_count, default=DemoConfig.deals, help="number of deals")
    p.add_argument("--seed", type=int, default=DemoConfig.seed)
    p.add_argument("--daily", type=int, default=DemoConfig.daily_exports, help="daily exports")
    p.add_argument("--no-weekly", action="store_true", help="skip the weekly exports")

    p = sub.add_parser("imports", help="list the import log")
    _add_db(p)

    p = sub.add_parser("quarantine", help="show the rows set aside by imports")
    _add_db(p)
    p.add_argument("--import-id", type=int, help="only this import")
    p.add_argument("--limit", type=_count, default=50)

    p = sub.add_parser("train", help="evaluate over past cutoffs and train the win model")
    _add_db(p)
    _add_artifacts(p)
    p.add_argument("--cutoffs", type=_count, default=4, help="number of evaluation cutoffs")
    p.add_argument(
        "--truth",
        type=Path,
        help="generated data only: its truth/probabilities.csv, to report the figures against it",
    )
    p.add_argument(
        "--backtest",
        action="store_true",
        help="also backtest the forecast on past cutoffs and refit its shared shock",
    )

    p = sub.add_parser("score", help="score every open deal, forecast, and save the run")
    _add_db(p)
    _add_artifacts(p)
    p.add_argument("--as-of", type=_as_of, help="score as of this day (default: latest data)")
    p.add_argument("--explain-top", type=_count, help="deals given reasons (by value at risk)")
    p.add_argument("--json", action="store_true", help="print the run and its top five as JSON")

    p = sub.add_parser(
        "forecast", help="P10/P50/P90 revenue forecast of the saved run, table and fan chart"
    )
    _add_db(p)
    _add_artifacts(p)
    p.add_argument("--out", type=Path, default=Path("revbot-out"), help="folder for the chart")
    p.add_argument("--run", type=int, help="score run number (default: the latest)")
    p.add_argument("--by", choices=["region", "manager", "rep"], help="break the quarter down")
    p.add_argument("--target", type=float, help="this quarter's target, drawn on the chart")
    p.add_argument("--json", action="store_true", help="print the forecast as JSON")

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
    p.add_argument("--top", type=_count, default=10, help="deals listed (1 or more)")
    p.add_argument(
        "--min-risk", type=_risk, default=0, help="list only deals at this risk or more (0-100)"
    )
    p.add_argument(
        "--channel", help="preview this configured channel's digest (its scope, top and risk)"
    )
    p.add_argument("--json", action="store_true", help="print the Block Kit message as JSON")

    p = sub.add_parser(
        "serve",
        help="run the Slack bot and its morning digests (Socket Mode if SLACK_APP_TOKEN is set, "
        "else HTTP at POST /slack/events); GET /healthz either way",
    )
    _add_db(p)
    _add_artifacts(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=3000, help="port to listen on (default 3000)")
    p.add_argument("--no-scheduler", action="store_true", help="answer commands, post no digests")
    p.add_argument("--verbose", action="store_true", help="debug logging")

    p = sub.add_parser(
        "morning", help="run the morning job once now: newest export in, rescore, post digests"
    )
    _add_db(p)
    _add_artifacts(p)

    p = sub.add_parser("digests", help="list the digests posted (or claimed, or failed)")
    _add_db(p)

    p = sub.add_parser("export", help="write saved results to a file (CSV)")
    what = p.add_subparsers(dest="what", required=True)
    p = what.add_parser(
        "scores", help="a score run as CSV: one row per open deal, by rank, with its reasons"
    )
    _add_db(p)
    p.add_argument("--out", required=True, help="CSV file to write (- for standard output)")
    p.add_argument("--run", type=int, help="score run number (default: the latest)")
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


def _db_path(args: argparse.Namespace) -> Path:
    return Path(args.db or database.default_db_path())


def _db(args: argparse.Namespace, *, create: bool = False):
    """The database of `--db`; a command that only reads refuses a path where there is none
    (a typo would otherwise create an empty database and report an empty pipeline)."""
    return open_db(_db_path(args), create=create)


def _db_with_deals(args: argparse.Namespace):
    db = _db(args)
    require_deals(db, _db_path(args))
    return db


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
    from bot.settings import import_limits

    config = load_config(config_path(args.config))
    presets = apply_overrides(BUILTIN, config.get("presets", {}))
    limits = import_limits(config)
    db = _db(args, create=True)
    results = ingest_files(
        db, args.paths, as_of=args.as_of, encoding=args.encoding, presets=presets,
        preset=args.preset, limits=limits,
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
        _print_results(ingest_files(_db(args, create=True), [args.out, args.out / "exports"]))
    else:
        print(f"load it with: revbot ingest {args.out} {args.out}/exports")
    return 0


def cmd_imports(args: argparse.Namespace) -> int:
    db = _db(args)
    for row in import_log.import_log(db):
        print(
            f"#{row['id']} {row['file_name']} ({row['table_name']}, {row['preset']}): "
            f"{row['rows_read']} read = {row['rows_accepted']} accepted + "
            f"{row['rows_set_aside']} set aside; as of {row['as_of'] or '-'}"
        )
    return 0


def cmd_quarantine(args: argparse.Namespace) -> int:
    db = _db(args)
    rows = import_log.quarantined(db, args.import_id, args.limit)
    for r in rows:
        print(f"{r['file_name']}:{r['line']} (import #{r['import_id']}): {r['reason']}")
        print(f"    {r['raw'].rstrip()}")
    if not rows:
        print("no rows set aside")
    return 0


def _services(args: argparse.Namespace, settings=None, presets=None):
    """The writer and the readers on `--db` (see `bot.services`)."""
    from bot.services import build

    if settings is None:
        settings, presets = _settings(args)
    return build(_db_path(args), _artifacts(args), settings, presets)


def cmd_train(args: argparse.Namespace) -> int:
    if args.truth is not None:
        check_truth(args.truth)
    _db_with_deals(args)
    refresher = _services(args).refresher
    refresher.train(args.cutoffs, truth=args.truth, say=print)
    if args.backtest:
        refresher.backtest(say=print)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    import json

    from bot import terminal

    _db_with_deals(args)
    services = _services(args)
    say = (lambda _: None) if args.json else print
    done = services.refresher.refresh(
        say, as_of=args.as_of, explain_top=args.explain_top, force=True
    )
    saved = services.reader.run(done.run_id)
    services.reader.ensure_reasons(saved, saved.scores["deal_id"].head(5).tolist())
    top = saved.scores.head(5)
    if args.json:
        print(json.dumps(terminal.score_json(saved, top), indent=2))
        return 0
    print(f"\ntop {len(top)} by value at risk:")
    for line in terminal.score_lines(top):
        print(f"  {line}")
    return 0


def cmd_forecast(args: argparse.Namespace) -> int:
    import json

    from bot import terminal

    saved = _saved_run(args)
    groups = terminal.breakdown(saved, args.by) if args.by else []
    whole = saved.forecast(Scope("all"))
    parts = [(scope, saved.forecast(scope)) for scope in groups]
    if args.json:
        print(json.dumps(terminal.forecast_json(saved, whole, parts), indent=2))
        return 0
    for line in terminal.forecast_lines(saved, whole, parts, args.by):
        print(line)
    from forecasting.chart import fan_chart

    args.out.mkdir(parents=True, exist_ok=True)
    png = fan_chart(whole.table, whole.won, whole.as_of, args.target)
    (args.out / "forecast.png").write_bytes(png)
    whole.table.to_csv(args.out / "forecast.csv", index=False)
    print(f"written: {args.out / 'forecast.png'}, {args.out / 'forecast.csv'}")
    return 0


def _saved_run(args: argparse.Namespace):
    """The saved run a report reads (`--run`, else the latest), or a SetupError saying how to
    make one."""
    return _read(args)[1]


def _read(args: argparse.Namespace):
    """(the reader, the saved run a report reads)."""
    _db_with_deals(args)
    reader = _services(args).reader
    latest = reader.latest()
    if latest is None:
        raise SetupError(
            f"no score run yet in {_db_path(args)}: make one with `revbot score` (or `revbot "
            "digest`), then ask again"
        )
    run_id = getattr(args, "run", None)
    if run_id is None:
        return reader, latest
    saved = reader.run(run_id)
    if saved is None:
        raise SetupError(f"no score run #{run_id} (the latest is #{latest.run_id})")
    return reader, saved


def cmd_deal(args: argparse.Namespace) -> int:
    """What `/deal` answers, in the terminal (a leader's view: every deal)."""
    from bot import terminal
    from bot.listeners.commands import deal_detail
    from bot.replies import closed_reply, not_found_reply, several_reply

    reader, saved = _read(args)
    query = " ".join(args.query)
    found = saved.lookup(query, Scope("all"))
    if found.closed is not None:
        message = closed_reply(found.closed)
    elif found.several is not None:
        message = several_reply(query, found.several)
    elif found.deal is None:
        message = not_found_reply(query, found.suggestions)
    else:
        message = deal_detail(reader, saved, found.deal)
    print(terminal.plain(message))
    return 0 if found.deal is not None or found.closed is not None else 1


def _settings(args: argparse.Namespace):
    from bot.settings import settings_from

    config = load_config(config_path(args.config))
    settings = settings_from(config)
    set_default_currency(settings.currency)  # set once, before anything is rendered or scored
    return settings, config.get("presets", {})


def cmd_digest(args: argparse.Namespace) -> int:
    import json

    from bot.blocks import digest_message
    from bot.digest_text import render
    from bot.morning import compared_with, compose
    from bot.preview import preview_png
    from dataset.money import money

    settings, presets = _settings(args)
    channel = _channel(settings, args.channel) if args.channel else None
    db_path = _db_path(args)
    # the README's first run (no --db, no $REVBOT_DB) and --demo make the database; a database
    # named explicitly must exist
    named = args.db is not None or bool(os.environ.get("REVBOT_DB"))
    db = open_db(db_path, create=args.demo or not named)
    if args.demo or (deal_history.latest_as_of(db) is None and settings.exports_folder is None):
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
    services = _services(args, settings, presets)
    refreshed = services.refresher.refresh(print)  # the configured exports folder, if any
    reader = services.reader
    saved = reader.run(refreshed.run_id)
    summary = reader.pipeline_summary()
    print(
        f"pipeline loaded: {summary.open_deals:,} open deals, value "
        f"{money(summary.open_value)}, as of {summary.as_of}"
    )
    if channel is not None:  # that channel's digest as it would be posted now
        last = ledger.last_posted_run(reader.db(), channel.id, "9999-12-31")
        previous, repeat = compared_with(reader, saved.run_id, last)
        scope, top, min_risk = channel.scope, channel.top, channel.min_risk
    else:
        other = reader.previous_run(saved.run_id)
        previous, repeat = (other["run_id"] if other else None), not refreshed.new_run
        scope, top, min_risk = Scope("all"), args.top, args.min_risk
    digest = compose(
        reader, saved, scope=scope, top=top, min_risk=min_risk, previous_run=previous,
        channel_id=channel.id if channel else None, notes=refreshed.problems, repeat=repeat,
    )  # fmt: skip
    message = digest_message(digest)
    text = render(digest)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "digest.txt").write_text(text, encoding="utf-8")
    (args.out / "digest.json").write_text(json.dumps(message, indent=2), encoding="utf-8")
    (args.out / "digest.png").write_bytes(preview_png(message))
    written = [args.out / "digest.txt", args.out / "digest.json", args.out / "digest.png"]
    if args.json:
        print(json.dumps(message, indent=2))
        return 0
    print()
    print(text)
    print(f"written: {', '.join(str(p) for p in written)} (Block Kit JSON and a picture of it)")
    return 0


def _channel(settings, channel_id: str):
    """A configured channel by id, or a ConfigError listing the configured ones."""
    for c in settings.channels:
        if c.id == channel_id:
            return c
    known = ", ".join(c.id for c in settings.channels) or "none"
    raise ConfigError(f"no [[channels]] entry with id {channel_id!r} (configured: {known})")


def _logging(verbose: bool = False) -> None:
    import logging

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("urllib3", "slack_sdk.web.base_client", "apscheduler.executors"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # a warning per request queued: a burst is expected, the server is sized for it
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.serve import serve

    _logging(args.verbose)
    settings, presets = _settings(args)
    return serve(
        settings,
        presets,
        db_path=args.db or database.default_db_path(),
        artifacts=_artifacts(args),
        host=args.host,
        port=args.port,
        scheduler=not args.no_scheduler,
    )


def cmd_morning(args: argparse.Namespace) -> int:
    from bot.serve import morning_now

    _logging()
    settings, presets = _settings(args)
    outcomes = morning_now(
        settings, presets, args.db or database.default_db_path(), _artifacts(args)
    )
    for o in outcomes:
        print(f"{o.channel} {o.digest_date}: {o.status}" + (f" ({o.detail})" if o.detail else ""))
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def cmd_digests(args: argparse.Namespace) -> int:
    rows = ledger.digest_records(_db(args))
    for r in rows:
        extra = f" ts {r['slack_ts']}" if r["slack_ts"] else ""
        error = f" error: {r['error']}" if r["error"] else ""
        print(f"{r['digest_date']} {r['channel_id']}: {r['status']} (run #{r['run_id']}, "
              f"{plural(r['attempts'], 'attempt')}, {r['claimed_by']}){extra}{error}")  # fmt: skip
    if not rows:
        print("no digest posted yet")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """A reader: the saved run as it is, no training, scoring or writing to the database."""
    path = Path(args.db or database.default_db_path())
    if not path.exists():  # connecting would create an empty database
        raise ExportError(
            f"no database at {path}: import an export with `revbot ingest` and score it with "
            "`revbot score` (or run `revbot digest`), or point --db at yours"
        )
    db = open_db(path, create=False)
    latest = score_runs.latest_run(db)
    if latest is None:
        raise ExportError(
            f"no score run yet in {path}: make one with `revbot score` (or `revbot digest`), "
            "then export again"
        )
    run = latest if args.run is None else score_runs.run_of(db, args.run)
    if run is None:
        raise ExportError(f"no score run #{args.run} in {path} (the latest is #{latest['run_id']})")
    scores = score_runs.run_scores(db, run["run_id"])
    if args.out == "-":
        try:
            written = export.write_csv(scores, run, sys.stdout)
            sys.stdout.flush()
        except BrokenPipeError:  # `| head`: the reader stopped (Python's documented recipe)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        print(export.summary_line(written, run, "standard output"), file=sys.stderr)
        return 0
    out = Path(args.out)
    partial = out.with_name(f".{out.name}.partial")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        # utf-8-sig: the byte-order mark tells Excel the file is UTF-8 (accents survive)
        with partial.open("w", encoding="utf-8-sig", newline="") as fh:
            written = export.write_csv(scores, run, fh)
        partial.replace(out)  # a reader of `out` never sees half a file
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise ExportError(f"cannot write {out}: {exc.strerror or exc}") from exc
    print(export.summary_line(written, run, str(out)))
    return 0


COMMANDS = {
    "deal": cmd_deal,
    "ingest": cmd_ingest,
    "demo": cmd_demo,
    "imports": cmd_imports,
    "quarantine": cmd_quarantine,
    "train": cmd_train,
    "score": cmd_score,
    "forecast": cmd_forecast,
    "digest": cmd_digest,
    "serve": cmd_serve,
    "morning": cmd_morning,
    "digests": cmd_digests,
    "export": cmd_export,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    currency = default_currency()
    try:
        return COMMANDS[args.command](args)
    except BrokenPipeError:  # `| head`: the reader stopped (Python's documented recipe)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (
        IngestError, ConfigError, PresetError, ModelMismatchError, SetupError, ExportError,
        PreflightError,
    ) as exc:  # fmt: skip
        print(f"revbot {args.command}: error: {exc}", file=sys.stderr)
        return 2
    finally:
        set_default_currency(currency)  # a command's currency ends with it (callers in-process)


if __name__ == "__main__":
    sys.exit(main())
