"""A nudge's buttons ("Snooze 7 days", "Done", "Not useful") and the Home tab's "nudges a day"
menu: each records the person's answer in the nudges' ledger and shows it where they pressed.

Only the person a nudge was sent to may answer it. "Not useful" is kept with the rules the nudge
named, so `revbot nudges` can say which rules people find useless.
"""

from __future__ import annotations

import logging

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import home_tabs, nudge_ledger, slack_api
from bot.home import BUDGETS, read_state
from bot.listeners import (
    ACTION_NUDGE_BUDGET,
    ACTION_NUDGE_DONE,
    ACTION_NUDGE_NOT_USEFUL,
    ACTION_NUDGE_SNOOZE,
)
from bot.nudges import handled_message, rules_of, snooze_until
from bot.reader import Reader

log = logging.getLogger(__name__)
KINDS = {ACTION_NUDGE_SNOOZE: "snooze", ACTION_NUDGE_DONE: "done", ACTION_NUDGE_NOT_USEFUL: "not_useful"}  # fmt: skip
UNREADABLE = "I can't read this button; the nudge may be from an older version of revbot."


def _press(body: dict) -> tuple[str | None, dict]:
    user = body.get("user")
    uid = user.get("id") if isinstance(user, dict) else None
    actions = body.get("actions")
    action = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}  # fmt: skip
    return (uid if isinstance(uid, str) and uid else None), action


def register(app: App, reader: Reader) -> None:
    def answer(kind: str, body: dict, respond: Respond | None, client: WebClient) -> None:
        user, action = _press(body)
        value = action.get("value")
        nudge = None
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 19:
            nudge = nudge_ledger.nudge(reader.db(), int(value))
        if user is None or nudge is None or nudge["kind"] != "deal":
            if respond is not None:
                respond(text=UNREADABLE, response_type="ephemeral", replace_original=False)
            return
        if nudge["user_id"] != user:
            if respond is not None:
                respond(text="This nudge was sent to someone else.", response_type="ephemeral",
                        replace_original=False)  # fmt: skip
            return
        until = None
        if kind == "snooze":  # from the day it was sent, in the person's own time zone
            until = snooze_until(str(nudge["local_day"]), reader.settings.nudges.snooze_days)
        nudge_ledger.answer(reader.db(), nudge["id"], kind, until)
        rules = ", ".join(rules_of(nudge)) or "its rule"
        note = {
            "snooze": f"Snoozed: no nudge about this deal until {until}.",
            "done": "Marked done. Thanks!",
            "not_useful": f"Marked not useful ({rules}): the team sees it in `revbot nudges` "
            "and can tune or drop the rule.",
        }[kind]
        message = body.get("message")
        channel = (body.get("channel") or {}).get("id") if isinstance(body.get("channel"), dict) else None  # fmt: skip
        if isinstance(message, dict) and isinstance(message.get("ts"), str) and channel:
            try:
                slack_api.update_message(client, channel, message["ts"], handled_message(message, note))  # fmt: skip
            except SlackApiError as exc:
                log.warning("could not mark nudge %s: %s", nudge["id"], slack_api.error_code(exc))

    def listener(kind: str):
        def pressed(ack: Ack, body: dict, respond: Respond, client: WebClient) -> None:
            ack()
            answer(kind, body, respond, client)

        return pressed

    for action_id, kind in KINDS.items():
        app.action(action_id)(listener(kind))

    @app.action(ACTION_NUDGE_BUDGET)
    def budget(ack: Ack, body: dict, client: WebClient) -> None:
        ack()
        user, action = _press(body)
        chosen = action.get("selected_option")
        value = chosen.get("value") if isinstance(chosen, dict) else None
        if user is None or reader.settings.member(user) is None:
            return
        # the menu's choices: the fixed ones and the configured default (`bot.home`)
        if value in {str(b) for b in (*BUDGETS, reader.settings.nudges.per_day)}:
            nudge_ledger.set_budget(reader.db(), user, int(value))
        view = body.get("view")  # published again either way: the menu shows what is kept
        state = read_state(view.get("private_metadata") if isinstance(view, dict) else None)
        home_tabs.publish(reader, client, user, state)
