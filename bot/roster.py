"""The roster from the CRM's people (issue 15, item 5): who could be matched with a Slack member,
the `[roster]` TOML that says so, and what a roster lacks. Pure: Slack is asked through the
`lookup` and `known` functions the caller passes in (`bot.cli_roster` hands in `bot.slack_api`).

Why by e-mail: the CRM knows each owner's address (`dataset.people`), and Slack finds a member by
the address of their account (`users.lookupByEmail`), so nobody copies member ids by hand.

Rules, all of them so that a built roster is one revbot accepts and that never surprises:

- a name is matched once: the people CSV (with its role) before the CRM's people; a CRM owner is
  a rep, or a manager where the sales team table names them a manager; a name the CRM gives
  with two addresses takes the one seen last (two seen at once: two people, left to a human);
- a rep or manager whose name is not in the CRM data is skipped: the bot refuses to start with a
  roster name the data lacks (`bot.scope_check`), and says so here first;
- what revbot.toml's roster already has is kept as written (a name already there is not looked
  up again, and a member id already there keeps its entry): the output is the whole table;
- the TOML is written here, escaped for TOML, from the roster's member ids and the CRM's names:
  the names are data, never comments or keys, so no CRM text can add a line to it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from bot.settings import Member
from dataset.people import Person

if TYPE_CHECKING:  # the edge's type only: this module calls no Slack itself
    from bot.slack_api import SlackUser

CRM_ROLE = "rep"  # a CRM owner's role, unless the sales team table names them a manager


@dataclass(frozen=True)
class Candidate:
    """Someone to look up: the name their roster entry would carry, its role, their address."""

    name: str
    role: str
    email: str
    source: str


@dataclass(frozen=True)
class Skipped:
    """Someone the build could not match, and why (in words a person acts on)."""

    name: str
    email: str | None
    why: str


@dataclass
class Built:
    """What `build` found: the entries matched by e-mail, those kept from revbot.toml, and the
    people it could not match."""

    matched: list[Member] = field(default_factory=list)
    kept: list[Member] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    looked_up: int = 0

    @property
    def roster(self) -> list[Member]:
        return sorted([*self.kept, *self.matched], key=lambda m: m.user_id)


def candidates(
    crm: Iterable[Person], csv_rows: Iterable[Person], managers: Iterable[str]
) -> tuple[list[Candidate], list[Skipped]]:
    """One candidate a name: a CSV row (its role) before the CRM's people for the same name;
    a CRM owner is a manager where `managers` (the sales team table's) names them, else a rep.
    `crm`: newest first for a name (as `dataset.people.people` gives them)."""
    managers = set(managers)
    chosen: dict[str, Candidate] = {}
    skipped: list[Skipped] = []
    by_name: dict[str, list[Person]] = {}
    for p in csv_rows:
        by_name.setdefault(p.name, []).append(p)
    for name, rows in by_name.items():
        if len(rows) > 1:
            emails = ", ".join(p.email for p in rows)
            skipped.append(Skipped(name, None, f"named twice in the people CSV ({emails}): two "
                                               "people or one? Keep one row"))  # fmt: skip
            continue
        (p,) = rows
        chosen[name] = Candidate(name, p.role or CRM_ROLE, p.email, p.source)
    crm_by_name: dict[str, list[Person]] = {}
    for p in crm:
        if p.name not in by_name:
            crm_by_name.setdefault(p.name, []).append(p)
    for name, rows in crm_by_name.items():
        newest = [p for p in rows if p.seen_at == rows[0].seen_at]
        if len({p.email for p in newest}) > 1:
            emails = ", ".join(sorted({p.email for p in newest}))
            skipped.append(Skipped(name, None, f"the CRM has two users of this name ({emails}): "
                                               "add the right one by hand"))  # fmt: skip
            continue
        p = rows[0]
        role = "manager" if name in managers else CRM_ROLE
        chosen[name] = Candidate(name, role, p.email, p.source)
    return sorted(chosen.values(), key=lambda c: (c.name, c.email)), skipped


def build(
    found: list[Candidate],
    lookup: Callable[[str], SlackUser | None],
    roster: Mapping[str, Member] | None,
    known: Mapping[str, frozenset[str]] | None,
) -> Built:
    """Match each candidate with a Slack member by e-mail. `lookup(email)`: the member
    (`bot.slack_api.SlackUser`) or None; `roster`: revbot.toml's, kept as it is; `known`: the
    data's names by role ("rep", "manager"; None: no data to check against)."""
    out = Built(kept=list((roster or {}).values()))
    by_id = {m.user_id: m for m in out.kept}
    by_name = {m.name: m for m in out.kept if m.name}
    for c in found:
        if c.name in by_name:
            continue  # already in revbot.toml: kept as written, not looked up again
        if known is not None and c.role in known and c.name not in known[c.role]:
            where = "owns no deal and is no sales agent" if c.role == "rep" else "manages no team"
            out.skipped.append(Skipped(c.name, c.email, f"not in the CRM data as a {c.role} (the "
                                       f"name {where} there; the bot would refuse it at start-up)"))  # fmt: skip
            continue
        out.looked_up += 1
        member = lookup(c.email)
        if member is None:
            out.skipped.append(Skipped(c.name, c.email, "no Slack account has this e-mail address"))  # fmt: skip
            continue
        if member.deleted:
            out.skipped.append(Skipped(c.name, c.email, "deactivated in Slack"))
            continue
        user_id = member.id
        if user_id in by_id:
            other = by_id[user_id]
            was = f"{other.role} {other.name!r}" if other.name else other.role
            out.skipped.append(Skipped(c.name, c.email, f"this Slack member ({user_id}) is "
                                       f"already in the roster as {was}"))  # fmt: skip
            continue
        entry = Member(user_id, c.role, c.name)
        by_id[user_id] = by_name[c.name] = entry
        out.matched.append(entry)
    return out


# -- TOML ---------------------------------------------------------------------------------------

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}  # fmt: skip


