"""What a listener reads from Slack's payload, checked before use. Pure.

A button's value is ours (`run:deal`), but a digest posted by an older version, or a payload
edited in transit, can carry anything. Listeners ack first and then read through here, so a value
they cannot read gets a clear answer instead of an exception after the ack (or before it, which
Slack shows as a failure after 3 seconds).
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_RUN_ID = 2**63 - 1  # SQLite's INTEGER; a larger number cannot name a run
MAX_DEAL_ID = 200  # the digest puts buttons only on deals with ids up to this long

UNREADABLE_BUTTON = (
    "I can't read this button: it may come from a digest posted by an older version of revbot. "
    "Ask for the deal with `/deal &lt;deal id&gt;`, or use the buttons in the next digest."
)
UNKNOWN_USER = (
    "Slack did not tell me who is asking or from which channel, so I can't answer this one. "
    "Please try again."
)


@dataclass(frozen=True)
class Click:
    """A digest button press: who, which run and deal, and where (None when not in a message)."""

    user_id: str
    run_id: int
    deal_id: str
    channel_id: str | None
    message: dict | None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def target(value: object) -> tuple[int, str] | None:
    """(run id, deal id) from a button value `run:deal`, or None if it is not one."""
    if not isinstance(value, str):
        return None
    run, sep, deal = value.partition(":")
    if not sep or not run.isascii() or not run.isdigit() or not deal.strip():
        return None
    if int(run) > MAX_RUN_ID or len(deal) > MAX_DEAL_ID or not deal.isprintable():
        return None
    return int(run), deal


def read_click(body: dict) -> Click | None:
    """The button press in `body`, or None if any part of it is missing or malformed."""
    actions = body.get("actions")
    action = actions[0] if isinstance(actions, list) and actions else None
    user, channel = body.get("user"), body.get("channel")
    user_id = _str(user.get("id")) if isinstance(user, dict) else None
    found = target(action.get("value")) if isinstance(action, dict) else None
    if user_id is None or found is None:
        return None
    message = body.get("message")
    return Click(
        user_id=user_id,
        run_id=found[0],
        deal_id=found[1],
        channel_id=_str(channel.get("id")) if isinstance(channel, dict) else None,
        message=message if isinstance(message, dict) else None,
    )


def command_user(command: dict) -> str | None:
    """Who sent a slash command (None if Slack's form lacks it)."""
    return _str(command.get("user_id"))


def command_channel(command: dict) -> str | None:
    """Where a slash command was typed (None if Slack's form lacks it)."""
    return _str(command.get("channel_id"))


def command_text(command: dict) -> str:
    """The slash command's text; control characters (never typed in Slack) become spaces."""
    text = command.get("text")
    if not isinstance(text, str):
        return ""
    return "".join(c if c.isprintable() else " " for c in text)
