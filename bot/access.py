"""Who sees what: the roster decides. Pure.

Leaders see every deal, managers their team's (the CRM's manager column), reps their own (the
owner column). Someone not in the roster sees nothing and is told how to get access.
"""

from __future__ import annotations

from bot.settings import Member, Scope

NOT_IN_ROSTER = (
    "Sorry, I can only show pipeline data to people in revbot's roster, and you are not in it "
    "yet. Ask your revbot admin to add your Slack ID (`{user_id}`) to `[roster]` in revbot.toml."
)


def member_scope(member: Member) -> Scope:
    """The widest scope a member may see."""
    if member.role == "leader":
        return Scope("all")
    return Scope("manager" if member.role == "manager" else "rep", member.name)


def can_see(member: Member, deal: dict) -> bool:
    """May this member see this deal (a row with owner and manager)?"""
    scope = member_scope(member)
    if scope.kind == "all":
        return True
    column = "manager" if scope.kind == "manager" else "owner"
    return deal.get(column) == scope.name


def allowed_scope(member: Member, wanted: Scope | None) -> Scope | str:
    """The scope a member's request resolves to, or a refusal to show them.

    Asking for nothing means their own scope; a leader may ask for any region or team; a manager
    only for their own team; a rep only for their own deals."""
    own = member_scope(member)
    if wanted is None or wanted == own or own.kind == "all":
        return wanted or own
    return (
        f"You can see {own.label}, so I can't show {wanted.label}. "
        "Leaders can see every region and team."
    )
