"""The people behind the CRM's names (issue 15, item 5): each deal owner's name as the CRM spells
it (as the deals' owner column holds it), their e-mail address, the CRM that said so and when.

Why: `revbot roster --build` looks each address up in Slack (`users.lookupByEmail`) and writes
the `[roster]` entries nobody then has to copy by hand, member id by member id.

The `people` table is written by the live sync only (the writer: `revbot sync` and the refresh's
sync step), in the same transaction as the page of deals that named them (`keep`), and read by
`revbot roster`. CSV-export users, who have no sync, give the same facts with a role in a people
CSV (`[roster] people_csv`, columns name, email, role), read by `read_csv`. Pure but for the two
table functions.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass

import sqlite_utils

ROLES = ("rep", "manager", "leader")
CSV_COLUMNS = ("name", "email", "role")
# one @, something on both sides, no space: a typo'd cell is refused, not looked up in Slack
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_NAME = 200  # a CRM user's name; a longer cell is a paste gone wrong


@dataclass(frozen=True)
class Person:
    """Someone who may belong in the roster: their CRM name (a manager's, for a manager), their
    e-mail address (lower case), where that came from (`salesforce`, `hubspot` or the CSV's
    path) and, from a people CSV, their role."""

    name: str
    email: str
    source: str
    role: str | None = None
    seen_at: str | None = None


def clean_email(value: object) -> str | None:
    """An e-mail address as stored and looked up: trimmed, lower case; None if it is not one."""
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    return text if EMAIL.match(text) else None


def keep(
    db: sqlite_utils.Database, source: str, people: Iterable[tuple[str, str]], seen_at: str
) -> None:
    """Record (name, e-mail) pairs a CRM gave, inside the caller's transaction: an address seen
    again takes its newest name and time (a person renamed in the CRM is renamed here)."""
    rows = {}
    for name, email in people:
        address = clean_email(email)
        if address and isinstance(name, str) and name.strip():
            rows[address] = name
    db.conn.executemany(
        "INSERT INTO people (source, email, name, seen_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(source, email) DO UPDATE SET name = excluded.name, "
        "seen_at = excluded.seen_at",
        ((source, address, name, seen_at) for address, name in sorted(rows.items())),
    )


def people(db: sqlite_utils.Database) -> list[Person]:
    """Everyone the syncs have seen, by name, newest first for a name seen with two addresses."""
    return [
        Person(name, email, source, None, seen_at)
        for name, email, source, seen_at in db.execute(
            "SELECT name, email, source, seen_at FROM people ORDER BY name, seen_at DESC, email"
        )
    ]


class PeopleError(ValueError):
    """A people CSV that cannot be used; the message names the file, the line and the fix."""


def read_csv(text: str, where: str) -> list[Person]:
    """The rows of a people CSV (header name,email,role; any column order, other columns
    ignored). role is rep, manager or leader (empty: rep); a manager's name is the CRM's manager
    name. Raises PeopleError naming every bad line."""
    reader = csv.DictReader(io.StringIO(text))
    header = [(h or "").strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise PeopleError(
            f"{where}: the header must name the columns name, email and role (missing: "
            f"{', '.join(missing)}); e.g. `name,email,role` then `Ann Lee,ann@acme.com,rep`"
        )
    reader.fieldnames = header
    out: list[Person] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for line, row in enumerate(reader, start=2):
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue  # a blank line
        name = (row.get("name") or "").strip()
        role = (row.get("role") or "").strip().lower() or "rep"
        email = clean_email(row.get("email"))
        if not name or len(name) > MAX_NAME:
            problems.append(f"line {line}: no name" if not name else f"line {line}: a name of {len(name)} characters")  # fmt: skip
        elif email is None:
            problems.append(f"line {line}: {row.get('email')!r} is not an e-mail address")
        elif role not in ROLES:
            problems.append(f"line {line}: role {role!r} is not one of {', '.join(ROLES)}")
        elif email in seen:
            problems.append(f"line {line}: {email} again (first on line {seen[email]})")
        else:
            seen[email] = line
            out.append(Person(name, email, where, role))
    if problems:
        shown = problems[:10] + ([f"and {len(problems) - 10} more"] if len(problems) > 10 else [])
        raise PeopleError(f"{where}: " + "; ".join(shown))
    return out
