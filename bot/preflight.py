"""What a command checks before its work, so that a wrong argument costs the user one line instead
of a traceback: a mistyped `--db` for a command that only reads (connecting would create an
empty database under that name and go on as if the pipeline were empty), a database without
deals for the commands that need them, a `--truth` file that is not a truth file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import sqlite_utils

from dataset import database, deal_history

TRUTH_COLUMNS = ("export_day", "deal_id", "p_true")
HOW_TO_LOAD = "import an export with `revbot ingest` or run `revbot demo --load`"


class PreflightError(Exception):
    """A command cannot start; the message says what is wrong and what to do, in one line."""


def open_db(path: Path, *, create: bool) -> sqlite_utils.Database:
    """The database at `path`; only a command that writes (`create`) may make a new one."""
    if not create and not path.exists():
        raise PreflightError(
            f"no database at {path}: check --db (or $REVBOT_DB), or {HOW_TO_LOAD} to make one"
        )
    try:
        return database.connect(path)
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc) and "busy" not in str(exc):
            raise PreflightError(f"{path} is not a revbot database (SQLite: {exc})") from exc
        raise PreflightError(
            f"{path} is busy: another revbot run kept it locked for "
            f"{database.WAL_WAIT_SECONDS} seconds while opening it; nothing was done, try again"
        ) from exc
    except sqlite3.DatabaseError as exc:  # a CSV given as --db, a damaged file
        raise PreflightError(f"{path} is not a revbot database (SQLite: {exc})") from exc


def require_deals(db: sqlite_utils.Database, path: Path) -> None:
    """Training, scoring and forecasting need deals: say so rather than fail deep inside."""
    if deal_history.latest_as_of(db) is None:
        raise PreflightError(f"the database {path} has no deals: {HOW_TO_LOAD}")


def check_truth(path: Path) -> None:
    """`revbot train --truth FILE`: a generated data set's truth/probabilities.csv, with a day,
    a deal id and a probability in [0, 1] per row."""
    what = f"--truth {path}"
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise PreflightError(f"{what}: no such file") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PreflightError(f"{what} cannot be read as CSV: {first}") from None
    missing = [c for c in TRUTH_COLUMNS if c not in frame.columns]
    if missing:
        raise PreflightError(
            f"{what} lacks column(s) {', '.join(missing)}: a truth file has "
            f"{', '.join(TRUTH_COLUMNS)} (the demo writes truth/probabilities.csv)"
        )
    days = pd.to_datetime(frame["export_day"], errors="coerce", format="ISO8601")
    p = pd.to_numeric(frame["p_true"], errors="coerce")
    if days.isna().any() or p.isna().any() or not p.between(0, 1).all():
        raise PreflightError(
            f"{what}: export_day must be dates (YYYY-MM-DD) and p_true probabilities in [0, 1]"
        )
