"""The digest's buttons: "Why?" opens the deal's details in a modal (answered privately instead
when Slack will not open it); "Snooze 7 days" and
"Acknowledge" record the decision in SQLite (keeping the deal out of that channel's next digests)
and mark the deal in the posted digest so the team sees it was handled, and by whom. Each acks
first, then reads the press through `payload.read_click`: a value it cannot read (an older
digest's, a forged one) gets a clear private answer. "Open in CRM" is a link: it is only acked."""

from __future__ import annotations

import logging
from datetime import date, timedelta

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot import ledger, slack_api
from bot.access import NOT_IN_ROSTER, can_see
from bot.blocks import mark_handled
from bot.inert import inert
from bot.listeners import ACTION_ACK, ACTION_OPEN_CRM, ACTION_SNOOZE, ACTION_WHY
from bot.listeners.commands import deal_detail
from bot.listeners.home import current_deal, open_modal
from bot.listeners.payload import UNREADABLE_BUTTON, read_click
from bot.modal import deal_modal
from bot.reader import Reader
from bot.replies import text_message

log = logging.getLogger(__name__)
SNOOZE_DAYS = 7


def _say(respond: Respond | None, **message) -> None:
    """Answer the clicker privately, leaving the digest as it is (when Slack gave a way to)."""
    if respond is None:
        log.warning("a button press without a response_url: nothing to answer to")
        return
    respond(**message, response_type="ephemeral", replace_original=False)


def register(app: App, reader: Reader) -> None:
    def find(body: dict, respond: Respond | None):
        """The press, the member and the deal row the button is about, or None after answering
        why not."""
        click = read_click(body)
        if click is None:
            _say(respond, **text_message(UNREADABLE_BUTTON))
            return None
        member = reader.settings.member(click.user_id)
        if member is None:
            _say(respond, **text_message(NOT_IN_ROSTER.format(user_id=inert(click.user_id))))
            return None
        deal = reader.deal_in_run(click.run_id, click.deal_id)
        if deal is None or not can_see(member, deal):
            _say(respond, text="That deal is not one you can see.")
            return None
        return click, member, deal

    @app.action(ACTION_WHY)
    def why(ack: Ack, body: dict, respond: Respond, client: WebClient) -> None:
        ack()
        found = find(body, respond)
        if found is None:
            return
        saved = reader.latest()
        _, member, deal = found
        current = current_deal(saved, deal)
        if not can_see(member, current):  # moved to another team since the digest
            _say(respond, text="That deal is not one you can see.")
            return
        reply = deal_detail(reader, saved, current)
        modal = deal_modal(reply, reader.risk_history(current["deal_id"]))
        if not open_modal(client, body, modal):  # the trigger expired: answer privately instead
            _say(respond, **reply)

    def handle(kind: str, body: dict, respond: Respond, client: WebClient) -> None:
        found = find(body, respond)
        if found is None:
            return
        click, member, deal = found
        if member.role == "rep":
            _say(respond, text="Only managers and leaders can snooze or acknowledge a deal in the "
                 "digest; tell your manager what you are doing about it.")  # fmt: skip
            return
        channel = click.channel_id
        if channel is None:  # a snooze is kept per channel: without one it cannot be
            _say(respond, **text_message(UNREADABLE_BUTTON))
            return
        run = reader.run_header(int(deal["run_id"]))
        until = None
        if kind == "snooze":
            until = (date.fromisoformat(run["as_of"]) + timedelta(days=SNOOZE_DAYS)).isoformat()
        ledger.add_mark(reader.db(), channel_id=channel, deal_id=deal["deal_id"], kind=kind,
                        user_id=member.user_id, risk=deal["risk"], until=until)  # fmt: skip
        note = (
            f"Snoozed by <@{member.user_id}> until {until}"
            if kind == "snooze"
            else f"Acknowledged by <@{member.user_id}>: hidden until its risk rises"
        )
        message = click.message
        if (
            message
            and isinstance(message.get("ts"), str)
            and isinstance(message.get("blocks"), list)
        ):
            blocks = mark_handled(message.get("blocks", []), deal["deal_id"], note)
            text = (
                message.get("text") if isinstance(message.get("text"), str) else "Pipeline digest"
            )
            slack_api.update_message(
                client, channel, message["ts"], {"text": text, "blocks": blocks}
            )

    @app.action(ACTION_SNOOZE)
    def snooze(ack: Ack, body: dict, respond: Respond, client: WebClient) -> None:
        ack()
        handle("snooze", body, respond, client)

    @app.action(ACTION_ACK)
    def acknowledge(ack: Ack, body: dict, respond: Respond, client: WebClient) -> None:
        ack()
        handle("ack", body, respond, client)

    # "Open in CRM" is a link button: Slack opens its URL in the browser by itself, and still sends
    # the press here. Unacknowledged, Slack shows the clicker a warning icon by the button after
    # 3 s (slackapi/node-slack-sdk#869), and Bolt would answer 404: ack it, and do nothing else
    # (no reply, no post, no data read).
    @app.action(ACTION_OPEN_CRM)
    def open_crm(ack: Ack) -> None:
        ack()
