"""Start-up check: every region, manager and rep the configuration names is in the CRM data.

Why: scopes and roster names filter the data by exact equality (`digest.in_scope`,
`access.can_see`), so a typo (`region:Westt`, a manager's surname misspelt) silently gives an
empty digest or a manager who sees nothing. Checked once, as the services are built
(`bot.services.build`, which every command that reads or writes the data, the bot and its
scheduler go through), and refused with every problem at once. A database without CRM data yet
(the first start, before the first export) has nothing to check against, so it is not checked.
"""

from __future__ import annotations

import difflib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from bot.config import ConfigError
from bot.settings import Settings
from dataset import database, deal_history

LIST_AT_MOST = 8  # known names listed in full when no close match is found and there are few
CUTOFF, MARGIN = 0.6, 0.1  # a close match: difflib's ratio 0.6 or more, and within 0.1 of the best
WHERE_FROM = {
    "region": "the sales team table's regional_office",
    "manager": "the sales team table's manager",
    "rep": "the sales team table's sales_agent or a deal's owner",
}


@dataclass(frozen=True)
class Known:
    """The names the data has, which scopes and roster names must equal."""

    regions: frozenset[str]
    managers: frozenset[str]
    reps: frozenset[str]  # the team table's sales agents and the deals' owners

    def of(self, kind: str) -> frozenset[str]:
        return {"region": self.regions, "manager": self.managers, "rep": self.reps}[kind]


def _fold(name: str) -> str:
    return " ".join(name.split()).casefold()


def _quoted(names: list[str]) -> str:
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _closest(name: str, candidates: list[str]) -> list[str]:
    """difflib's close matches (at most three), less those clearly further than the best
    ('Westt': 'West', not also 'East')."""
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=CUTOFF)
    ratio = {c: difflib.SequenceMatcher(None, name, c).ratio() for c in close}
    return [c for c in close if ratio[c] >= ratio[close[0]] - MARGIN]


def suggest(kind: str, name: str, known: frozenset[str]) -> str:
    """What to write instead: the same name as the data spells it (case, spaces), else the close
    ones, else the known ones when they are few."""
    same = sorted(k for k in known if _fold(k) == _fold(name))
    if same:
        return (
            f"the data spells it {_quoted(same)} (names must match exactly, case and spaces "
            "included)"
        )
    by_fold: dict[str, list[str]] = {}
    for k in sorted(known):
        by_fold.setdefault(_fold(k), []).append(k)
    close = _closest(_fold(name), list(by_fold))
    if close:
        return f"did you mean {_quoted([k for c in close for k in by_fold[c]])}?"
    if not known:
        return f"the data has no {kind} names at all (they come from {WHERE_FROM[kind]})"
    if len(known) <= LIST_AT_MOST:
        return f"the data's {kind}s are {', '.join(repr(k) for k in sorted(known))}"
    return f"none of the data's {len(known)} {kind}s is close (`revbot forecast --by {kind}` lists them)"  # fmt: skip


def problems(settings: Settings, known: Known) -> list[str]:
    """Each channel scope and roster name that the data does not have, where it is in the
    configuration, and what to write instead. Pure."""
    out = []
    for i, channel in enumerate(settings.channels):
        scope = channel.scope
        if scope.kind != "all" and scope.name not in known.of(scope.kind):
            out.append(
                f"[[channels]] #{i + 1} ({channel.id}) scope {scope}: no {scope.kind} "
                f"{scope.name!r} in the data; {suggest(scope.kind, scope.name, known.of(scope.kind))}"
            )
    for user_id, member in (settings.roster or {}).items():
        if member.role == "leader" or not member.name:
            continue
        if member.name not in known.of(member.role):
            out.append(
                f"[roster] {user_id}: {member.role} {member.name!r} is not in the data; "
                f"{suggest(member.role, member.name, known.of(member.role))}"
            )
    return out


def known_names(db: sqlite_utils.Database) -> Known | None:
    """The regions, managers and reps of the data, or None when no deals were imported yet."""
    if deal_history.latest_as_of(db) is None:
        return None
    teams = deal_history.teams(db)

    def names(values) -> frozenset[str]:
        return frozenset(v for v in values if isinstance(v, str) and v.strip())

    return Known(
        regions=names(teams["regional_office"]),
        managers=names(teams["manager"]),
        reps=names([*teams["sales_agent"], *deal_history.owners(db)]),
    )


def check(settings: Settings, db_path: Path) -> None:
    """Raise a ConfigError listing every scope or roster name the data at `db_path` lacks.

    Nothing to check (so no error): no channel scope or roster name to check, no database file
    yet (never created here), no deals imported yet, or a file that is not a readable revbot
    database (what reads it next says so, as it did before this check)."""
    named = [c for c in settings.channels if c.scope.kind != "all"]
    named += [m for m in (settings.roster or {}).values() if m.role != "leader"]
    if not named or not Path(db_path).is_file():
        return
    try:
        db = database.connect(db_path)
    except (sqlite3.DatabaseError, RuntimeError):  # not SQLite; written by a newer revbot
        return
    try:
        known = known_names(db)
    except sqlite3.DatabaseError:
        return
    finally:
        db.close()
    found = problems(settings, known) if known is not None else []
    if found:
        raise ConfigError(
            f"the configuration names {len(found)} "
            f"{'scope or person' if len(found) == 1 else 'scopes or people'} that the CRM data "
            f"in {db_path} does not have (scopes and roster names must match the data exactly):\n  "
            + "\n  ".join(found)
        )
