"""`/deal` and `/forecast`: ack at once, then check who asks, read the snapshot, render, answer.

Answers are ephemeral (only the asker sees them) unless they add `share`. `/forecast` posts its
chart in the channel, or by DM when the bot is not a member there, and says so.
"""

from __future__ import annotations

import logging

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot import slack_api
from bot.access import NOT_IN_ROSTER, allowed_scope, can_see, member_scope
from bot.blocks import short
from bot.inert import fold, inert
from bot.listeners.payload import UNKNOWN_USER, command_channel, command_text, command_user
from bot.replies import (
    DEAL_USAGE,
    FORECAST_USAGE,
    closed_reply,
    deal_reply,
    forecast_summary,
    match_scope,
    not_found_reply,
    parse_forecast,
    pick_quarter,
    several_reply,
    text_message,
)
from bot.snapshot import Pipeline
from dataset import score_runs
from forecasting.chart import fan_chart, money

log = logging.getLogger(__name__)
NO_RUN = "No pipeline has been scored yet: the first morning run (or `revbot score`) makes one."


def deal_answer(pipeline: Pipeline, user_id: str, text: str) -> tuple[dict, bool]:
    """The reply to `/deal <text>` and whether to share it in the channel."""
    words = text.split()
    share = bool(words) and words[-1].lower() == "share"
    query = fold(" ".join(words[:-1] if share else words))  # as pasted from a message, too
    member = pipeline.settings.member(user_id)
    if member is None:
        return text_message(NOT_IN_ROSTER.format(user_id=inert(user_id))), False
    if not query:
        return text_message(DEAL_USAGE), False
    snap = pipeline.snapshot()
    if snap is None:
        return text_message(NO_RUN), False
    db = pipeline.db()
    found = snap.lookup(db, query, member_scope(member))
    if found.closed is not None:
        if not can_see(member, found.closed):
            return text_message(_outside(member)), False
        return closed_reply(found.closed), share
    if found.several is not None:
        return several_reply(query, found.several), share
    if found.deal is None:
        return not_found_reply(query, found.suggestions), False
    if not can_see(member, found.deal):
        return text_message(_outside(member)), False
    return deal_detail(pipeline, snap, found.deal), share


def deal_detail(pipeline: Pipeline, snap, deal: dict) -> dict:
    drivers, actions = snap.explain(deal)
    history = score_runs.deal_risk_history(pipeline.db(), deal["deal_id"])
    return deal_reply(deal, drivers, actions, history, snap.run["confidence"] or "", snap.run["as_of"])  # fmt: skip


def _outside(member) -> str:
    return f"That deal is outside what you can see ({inert(member_scope(member).label)})."


def forecast_request(pipeline: Pipeline, user_id: str, text: str):
    """(snapshot, scope, quarter) for `/forecast <text>`, or a reply explaining the problem."""
    member = pipeline.settings.member(user_id)
    if member is None:
        return text_message(NOT_IN_ROSTER.format(user_id=inert(user_id)))
    if text.strip().lower() in ("help", "?"):
        return text_message(FORECAST_USAGE)
    snap = pipeline.snapshot()
    if snap is None:
        return text_message(NO_RUN)
    query = parse_forecast(text)
    wanted = None
    if query.scope_text:
        regions, managers = snap.names("region"), snap.names("manager")
        wanted = match_scope(query.scope_text, regions, managers)
        if wanted is None:
            known = (  # only leaders may ask for any of them, so only they get the list
                f"Regions: {', '.join(map(inert, regions))}. "
                f"Managers: {', '.join(map(inert, managers))}."
                if member.role == "leader"
                else f"You can see {inert(member_scope(member).label)}."
            )
            return text_message(
                f"I don't know a region or manager called *{short(query.scope_text)}*. "
                f"{known}\n{FORECAST_USAGE}"
            )
    scope = allowed_scope(member, wanted)
    if isinstance(scope, str):
        return text_message(inert(scope))
    table = snap.forecast(scope).table
    quarters = table.loc[table["kind"] == "quarter", "period"].tolist()
    quarter = pick_quarter(query.quarter, quarters)
    if quarter is None:
        return text_message(
            f"I forecast {' and '.join(quarters)} only (this quarter and the next), "
            f"not {short(query.quarter)}.\n{FORECAST_USAGE}"
        )
    return snap, scope, quarter


def register(app: App, pipeline: Pipeline) -> None:
    @app.command("/deal")
    def deal(ack: Ack, command: dict, respond: Respond) -> None:
        ack()
        user = command_user(command)
        if user is None:
            respond(**text_message(UNKNOWN_USER), response_type="ephemeral")
            return
        message, share = deal_answer(pipeline, user, command_text(command))
        respond(**message, response_type="in_channel" if share else "ephemeral")

    @app.command("/forecast")
    def forecast(ack: Ack, command: dict, respond: Respond, client: WebClient) -> None:
        ack(text="Working on the forecast; the chart follows in a moment.")
        user, channel = command_user(command), command_channel(command)
        if user is None or channel is None:
            respond(**text_message(UNKNOWN_USER), response_type="ephemeral")
            return
        request = forecast_request(pipeline, user, command_text(command))
        if isinstance(request, dict):
            respond(**request, response_type="ephemeral")
            return
        snap, scope, quarter = request
        fc = snap.forecast(scope)
        as_of = snap.run["as_of"]
        row = fc.table[(fc.table["kind"] == "quarter") & (fc.table["period"] == quarter)].iloc[0]
        title = (f"{quarter}, {scope.label}: P50 {money(row['p50'])} "
                 f"({money(row['p10'])}-{money(row['p90'])})")  # fmt: skip
        png = fan_chart(fc.table, _won(snap, scope), fc.as_of, title=title)
        upload = slack_api.upload_chart(
            client,
            channel=channel,
            user=user,
            png=png,
            title=inert(f"Forecast {quarter}, {scope.label}, as of {as_of}", plain=True),
            comment=forecast_summary(fc.table, quarter, scope, as_of),
        )
        if upload.direct:
            respond(
                text="I'm not a member of this channel, so I sent the forecast to you as a direct "
                "message. To post forecasts here, invite me with `/invite @revbot`.",
                response_type="ephemeral",
            )


def _won(snap, scope):
    """The deals whose wins this quarter the chart draws as 'won so far'."""
    owners = snap.owners(scope)
    deals = snap.crm.deals
    return deals if owners is None else deals[deals["owner"].isin(owners)]
