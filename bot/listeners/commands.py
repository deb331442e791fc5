"""`/deal` and `/forecast`: ack at once, then check who asks, read the saved run, render, answer.

Answers are ephemeral (only the asker sees them) unless they add `share`. `/forecast` posts its
chart in the channel, or by DM when the bot is not a member there, and says so.
"""

from __future__ import annotations

import logging

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot import calls, slack_api
from bot.access import NOT_IN_ROSTER, allowed_scope, can_see, member_scope
from bot.blocks import short
from bot.inert import fold, inert
from bot.listeners.payload import UNKNOWN_USER, command_channel, command_text, command_user
from bot.reader import Reader, SavedRun
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
from bot.settings import Scope
from bot.target_text import (
    calls_text,
    categories_text,
    chance_text,
    movement_lines,
    sources_text,
)
from bot.track_text import accuracy_lines, headline
from dataset.money import money
from forecasting.chart import fan_chart
from forecasting.targets import chance
from forecasting.waterfall import waterfall

log = logging.getLogger(__name__)
NO_RUN = "No pipeline has been scored yet: the first morning run (or `revbot score`) makes one."


def deal_answer(reader: Reader, user_id: str, text: str) -> tuple[dict, bool]:
    """The reply to `/deal <text>` and whether to share it in the channel."""
    words = text.split()
    share = bool(words) and words[-1].lower() == "share"
    query = fold(" ".join(words[:-1] if share else words))  # as pasted from a message, too
    member = reader.settings.member(user_id)
    if member is None:
        return text_message(NOT_IN_ROSTER.format(user_id=inert(user_id))), False
    if not query:
        return text_message(DEAL_USAGE), False
    saved = reader.latest()
    if saved is None:
        return text_message(NO_RUN), False
    found = saved.lookup(query, member_scope(member))
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
    return deal_detail(reader, saved, found.deal), share


def deal_detail(reader: Reader, saved: SavedRun, deal: dict) -> dict:
    """The full answer about one deal of a saved run, as `/deal` and the digest's "Why?" give it."""
    drivers, actions = saved.explain(deal)
    history = reader.risk_history(deal["deal_id"])
    return deal_reply(deal, drivers, actions, history, saved.run["confidence"] or "", saved.as_of)


def _outside(member) -> str:
    return f"That deal is outside what you can see ({inert(member_scope(member).label)})."


def movement_answer(reader: Reader, command: dict, text: str, respond: Respond, client) -> None:
    """`/forecast movement [scope]`: the lines and the waterfall, as a chart upload."""
    user, channel = command_user(command), command_channel(command)
    if user is None or channel is None:
        respond(**text_message(UNKNOWN_USER), response_type="ephemeral")
        return
    request = forecast_request(reader, user, text)
    if isinstance(request, dict):
        respond(**request, response_type="ephemeral")
        return
    saved, scope, quarter = request
    moved = saved.movements(scope, quarter)
    lines = movement_lines(moved, quarter, saved.as_of)
    if moved is None:
        respond(**text_message("\n".join(lines)), response_type="ephemeral")
        return
    began = moved[1]
    png = waterfall(began, f"{quarter}, {scope.label}: what moved since {began.since.date()}")
    upload = slack_api.upload_chart(
        client, channel=channel, user=user, png=png,
        title=inert(f"Pipeline movement {quarter}, {scope.label}, as of {saved.as_of}", plain=True),
        comment=f"*What moved in {quarter}, {inert(scope.label)}* (as of {saved.as_of})\n"
        + "\n".join(lines),
    )  # fmt: skip
    if upload.direct:
        respond(text="I'm not a member of this channel, so I sent it to you as a direct message.",
                response_type="ephemeral")  # fmt: skip


def call_answer(reader: Reader, user_id: str, text: str) -> dict:
    """`/forecast call AMOUNT [quarter] [scope]`: keep the caller's number for the quarter."""
    words = text.split()
    amount = calls.parse_amount(words[0]) if words else None
    if amount is None:
        return text_message("Give your number first: `/forecast call 1.2M`, or with a quarter "
                            f"and a scope: `/forecast call 950k next West`.\n{FORECAST_USAGE}")  # fmt: skip
    request = forecast_request(reader, user_id, " ".join(words[1:]))
    if isinstance(request, dict):
        return request
    saved, scope, quarter = request
    member = reader.settings.member(user_id)
    caller = member.name if member and member.name else user_id
    calls.record(reader.db(), quarter=quarter, scope=str(scope), amount=amount, user_id=user_id,
                 caller=caller, as_of=saved.as_of)  # fmt: skip
    fc = saved.forecast(scope)
    row = fc.quarter(quarter)
    odds = chance(fc.grids.get(quarter, []), amount)
    likely = f"; the model's chance of reaching it: {chance_text(odds)}" if odds is not None else ""
    return text_message(
        f"Recorded your call for {quarter}, {inert(scope.label)}: *{money(amount)}*. The model's "
        f"P50 is {money(row['p50'])}{likely}. Every forecast of {quarter} for "
        f"{inert(scope.label)} now shows it; a new call replaces it there (all calls are kept)."
    )


