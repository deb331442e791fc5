"""`revbot export scores`: a saved score run as CSV, one row per open deal, in rank order.

Why: so that the scores can go to a spreadsheet or a BI tool, and anyone can check them against
their own outcomes. Pure: a run's scores (as `score_runs.run_scores` reads them) and its header
row (as `score_runs.latest_run` or `score_runs.run_of` returns it) in, rows or CSV text out. The
CLI reads the database and writes the file; nothing here trains, scores or writes SQL.

Columns, in order:

- `run_id`, `as_of`: the score run and the day it speaks for;
- `rank`: by value at risk, 1 = the most;
- `deal_id`, `owner`, `manager`, `region`, `product`, `account`, `stage`, `expected_close`: the
  deal as it was scored (manager and region: its owner's team);
- `win_probability`: calibrated, 0-1, 4 decimals;
- `risk`: the risk score, 0-100;
- `value`: the value the deal was scored at; `value_source`: `amount` when the CRM gave an
  amount, `estimate` when it did not (the deal is then valued at its product's list price, else
  the median amount of its product's open deals); empty for runs saved before revbot recorded it;
- `value_at_risk`: value x risk / 100 (what the rank orders by);
- `risk_loss`, `risk_velocity`, `risk_stagnation`, `risk_size`: the risk's four parts, each 0-1
  (formula in `scoring/risk.py`), and `risk_loss_points` ... `risk_size_points`: each part's risk
  points, weight x part x 100, which add up to `risk` (to its rounding to 0.1);
- `reason_N_key`, `reason_N_text`, `reason_N_risk` (risk points it adds; negative: it lowers the
  risk), `reason_N_money` (the part of the value at risk it accounts for), N = 1, 2, 3: the
  saved reasons, most risk first. Reasons are saved for the deals with the most value at risk
  only (`revbot score --explain-top N`); for the others these columns are empty;
- `reasons_json`: the saved reasons, JSON as saved (all of them, with `points`, the effect on
  the win probability);
- `actions`: the suggested next steps, joined with " | ".

CRM text goes in verbatim, but a cell that a spreadsheet would run as a formula (one starting
with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading apostrophe, as OWASP advises
for CSV exports; numbers are written by us and left as numbers. Quoting is the csv module's.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

import pandas as pd

from scoring.risk import WEIGHTS

REASONS = 3  # reasons spread into their own columns; all of them are in reasons_json
PARTS = tuple(WEIGHTS)  # loss, velocity, stagnation, size: the order of risk.py's formula
CONTEXT = ("deal_id", "owner", "manager", "region", "product", "account", "stage",
           "expected_close")  # fmt: skip
REASON_FIELDS = ("key", "text", "risk", "money")
COLUMNS = (
    "run_id", "as_of", "rank", *CONTEXT,
    "win_probability", "risk", "value", "value_source", "value_at_risk",
    *(f"risk_{p}" for p in PARTS), *(f"risk_{p}_points" for p in PARTS),
    *(f"reason_{i}_{f}" for i in range(1, REASONS + 1) for f in REASON_FIELDS),
    "reasons_json", "actions",
)  # fmt: skip
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
ACTION_SEPARATOR = " | "


class ExportError(Exception):
    """Nothing to export, or the file cannot be written: said to the user, never a traceback."""


@dataclass(frozen=True)
class Written:
    """What an export wrote: the summary line's numbers."""

    rows: int
    with_reasons: int


def _missing(x: Any) -> bool:
    """None, NaN or NaT: how SQLite's NULL comes back through pandas."""
    return x is None or x is pd.NaT or (isinstance(x, float) and math.isnan(x))


def safe_text(x: Any) -> str:
    """A text cell: verbatim, except that a leading apostrophe keeps a spreadsheet from running
    it as a formula (a CRM field is typed by anyone; the file is opened by someone else)."""
    if _missing(x):
        return ""
    text = str(x)
    return "'" + text if text.startswith(FORMULA_START) else text


