"""`revbot sync` and `revbot syncs`: read the CRM directly (issue 13) and list past syncs.

Why apart from the CSV commands: a sync needs a CRM client library and credentials from the
environment, and says different things (what was read, what changed, the days imported).
"""

from __future__ import annotations

import argparse
import os

from bot.cli_data import db_of, db_path_of, print_results
from bot.config import ConfigError, config_path, load_config
from bot.settings import crm_of, import_limits
from dataset import crm_mirror, database
from dataset.crm_sync import reader_from_env, sync


def cmd_sync(args: argparse.Namespace) -> int:
    config = load_config(config_path(args.config))
    kind = args.crm or crm_of(config)
    if kind is None:
        raise ConfigError(
            'no CRM to sync: set [crm] kind = "salesforce" (or "hubspot") in revbot.toml, or '
            "give --crm; the credentials go in the environment (deploy/README.md)"
        )
    reader = reader_from_env(kind, os.environ)
    if args.dry_run and not db_path_of(args).exists():  # nothing written: not even the file
        db = database.connect(":memory:")
    else:
        db = db_of(args, create=True)
    result = sync(
        db, reader, dry_run=args.dry_run, overrides=config.get("presets", {}),
        limits=import_limits(config), say=print,
    )  # fmt: skip
    if args.verbose and result.imports:
        print_results(result.imports)
    print(result.summary())
    return 1 if result.status == "stopped" else 0


def cmd_syncs(args: argparse.Namespace) -> int:
    rows = crm_mirror.runs(db_of(args), args.limit)
    for r in rows:
        when = (r["started_at"] or "")[:16].replace("T", " ")
        days = f"; {r['days']} day(s) imported, as of {r['as_of']}" if r["days"] else ""
        note = f"; {r['note']}" if r["note"] else ""
        print(
            f"#{r['id']} {r['crm']} {when} UTC {r['status']}: {r['records']:,} opportunities read "
            f"({r['new']:,} new), {r['changes']:,} history rows, {r['removed']:,} deleted or "
            f"merged{days}{note}"
        )
    if not rows:
        print("no CRM sync yet (revbot sync)")
    return 0
