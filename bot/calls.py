"""Managers' calls (issue 14): `/forecast call 1.2M [quarter] [scope]` records a person's number
for a quarter, kept for good (who, when, for what, on the data of which day); every forecast of
that quarter and scope shows each caller's latest call beside the model's P50.

Why apart: a call is the bot's own record of what people said, like a digest's snooze or
acknowledgement (`bot.ledger`), not CRM data; the listener that hears it writes it here and
nowhere else.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import sqlite_utils

_TABLE = """
CREATE TABLE IF NOT EXISTS forecast_calls (
    id INTEGER PRIMARY KEY,
    quarter TEXT NOT NULL,
    scope TEXT NOT NULL,
    amount REAL NOT NULL,
    user_id TEXT NOT NULL,
    caller TEXT NOT NULL,
    as_of TEXT NOT NULL,
    made_at TEXT NOT NULL
)
"""
AMOUNT = re.compile(r"^\$?\s*([0-9][0-9,_]*(?:\.[0-9]+)?)\s*([kKmMbB]?)$")
SCALE = {"": 1, "k": 1e3, "m": 1e6, "b": 1e9}


def ensure_table(db: sqlite_utils.Database) -> None:
    db.execute(_TABLE)


def parse_amount(text: str) -> float | None:
    """`1.2M`, `950k`, `$1,200,000` -> the amount; None if it is not one (or not above 0)."""
    m = AMOUNT.match(text.strip())
    if not m:
        return None
    value = float(m.group(1).replace(",", "").replace("_", "")) * SCALE[m.group(2).lower()]
    return value if value > 0 else None


def record(db: sqlite_utils.Database, *, quarter: str, scope: str, amount: float, user_id: str,
           caller: str, as_of: str) -> None:  # fmt: skip
    """Keep a call; an earlier call by the same person stays (the track record compares them)."""
    ensure_table(db)
    with db.atomic():
        db.execute(
            "INSERT INTO forecast_calls (quarter, scope, amount, user_id, caller, as_of, made_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [quarter, scope, amount, user_id, caller, as_of,
             datetime.now(UTC).isoformat(timespec="seconds")],
        )  # fmt: skip


def latest(db: sqlite_utils.Database, quarter: str, scope: str) -> list[dict]:
    """Each caller's latest call for a quarter and scope, newest first."""
    ensure_table(db)
    return list(
        db.query(
            "SELECT c.* FROM forecast_calls c JOIN (SELECT user_id, MAX(id) AS id FROM "
            "forecast_calls WHERE quarter = ? AND scope = ? GROUP BY user_id) x ON c.id = x.id "
            "ORDER BY c.id DESC",
            [quarter, scope],
        )
    )


def history(db: sqlite_utils.Database) -> list[dict]:
    """Every call ever made, oldest first."""
    ensure_table(db)
    return list(db.query("SELECT * FROM forecast_calls ORDER BY id"))
