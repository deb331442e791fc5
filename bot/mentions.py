"""People, not names (issue 15, item 5): a deal line in Slack @-mentions the deal's owner when,
and only when, a roster member's CRM `name` equals the owner exactly. Pure.

A mention pings a person, so it comes from the roster, never from CRM text: the member id is
the roster's (revbot.toml, a Slack member id by `bot.settings`, checked again here), and the
CRM's owner name only selects it, by exact equality (case and spaces included). A name that
spells Slack syntax (`<`, `>` or `&`, as in `<@U0LEADER>`, `<!channel>` or `&lt;!here&gt;`, or
a broadcast word such as `@channel`) never mentions anyone, even if a roster member is named
exactly that: roster names are copied from the CRM (`revbot roster --build` does it), so such
a name is CRM text, and it is shown inert (`bot.inert`) like any other. A name two roster
members share mentions neither: which one would it ping?

Passed explicitly (`digest_message(..., mentions=...)`, `home_view(..., mentions=...)`) rather
than kept as a process default as the CRM link template is (`bot.crm_links`): the roster sits
in the Settings every caller of those renderers already holds, a mention notifies someone so
the places that may do it should be visible where messages are built, and a surface that must
keep plain names (the terminal digest, a test) simply passes none: no state to set or reset.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bot.settings import USER_ID, Member

Mentions = Mapping[str, str]  # a CRM name -> the Slack member id of the roster member of that name
# Slack's control characters and broadcast words: a name holding one is shown, never mentioned
SLACK_SYNTAX = re.compile(r"[<>&]|@(?:channel|here|everyone)\b", re.IGNORECASE)


def mentionable(name: str) -> bool:
    """May a roster member of this CRM name be @-mentioned (no Slack syntax in it)?"""
    return bool(name.strip()) and SLACK_SYNTAX.search(name) is None


def mentions_of(roster: Mapping[str, Member] | None) -> dict[str, str]:
    """Each CRM name the roster gives exactly one member id (leaders without a name have none;
    a name shared by two members, or one that spells Slack syntax, is left out)."""
    ids: dict[str, set[str]] = {}
    for user_id, member in (roster or {}).items():
        if member.name and mentionable(member.name) and user_id == member.user_id and USER_ID.fullmatch(user_id):  # fmt: skip
            ids.setdefault(member.name, set()).add(user_id)
    return {name: next(iter(found)) for name, found in ids.items() if len(found) == 1}


def mention(name: object, mentions: Mentions | None) -> str | None:
    """`<@U…>` for the roster member whose CRM name is exactly `name`; None otherwise (then the
    caller shows the name made inert)."""
    if not mentions or not isinstance(name, str) or not mentionable(name):
        return None
    user_id = mentions.get(name)
    return f"<@{user_id}>" if isinstance(user_id, str) and USER_ID.fullmatch(user_id) else None
