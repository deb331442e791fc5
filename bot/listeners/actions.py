"""The digest's buttons: "Why?" answers privately with the deal's details; "Snooze 7 days" and
"Acknowledge" record the decision in SQLite (keeping the deal out of that channel's next digests)
and mark the deal in the posted digest so the team sees it was handled, and by whom."""

from __future__ import annotations

import logging
from datetime import date, timedelta

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot import slack_api
from bot.access import NOT_IN_ROSTER, can_see
from bot.blocks import mark_handled
from bot.listeners import ACTION_ACK, ACTION_SNOOZE, ACTION_WHY
from bot.listeners.commands import deal_detail
from bot.replies import text_message
from bot.snapshot import Pipeline
from dataset import store

log = logging.getLogger(__name__)
SNOOZE_DAYS = 7


def _target(body: dict) -> tuple[int, str]:
    """(run id, deal id) from the button's value `run:deal`."""
    run, _, deal = body["actions"][0]["value"].partition(":")
    return int(run), deal


def register(app: App, pipeline: Pipeline) -> None:
    def find(body: dict, respond: Respond):
        """The member and the deal row the button is about, or None after answering why not."""
        user = body["user"]["id"]
        member = pipeline.settings.member(user)
        if member is None:
            respond(**text_message(NOT_IN_ROSTER.format(user_id=user)), response_type="ephemeral",
                    replace_original=False)  # fmt: skip
            return None
        run_id, deal_id = _target(body)
        deal = store.run_deal(pipeline.db(), run_id, deal_id)
        if deal is None or not can_see(member, deal):
            respond(text="That deal is not one you can see.", response_type="ephemeral",
                    replace_original=False)  # fmt: skip
            return None
        return member, deal

    @app.action(ACTION_WHY)
    def why(ack: Ack, body: dict, respond: Respond) -> None:
        ack()
        found = find(body, respond)
        if found is None:
            return
        snap = pipeline.snapshot()
        member, deal = found
        current = store.run_deal(pipeline.db(), snap.run_id, deal["deal_id"]) if snap else None
        if current is None:  # no longer open: explain it as it was in the digest
            current = deal
        if not can_see(member, current):  # moved to another team since the digest
            respond(text="That deal is not one you can see.", response_type="ephemeral",
                    replace_original=False)  # fmt: skip
            return
        message = deal_detail(pipeline, snap, current)
        respond(**message, response_type="ephemeral", replace_original=False)

    def handle(kind: str, body: dict, respond: Respond, client: WebClient) -> None:
        found = find(body, respond)
        if found is None:
            return
        member, deal = found
        if member.role == "rep":
            respond(text="Only managers and leaders can snooze or acknowledge a deal in the "
                    "digest; tell your manager what you are doing about it.",
                    response_type="ephemeral", replace_original=False)  # fmt: skip
            return
        channel = body["channel"]["id"]
        run = store.run_of(pipeline.db(), int(deal["run_id"]))
        until = None
        if kind == "snooze":
            until = (date.fromisoformat(run["as_of"]) + timedelta(days=SNOOZE_DAYS)).isoformat()
        store.add_mark(pipeline.db(), channel_id=channel, deal_id=deal["deal_id"], kind=kind,
                       user_id=member.user_id, risk=deal["risk"], until=until)  # fmt: skip
        note = (
            f"Snoozed by <@{member.user_id}> until {until}"
            if kind == "snooze"
            else f"Acknowledged by <@{member.user_id}>: hidden until its risk rises"
        )
        message = body.get("message")
        if message and message.get("ts"):
            blocks = mark_handled(message.get("blocks", []), deal["deal_id"], note)
            slack_api.update_message(client, channel, message["ts"],
                                     {"text": message.get("text", "Pipeline digest"), "blocks": blocks})  # fmt: skip

    @app.action(ACTION_SNOOZE)
    def snooze(ack: Ack, body: dict, respond: Respond, client: WebClient) -> None:
        ack()
        handle("snooze", body, respond, client)

    @app.action(ACTION_ACK)
    def acknowledge(ack: Ack, body: dict, respond: Respond, client: WebClient) -> None:
        ack()
        handle("ack", body, respond, client)
