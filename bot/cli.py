"""`revbot` command line: the parser, its help with an example for every option, and `main`.

One database (`--db`) serves every subcommand, the scheduler and the bot. This module imports
nothing heavy, so `revbot --help` answers at once; a command's module (`bot.cli_data`,
`bot.cli_reports`) is loaded only when that command runs. Errors from the core are translated
here, once, into a message and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from bot.cli_help import COMMON, EXAMPLES
from dataset.demo_config import DemoConfig

# `scoring.hygiene.RULE_NAMES`, spelled out so that `--help` loads no pandas (a test compares)
HYGIENE_RULES = ("close_date_passed", "no_next_step", "no_activity", "stage_too_long",
                 "amount_missing", "close_date_pushed")  # fmt: skip


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


def _amount(text: str) -> float:
    """A money amount of 0 or more, in the exports' currency."""
    try:
        x = float(text.replace(",", "").replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an amount like 1500000, not {text!r}") from None
    if not x >= 0:
        raise argparse.ArgumentTypeError(f"expected an amount of 0 or more, not {text}")
    return x


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("revbot")
    except PackageNotFoundError:  # run from a checkout that was not installed
        return "unknown"


def _command(sub, name: str) -> argparse.ArgumentParser:
    """A subcommand with its help line and its examples."""
    summary, examples = EXAMPLES[name]
    return sub.add_parser(
        name,
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
        epilog="examples:\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _add_db(p: argparse.ArgumentParser, config: bool = True) -> None:
    """`--db`, and `--config` for a command that reads the settings."""
    p.add_argument(
        "--db",
        type=Path,
        default=None,
        metavar="FILE",
        help="SQLite file (default: $REVBOT_DB, else ./revbot.db)",
    )
    if not config:
        return
    p.add_argument(
        "--config",
        metavar="FILE",
        help="revbot.toml (default: $REVBOT_CONFIG, else ./revbot.toml; none is fine)",
    )


def _add_artifacts(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--artifacts",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder of the model and its reports (default: $REVBOT_ARTIFACTS, else ./artifacts)",
    )


def _add_dask(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--dask",
        metavar="ADDRESS",
        help=f"{what} on the Dask cluster of this scheduler, e.g. tcp://10.0.0.5:8786 (default: "
        "[dask] address in revbot.toml, else here; needs revbot[dask])",
    )


def _add_verbose(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--verbose", action="store_true", help=what)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="revbot",
        description="Slack-native revenue intelligence: which deals need attention, why, and what "
        "that does to the forecast.",
        epilog=COMMON,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"revbot {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _command(sub, "deal")
    _add_db(p)
    _add_artifacts(p)
    p.add_argument("query", nargs="+", help="deal id (any case) or part of an account name")

    p = _command(sub, "ingest")
    _add_db(p)
    p.add_argument("paths", nargs="+", metavar="PATH", help="CSV files or folders of them")
    p.add_argument(
        "--as-of", type=_as_of, metavar="YYYY-MM-DD", help="the export's date (default: its latest)"
    )
    p.add_argument("--encoding", default="utf-8", help="the files' encoding (default: utf-8)")
    p.add_argument(
        "--preset",
        help="force a column preset: maventech, salesforce, hubspot or one from revbot.toml "
        "(default: detected from the header)",
    )

    defaults = DemoConfig()
    p = _command(sub, "demo")
    _add_db(p, config=False)
    p.add_argument("--load", action="store_true", help="also import the files into --db")
    p.add_argument(
        "--out", type=Path, default=Path("revbot-demo"), metavar="DIR",
        help="folder to write (default: revbot-demo)",
    )  # fmt: skip
    p.add_argument(
        "--deals", type=_count, default=defaults.deals, help=f"deals (default: {defaults.deals})"
    )
    p.add_argument(
        "--seed", type=int, default=defaults.seed,
        help=f"random seed: another seed, another pipeline (default: {defaults.seed})",
    )  # fmt: skip
    p.add_argument(
        "--daily", type=int, default=defaults.daily_exports, metavar="N",
        help=f"daily exports at the end (default: {defaults.daily_exports})",
    )  # fmt: skip
    p.add_argument("--no-weekly", action="store_true", help="skip the weekly exports")

    p = _command(sub, "sync")
    _add_db(p)
    p.add_argument(
        "--crm", choices=["salesforce", "hubspot"], help="the CRM to read (default: [crm] kind)"
    )
    p.add_argument("--dry-run", action="store_true", help="read and count; write nothing")
    _add_verbose(p, "also print each day's import line")

    p = _command(sub, "syncs")
    _add_db(p, config=False)
    p.add_argument("--limit", type=_count, default=20, help="syncs shown (default: 20)")

    p = _command(sub, "imports")
    _add_db(p, config=False)

    p = _command(sub, "quarantine")
    _add_db(p, config=False)
    p.add_argument("--import-id", type=int, metavar="N", help="only this import (see `imports`)")
    p.add_argument("--limit", type=_count, default=50, help="rows shown (default: 50)")

    p = _command(sub, "train")
    _add_db(p)
    _add_artifacts(p)
    p.add_argument(
        "--cutoffs", type=_count, default=4, metavar="N",
        help="past cutoffs to evaluate on (default: 4)",
    )  # fmt: skip
    p.add_argument(
        "--truth",
        type=Path,
        metavar="CSV",
        help="generated data only: its truth/probabilities.csv, to report the figures against it",
    )
    p.add_argument(
        "--backtest",
        action="store_true",
        help="also backtest the forecast on past cutoffs and refit the width of its band",
    )
    _add_dask(p, "build the training rows and fit the model")

    p = _command(sub, "score")
    _add_db(p)
    _add_artifacts(p)
    p.add_argument(
        "--as-of", type=_as_of, metavar="YYYY-MM-DD", help="score as of this day (default: latest)"
    )
    p.add_argument(
        "--explain-top", type=_count, metavar="N",
        help="deals given reasons, by value at risk (default: [model] explain_top)",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the run and its top five as JSON")
    _add_dask(p, "compute features, win probability and risk (and retrain, when due)")
    _add_verbose(p, "also print the model's evaluation tables when it is retrained")

    p = _command(sub, "forecast")
    _add_db(p)
    _add_artifacts(p)
    p.add_argument(
        "--out", type=Path, default=Path("revbot-out"), metavar="DIR",
        help="folder for the chart and the CSV (default: revbot-out)",
    )  # fmt: skip
    p.add_argument("--run", type=int, metavar="N", help="score run number (default: the latest)")
    p.add_argument(
        "--by", choices=["region", "manager", "rep"], help="each part's own forecast, and share"
    )
    p.add_argument(
        "--target", type=_amount, metavar="AMOUNT",
        help="this quarter's target, drawn on the chart (in the exports' currency)",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the forecast as JSON")
    p.add_argument(
        "--movement", action="store_true",
        help="also what moved in this quarter's pipeline (since last week, since the quarter "
        "began) and its waterfall, movement.png",
    )  # fmt: skip
    p.add_argument(
        "--accuracy", action="store_true",
        help="also the forecast's track record: each closed quarter's actual against the "
        "forecasts and calls made 13, 8 and 4 weeks before its end (as /forecast accuracy)",
    )  # fmt: skip

    p = _command(sub, "digest")
    _add_db(p)
    _add_artifacts(p)
    p.add_argument(
        "--out", type=Path, default=Path("revbot-out"), metavar="DIR",
        help="folder for digest.txt, digest.json and digest.png (default: revbot-out)",
    )  # fmt: skip
    p.add_argument(
        "--demo",
        action="store_true",
        help="load the demo data first (done anyway when the database is empty)",
    )
    p.add_argument("--top", type=_count, default=10, help="deals listed (default: 10)")
    p.add_argument(
        "--min-risk", type=_risk, default=0, metavar="RISK",
        help="list only deals at this risk or more, 0-100 (default: 0)",
    )  # fmt: skip
    p.add_argument(
        "--channel",
        metavar="ID",
        help="preview this configured channel's digest (its scope, top and risk threshold)",
    )
    p.add_argument("--json", action="store_true", help="print the Block Kit message as JSON")
    _add_verbose(p, "also print the model's evaluation tables when it is trained")

    p = _command(sub, "serve")
    _add_db(p)
    _add_artifacts(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=3000, help="port to listen on (default: 3000)")
    p.add_argument("--no-scheduler", action="store_true", help="answer commands, post no digests")
    _add_verbose(p, "debug logging")

    p = _command(sub, "morning")
    _add_db(p)
    _add_artifacts(p)
    _add_verbose(p, "also log the model's evaluation tables when it is retrained")

    p = _command(sub, "hygiene")
    _add_db(p)
    _add_artifacts(p)
    p.add_argument("--rule", choices=HYGIENE_RULES, help="only this rule's count and deals")
    p.add_argument("--limit", type=_count, default=5, help="deals listed per rule (default: 5)")
    p.add_argument("--run", type=int, metavar="N", help="score run number (default: the latest)")

    p = _command(sub, "nudges")
    _add_db(p)
    _add_artifacts(p)
    p.add_argument("--preview", action="store_true",
                   help="also draw the nudge the worst deal would get (OUT/nudge.png)")  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("revbot-out"), metavar="DIR",
                   help="folder for --preview's picture (default: revbot-out)")  # fmt: skip

    p = _command(sub, "digests")
    _add_db(p, config=False)

    p = _command(sub, "backup")
    p.add_argument("path", metavar="PATH", help="file (or folder) to write the copy to")
    _add_db(p, config=False)

    p = _command(sub, "roster")
    _add_db(p)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--build", action="store_true",
        help="find each CRM owner's (and people CSV row's) Slack member by e-mail and print the "
        "[roster] table; revbot.toml is never edited (needs SLACK_BOT_TOKEN)",
    )  # fmt: skip
    what.add_argument(
        "--check", action="store_true",
        help="list the open deals' owners and managers the roster lacks, roster names with no "
        "open deal and (with SLACK_BOT_TOKEN) member ids Slack does not know; exit code 1 if any",
    )  # fmt: skip
    p.add_argument(
        "--write", metavar="PATH",
        help="with --build: write the [roster] table to PATH instead of printing it",
    )  # fmt: skip

    p = _command(sub, "export")
    what = p.add_subparsers(dest="what", required=True, metavar="WHAT")
    p = _command(what, "scores")
    _add_db(p, config=False)
    p.add_argument(
        "--out", required=True, metavar="FILE", help="CSV file to write (- for standard output)"
    )
    p.add_argument("--run", type=int, metavar="N", help="score run number (default: the latest)")
    return parser


def _commands() -> dict:
    from bot import cli_data as d
    from bot import cli_nudges as n
    from bot import cli_reports as r
    from bot import cli_roster as o
    from bot import cli_sync as s

    return {
        "sync": s.cmd_sync, "syncs": s.cmd_syncs,
        "deal": r.cmd_deal, "ingest": d.cmd_ingest, "demo": d.cmd_demo,
        "imports": d.cmd_imports, "quarantine": d.cmd_quarantine, "train": r.cmd_train,
        "score": r.cmd_score, "forecast": r.cmd_forecast, "digest": r.cmd_digest,
        "serve": r.cmd_serve, "morning": r.cmd_morning, "digests": d.cmd_digests,
        "hygiene": r.cmd_hygiene, "nudges": n.cmd_nudges, "roster": o.cmd_roster,
        "export": d.cmd_export, "backup": d.cmd_backup,
    }  # fmt: skip


def _user_errors() -> tuple[type[Exception], ...]:
    """The errors whose message is the whole answer (no traceback)."""
    from bot.config import ConfigError, SetupError
    from bot.export import ExportError
    from bot.preflight import PreflightError
    from dataset.backup import BackupError
    from dataset.crm_reader import CrmError
    from dataset.ingest import IngestError
    from dataset.presets import PresetError
    from scoring.errors import ClusterError, ModelMismatchError

    return (IngestError, ConfigError, PresetError, ModelMismatchError, SetupError, ExportError,
            PreflightError, CrmError, BackupError, ClusterError)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # --help and --version end here, nothing loaded
    from bot.crm_links import default_template, set_default_template
    from dataset.money import default_currency, set_default_currency

    currency, template = default_currency(), default_template()
    errors = _user_errors()
    try:
        return _commands()[args.command](args)
    except BrokenPipeError:  # `| head`: the reader stopped (Python's documented recipe)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except errors as exc:
        print(f"revbot {args.command}: error: {exc}", file=sys.stderr)
        return 2
    finally:
        set_default_currency(currency)  # a command's currency ends with it (callers in-process)
        set_default_template(template)  # and its links to the CRM


if __name__ == "__main__":
    sys.exit(main())
