"""The command line's data commands (`ingest`, `demo`, `imports`, `quarantine`, `digests`,
`export`) and the helpers every command shares: which database, artifacts and settings.

Apart from the parser (`bot/cli.py`) so that `revbot --help` loads none of this.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bot import export, ledger
from bot.config import ConfigError, SetupError, config_path, load_config
from bot.crm_links import set_default_template
from bot.export import ExportError
from bot.preflight import open_db, require_deals
from dataset import database, import_log, retention, score_runs
from dataset.demo import DemoConfig, write_demo
from dataset.ingest import FileResult, ingest_files
from dataset.money import plural, set_default_currency
from dataset.presets import BUILTIN, apply_overrides

SHOW_SET_ASIDE = 10


def artifacts_of(args: argparse.Namespace) -> Path:
    return args.artifacts or Path(os.environ.get("REVBOT_ARTIFACTS") or "artifacts")


def db_path_of(args: argparse.Namespace) -> Path:
    return Path(args.db or database.default_db_path())


def db_of(args: argparse.Namespace, *, create: bool = False):
    """The database of `--db`; a command that only reads refuses a path where there is none
    (a typo would otherwise create an empty database and report an empty pipeline)."""
    return open_db(db_path_of(args), create=create)


def db_with_deals(args: argparse.Namespace):
    db = db_of(args)
    require_deals(db, db_path_of(args))
    return db


def print_results(results: list[FileResult]) -> None:
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


def settings_of(args: argparse.Namespace):
    from dataclasses import replace

    from bot.settings import dask_of, settings_from

    config = load_config(config_path(args.config))
    settings = settings_from(config)
    if getattr(args, "dask", None) is not None:  # `--dask ADDRESS` overrides [dask] address
        settings = replace(settings, dask=dask_of(config, args.dask))
    set_default_currency(settings.currency)  # set once, before anything is rendered or scored
    set_default_template(settings.deal_url)  # links to the CRM's deals, likewise (None: none)
    return settings, config.get("presets", {})


def services_of(args: argparse.Namespace, settings=None, presets=None):
    """The writer and the readers on `--db` (see `bot.services`)."""
    from bot.services import build

    if settings is None:
        settings, presets = settings_of(args)
    verbose = getattr(args, "verbose", False)
    return build(db_path_of(args), artifacts_of(args), settings, presets, verbose=verbose)


def read_run(args: argparse.Namespace):
    """(the reader, the saved run a report reads)."""
    db_with_deals(args)
    reader = services_of(args).reader
    latest = reader.latest()
    if latest is None:
        raise SetupError(
            f"no score run yet in {db_path_of(args)}: make one with `revbot score` (or `revbot "
            "digest`), then ask again"
        )
    run_id = getattr(args, "run", None)
    if run_id is None:
        return reader, latest
    saved = reader.run(run_id)
    if saved is None:
        raise SetupError(f"no score run #{run_id} (the latest is #{latest.run_id})")
    gone = retention.pruned(reader.db(), run_id)
    if gone is not None:
        raise SetupError(
            f"score run #{run_id}'s per-deal rows were removed on {gone['pruned_at'][:10]} by the "
            f"retention policy ({gone['rule']}; [retention] in revbot.toml); its forecast's "
            "quarters are kept in the track record (`revbot forecast --accuracy`)"
        )
    return reader, saved


def saved_run(args: argparse.Namespace):
    """The saved run a report reads (`--run`, else the latest), or a SetupError saying how to
    make one."""
    return read_run(args)[1]


def channel_of(settings, channel_id: str):
    """A configured channel by id, or a ConfigError listing the configured ones."""
    for c in settings.channels:
        if c.id == channel_id:
            return c
    known = ", ".join(c.id for c in settings.channels) or "none"
    raise ConfigError(f"no [[channels]] entry with id {channel_id!r} (configured: {known})")


def configure_logging(verbose: bool = False) -> None:
    import logging

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("urllib3", "slack_sdk.web.base_client", "apscheduler.executors"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # a warning per request queued: a burst is expected, the server is sized for it
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)


def cmd_ingest(args: argparse.Namespace) -> int:
    from bot.settings import import_limits

    config = load_config(config_path(args.config))
    presets = apply_overrides(BUILTIN, config.get("presets", {}))
    limits = import_limits(config)
    db = db_of(args, create=True)
    results = ingest_files(
        db, args.paths, as_of=args.as_of, encoding=args.encoding, presets=presets,
        preset=args.preset, limits=limits,
    )  # fmt: skip
    print_results(results)
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
        print_results(ingest_files(db_of(args, create=True), [args.out, args.out / "exports"]))
    else:
        print(f"load it with: revbot ingest {args.out} {args.out}/exports")
    return 0


def cmd_imports(args: argparse.Namespace) -> int:
    db = db_of(args)
    for row in import_log.import_log(db):
        print(
            f"#{row['id']} {row['file_name']} ({row['table_name']}, {row['preset']}): "
            f"{row['rows_read']} read = {row['rows_accepted']} accepted + "
            f"{row['rows_set_aside']} set aside; as of {row['as_of'] or '-'}"
        )
    return 0


def cmd_quarantine(args: argparse.Namespace) -> int:
    db = db_of(args)
    rows = import_log.quarantined(db, args.import_id, args.limit)
    for r in rows:
        print(f"{r['file_name']}:{r['line']} (import #{r['import_id']}): {r['reason']}")
        print(f"    {r['raw'].rstrip()}")
    if not rows:
        print("no rows set aside")
    return 0


def cmd_digests(args: argparse.Namespace) -> int:
    rows = ledger.digest_records(db_of(args))
    for r in rows:
        extra = f" ts {r['slack_ts']}" if r["slack_ts"] else ""
        error = f" error: {r['error']}" if r["error"] else ""
        print(f"{r['digest_date']} {r['channel_id']}: {r['status']} (run #{r['run_id']}, "
              f"{plural(r['attempts'], 'attempt')}, {r['claimed_by']}){extra}{error}")  # fmt: skip
    if not rows:
        print("no digest posted yet")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    """A consistent copy of the database, safe while revbot runs (SQLite's online backup)."""
    from dataset.backup import backup

    done = backup(Path(args.db or database.default_db_path()), Path(args.path))
    print(f"backed up to {done.path}: {done.size / 1e6:,.1f} MB in {done.seconds:.1f} s, "
          "integrity checked")  # fmt: skip
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
    if (gone := retention.pruned(db, run["run_id"])) is not None:
        raise ExportError(f"score run #{run['run_id']}'s per-deal rows were removed on "
                          f"{gone['pruned_at'][:10]} by the retention policy ({gone['rule']})")  # fmt: skip
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
