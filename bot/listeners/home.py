"""The Home tab's listeners: publish it when opened, re-publish it when a filter or page is
picked, and open a deal's details in a modal from its "Details" button.

Each acks first. The tab's state comes back in the view's `private_metadata` and is read by
`bot.home.read_state`, which turns anything unreadable into the default; a Details press it cannot
read, or for a deal the member may not see, opens a modal saying so (a Home tab has no
response_url to answer to).
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import home_tabs, slack_api
from bot.access import NOT_IN_ROSTER, can_see
from bot.home import HomeState, read_state
from bot.inert import inert
from bot.listeners import ACTION_DETAILS, ACTION_HOME_PAGE, HOME_FILTERS
from bot.listeners.commands import deal_detail
from bot.listeners.payload import UNREADABLE_BUTTON, read_click
from bot.modal import deal_modal, notice_modal
from bot.reader import Reader, SavedRun

log = logging.getLogger(__name__)
NOT_YOURS = "That deal is not one you can see."
FILTER_IDS = re.compile("^(" + "|".join(map(re.escape, HOME_FILTERS)) + ")$")


def _user(body: dict) -> str | None:
    user = body.get("user")
    uid = user.get("id") if isinstance(user, dict) else None
    return uid if isinstance(uid, str) and uid.strip() else None


def _state(body: dict) -> HomeState:
    view = body.get("view")
    return read_state(view.get("private_metadata") if isinstance(view, dict) else None)


def _action(body: dict) -> dict:
    actions = body.get("actions")
    action = actions[0] if isinstance(actions, list) and actions else None
    return action if isinstance(action, dict) else {}


def modal_for(reader: Reader, body: dict) -> dict:
    """The modal a Details or Why? press should open: the deal's details as in the latest run
    (as in the pressed run if it has closed since), or why not."""
    click = read_click(body)
    if click is None:
        return notice_modal(UNREADABLE_BUTTON)
    member = reader.settings.member(click.user_id)
    if member is None:
        return notice_modal(NOT_IN_ROSTER.format(user_id=inert(click.user_id)))
    deal = reader.deal_in_run(click.run_id, click.deal_id)
    if deal is None or not can_see(member, deal):
        return notice_modal(NOT_YOURS)
    saved = reader.latest()
    current = current_deal(saved, deal)
    if not can_see(member, current):  # moved to another team since
        return notice_modal(NOT_YOURS)
    return deal_modal(deal_detail(reader, saved, current), reader.risk_history(deal["deal_id"]))


def current_deal(saved: SavedRun | None, deal: dict) -> dict:
    """A pressed deal as the latest run has it, or as it was when the button was made if it is
    no longer open (its team may have changed since: the caller checks access again)."""
    current = saved.deal(deal["deal_id"]) if saved else None
    return deal if current is None else current


def open_modal(client: WebClient, body: dict, view: dict) -> bool:
    """Open `view` for the press in `body`; False (logged) when Slack refused it: the trigger
    expires 3 seconds after the press, or the press carried none."""
    trigger = body.get("trigger_id")
    if not isinstance(trigger, str) or not trigger:
        return False
    try:
        slack_api.open_modal(client, trigger, view)
        return True
    except SlackApiError as exc:
        log.warning("could not open the deal's modal: %s", slack_api.error_code(exc))
    except Exception as exc:  # a dropped connection
        log.warning("could not open the deal's modal: %s", type(exc).__name__)
    return False


def register(app: App, reader: Reader) -> None:
    @app.event("app_home_opened")
    def opened(ack: Ack, event: dict, client: WebClient) -> None:
        ack()
        user = event.get("user")
        if event.get("tab") != "home" or not isinstance(user, str) or not user:
            return  # the Messages tab, or an event without a user: nothing to show
        view = event.get("view")
        state = read_state(view.get("private_metadata") if isinstance(view, dict) else None)
        home_tabs.publish(reader, client, user, state)

    @app.action(FILTER_IDS)
    def pick(ack: Ack, body: dict, client: WebClient) -> None:
        ack()
        user, action = _user(body), _action(body)
        if user is None:
            return
        chosen = action.get("selected_option")
        value = chosen.get("value") if isinstance(chosen, dict) else None
        kind = HOME_FILTERS[action["action_id"]]
        state = _state(body).choose(kind, value if isinstance(value, str) else None)
        home_tabs.publish(reader, client, user, state)

    @app.action(ACTION_HOME_PAGE)
    def page(ack: Ack, body: dict, client: WebClient) -> None:
        ack()
        user, value = _user(body), _action(body).get("value")
        if user is None:
            return
        digits = isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 7
        number = int(value) if digits else 0
        home_tabs.publish(reader, client, user, replace(_state(body), page=number))

    @app.action(ACTION_DETAILS)
    def details(ack: Ack, body: dict, client: WebClient) -> None:
        ack()
        open_modal(client, body, modal_for(reader, body))