def number(x: Any, decimals: int) -> str:
    """A number cell with fixed decimals (no exponent, no `-0.00`); empty when unknown."""
    if _missing(x):
        return ""
    return f"{round(float(x), decimals) + 0.0:.{decimals}f}"


def value_source(value_known: Any) -> str:
    """`amount` when the CRM gave one, `estimate` when the value is a list price or a median."""
    if _missing(value_known):
        return ""  # runs saved before the value's source was recorded
    return "amount" if bool(value_known) else "estimate"


def part_points(row: dict) -> dict[str, float | None]:
    """Each risk part's points (weight x part x 100): what it adds to the 0-100 risk."""
    return {
        p: None if _missing(row.get(f"risk_{p}")) else 100.0 * WEIGHTS[p] * float(row[f"risk_{p}"])
        for p in PARTS
    }


def saved_reasons(drivers: Any) -> list[dict]:
    """The reasons saved with a deal (empty for a deal that was not explained)."""
    if _missing(drivers) or not str(drivers).strip():
        return []
    return list(json.loads(drivers))


def saved_actions(actions: Any) -> list[str]:
    if _missing(actions) or not str(actions).strip():
        return []
    return [str(a) for a in json.loads(actions)]


def export_row(row: dict, run: dict) -> list[str]:
    """One deal's cells, in COLUMNS order."""
    points = part_points(row)
    reasons = saved_reasons(row.get("drivers"))
    cells = [
        str(run["run_id"]),
        safe_text(run["as_of"]),
        number(row["rank"], 0),
        *(safe_text(row.get(c)) for c in CONTEXT),
        number(row["win_prob"], 4),
        number(row["risk"], 1),
        number(row.get("value"), 2),
        value_source(row.get("value_known")),
        number(row.get("value_at_risk"), 2),
        *(number(row.get(f"risk_{p}"), 4) for p in PARTS),
        *(number(points[p], 2) for p in PARTS),
    ]
    for i in range(REASONS):
        r = reasons[i] if i < len(reasons) else {}
        cells += [safe_text(r.get("key")), safe_text(r.get("text")),
                  number(r.get("risk"), 1), number(r.get("money"), 0)]  # fmt: skip
    cells.append(safe_text(row.get("drivers")))
    cells.append(safe_text(ACTION_SEPARATOR.join(saved_actions(row.get("actions")))))
    return cells


def export_rows(scores: pd.DataFrame, run: dict) -> Iterator[list[str]]:
    """The run's deals as rows of cells, by rank (the header is COLUMNS)."""
    ordered = scores.sort_values("rank", kind="stable")
    for row in ordered.to_dict("records"):
        yield export_row(row, run)


def has_reasons(scores: pd.DataFrame) -> int:
    """How many deals of the run were explained (have reasons saved)."""
    return sum(bool(saved_reasons(d)) for d in scores["drivers"])


def write_csv(scores: pd.DataFrame, run: dict, out: TextIO) -> Written:
    """Header and rows to a text file object (open it with newline="": the csv module writes
    the CRLF line ends RFC 4180 asks for, and quotes a cell only when it needs it)."""
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    writer.writerows(export_rows(scores, run))
    return Written(rows=len(scores), with_reasons=has_reasons(scores))


def csv_text(scores: pd.DataFrame, run: dict) -> str:
    """The whole export as text (without the byte-order mark the file gets)."""
    buffer = io.StringIO(newline="")
    write_csv(scores, run, buffer)
    return buffer.getvalue()


def summary_line(written: Written, run: dict, where: str) -> str:
    """One line: what was written where, and how to get reasons for more deals."""
    line = (
        f"{written.rows:,} deals of score run #{run['run_id']} (as of {run['as_of']}) written to "
        f"{where} ({written.with_reasons:,} with reasons"
    )
    if written.with_reasons < written.rows:
        line += (
            "; reasons are saved for the deals with the most value at risk: for more, score "
            f"again with `revbot score --explain-top {written.rows}`"
        )
    return line + ")"