def toml_string(text: str) -> str:
    """`text` as a TOML basic string: quotes, backslashes and every character that is not
    printable escaped, so any CRM name reads back as itself and stays on its line."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif 0xD800 <= ord(ch) <= 0xDFFF:  # a lone surrogate is no character: TOML refuses it
            out.append("\ufffd")
        elif not ch.isprintable():
            out.append(f"\\u{ord(ch):04X}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def entry_toml(member: Member) -> str:
    """One `[roster]` line: `"U0ABC" = { role = "rep", name = "Ann Lee" }`."""
    name = "" if member.name is None else f", name = {toml_string(member.name)}"
    return f"{toml_string(member.user_id)} = {{ role = {toml_string(member.role)}{name} }}"


def roster_toml(members: Iterable[Member], people_csv: str | None = None) -> str:
    """The whole `[roster]` table (with `people_csv` when one is configured), to paste over
    revbot.toml's own."""
    lines = [
        "# Built by `revbot roster --build`: paste this [roster] table over the one in",
        "# revbot.toml (revbot never edits it), then run `revbot roster --check`.",
        "[roster]",
    ]
    if people_csv:
        lines.append(f"people_csv = {toml_string(people_csv)}")
    lines += [entry_toml(m) for m in members]
    return "\n".join(lines) + "\n"


# -- the check ----------------------------------------------------------------------------------


@dataclass
class Check:
    """A roster against the open deals of a run: each owner and manager and who in the roster
    has their name, the roster's names that own (or manage) no open deal, and the member ids
    Slack does not know (None: not asked)."""

    owners: list[tuple[str, int, list[Member]]]  # (name, open deals, roster members of that name)
    managers: list[tuple[str, int, list[Member]]]
    idle: list[Member]  # reps owning no open deal, managers managing none
    unknown_ids: list[tuple[Member, str]] | None = None  # (member, what Slack said)

    @property
    def unmatched(self) -> int:
        missing = sum(not m for _, _, m in self.owners) + sum(not m for _, _, m in self.managers)
        return missing + len(self.idle) + len(self.unknown_ids or [])


def _names(values: pd.Series) -> Counter:
    return Counter(v for v in values if isinstance(v, str) and v.strip())


def check(
    scores: pd.DataFrame,
    roster: Mapping[str, Member] | None,
    slack_says: Callable[[str], str | None] | None = None,
) -> Check:
    """`scores`: the open deals of a run (owner and manager columns); `slack_says(user_id)`:
    None when Slack knows the member and their account is active, else what is wrong (None
    for `slack_says` itself: Slack not asked)."""
    members = list((roster or {}).values())

    def having(name: str) -> list[Member]:
        return [m for m in members if m.name == name]

    owners, managers = _names(scores["owner"]), _names(scores["manager"])
    order = lambda c: sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))  # noqa: E731
    idle = [m for m in members if m.role == "rep" and m.name not in owners]
    idle += [m for m in members if m.role == "manager" and m.name not in managers]
    unknown = None
    if slack_says is not None:
        said = [(m, slack_says(m.user_id)) for m in members]
        unknown = [(m, why) for m, why in said if why is not None]
    return Check(
        owners=[(n, k, having(n)) for n, k in order(owners)],
        managers=[(n, k, having(n)) for n, k in order(managers)],
        idle=sorted(idle, key=lambda m: m.user_id),
        unknown_ids=unknown,
    )