def accuracy_answer(reader: Reader, user_id: str, text: str) -> dict:
    """`/forecast accuracy [scope]`: the track record of the asker's scope (or the one named),
    and for a leader asking for no scope, of every scope forecast so far."""
    request = forecast_request(reader, user_id, text)
    if isinstance(request, dict):
        return request
    saved, scope, _ = request
    this = str(saved.forecast(scope).quarter()["period"])
    lines = accuracy_lines(reader.track_record(scope, saved.as_of), inert(scope.label), this)
    member = reader.settings.member(user_id)
    if member is not None and member.role == "leader" and not text.strip():
        # every other scope ever forecast, one line each (the whole of each would not fit)
        others = [reader.track_record(s, saved.as_of) for s in reader.tracked_scopes()
                  if s != scope]  # fmt: skip
        shown = [(r, headline(r, pointer=False)) for r in others]
        if any(text for _, text in shown):
            lines.append("*Other teams* (`/forecast accuracy <region or manager>` for one):")
            lines += [f"• {inert(Scope.parse(r.scope).label)}: {text}" for r, text in shown if text]
    return text_message("\n".join(lines))


def forecast_reply(reader: Reader, saved: SavedRun, scope: Scope, quarter: str) -> tuple[str, str, bytes]:  # fmt: skip
    """`/forecast`'s upload: its title, its comment (the figures, the target's odds, the calls,
    the categories) and the fan chart, with the target's line on its own quarter only."""
    fc = saved.forecast(scope)
    row = fc.quarter(quarter)
    heading = (f"{quarter}, {scope.label}: P50 {money(row['p50'])} "
               f"({money(row['p10'])}-{money(row['p90'])})")  # fmt: skip
    odds = saved.odds(scope, quarter)
    split, basis = saved.categories(scope, quarter)
    this_quarter = quarter == str(fc.quarter()["period"])  # the chart's line is this quarter's
    target = odds.target if odds and this_quarter else None
    # the same run, scope, quarter and target draw the same picture: drawn once per run
    png = saved.kept(("chart", str(scope), quarter, target),
                     lambda: fan_chart(fc.table, fc.won, fc.as_of, target, title=heading))  # fmt: skip
    comment = forecast_summary(
        fc.table, quarter, scope, saved.as_of, odds=odds,
        categories=categories_text(split, quarter, basis),
        calls=calls_text(calls.latest(reader.db(), quarter, str(scope)), float(row["p50"])),
        sources=sources_text(row, fc.open_deals, fc.new_per_week, quarter, saved.as_of),
    )  # fmt: skip
    title = inert(f"Forecast {quarter}, {scope.label}, as of {saved.as_of}", plain=True)
    return title, comment, png


def forecast_request(reader: Reader, user_id: str, text: str):
    """(saved run, scope, quarter) for `/forecast <text>`, or a reply explaining the problem."""
    member = reader.settings.member(user_id)
    if member is None:
        return text_message(NOT_IN_ROSTER.format(user_id=inert(user_id)))
    if text.strip().lower() in ("help", "?"):
        return text_message(FORECAST_USAGE)
    saved = reader.latest()
    if saved is None:
        return text_message(NO_RUN)
    query = parse_forecast(text)
    wanted = None
    if query.scope_text:
        regions, managers = saved.names("region"), saved.names("manager")
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
    table = saved.forecast(scope).table
    quarters = table.loc[table["kind"] == "quarter", "period"].tolist()
    quarter = pick_quarter(query.quarter, quarters)
    if quarter is None:
        return text_message(
            f"I forecast {' and '.join(quarters)} only (this quarter and the next), "
            f"not {short(query.quarter)}.\n{FORECAST_USAGE}"
        )
    return saved, scope, quarter


def register(app: App, reader: Reader) -> None:
    @app.command("/deal")
    def deal(ack: Ack, command: dict, respond: Respond) -> None:
        ack()
        user = command_user(command)
        if user is None:
            respond(**text_message(UNKNOWN_USER), response_type="ephemeral")
            return
        message, share = deal_answer(reader, user, command_text(command))
        respond(**message, response_type="in_channel" if share else "ephemeral")

    @app.command("/forecast")
    def forecast(ack: Ack, command: dict, respond: Respond, client: WebClient) -> None:
        words = command_text(command).split()
        if words[:1] and words[0].lower() == "movement":  # what moved, as a waterfall
            ack(text="Working on what moved; the chart follows in a moment.")
            movement_answer(reader, command, " ".join(words[1:]), respond, client)
            return
        if words[:1] and words[0].lower() == "accuracy":  # the track record, in words
            ack()
            user = command_user(command)
            answer = accuracy_answer(reader, user, " ".join(words[1:])) if user else text_message(UNKNOWN_USER)  # fmt: skip
            respond(**answer, response_type="ephemeral")
            return
        if words[:1] and words[0].lower() == "call":  # a manager's number, not a chart
            ack()
            user = command_user(command)
            answer = call_answer(reader, user, " ".join(words[1:])) if user else text_message(UNKNOWN_USER)  # fmt: skip
            respond(**answer, response_type="ephemeral")
            return
        ack(text="Working on the forecast; the chart follows in a moment.")
        user, channel = command_user(command), command_channel(command)
        if user is None or channel is None:
            respond(**text_message(UNKNOWN_USER), response_type="ephemeral")
            return
        request = forecast_request(reader, user, command_text(command))
        if isinstance(request, dict):
            respond(**request, response_type="ephemeral")
            return
        saved, scope, quarter = request
        title, comment, png = forecast_reply(reader, saved, scope, quarter)
        upload = slack_api.upload_chart(
            client, channel=channel, user=user, png=png, title=title, comment=comment
        )
        if upload.direct:
            respond(
                text="I'm not a member of this channel, so I sent the forecast to you as a direct "
                "message. To post forecasts here, invite me with `/invite @revbot`.",
                response_type="ephemeral",
            )
