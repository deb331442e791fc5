"""The one module that calls the Slack Web API (Bolt's ack/respond aside).

The client retries rate limits (HTTP 429, honouring Retry-After) and dropped connections, so a
burst of digests or uploads slows down instead of failing. Tokens are never logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

from bot.settings import USER_ID, Secrets

log = logging.getLogger(__name__)
NOT_A_MEMBER = ("not_in_channel", "channel_not_found")
# users.lookupByEmail answers users_not_found (older docs say user_not_found); users.info answers
# user_not_found, or user_not_visible for someone the bot may not see (another organisation's)
NO_SUCH_USER = ("users_not_found", "user_not_found", "user_not_visible")


def make_client(secrets: Secrets, timeout: int = 30) -> WebClient:
    """A WebClient on the configured base URL (SLACK_API_URL: GovSlack, a proxy, tests)."""
    kwargs = {"base_url": secrets.api_url} if secrets.api_url else {}
    return WebClient(
        token=secrets.bot_token,
        timeout=timeout,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=3),
        ],
        **kwargs,
    )


def _once(client: WebClient) -> WebClient:
    """The same client retrying only rate limits: a 429 means Slack did nothing, whereas a
    connection dropped after sending may have posted, and a digest must not go out twice."""
    return WebClient(token=client.token, base_url=client.base_url, timeout=client.timeout,
                     retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=3)])  # fmt: skip


def refused(exc: SlackApiError) -> bool:
    """Did Slack answer and refuse (so nothing was posted)? True for ok=false answers and rate
    limits; False for 5xx or unreadable answers, after which the message may exist."""
    status = getattr(exc.response, "status_code", None)
    return status in (200, 429) and isinstance(exc.response.data, dict)


def error_code(exc: SlackApiError) -> str:
    return str(exc.response.get("error", "unknown_error")) if exc.response is not None else "?"


def post_message(client: WebClient, channel: str, message: dict) -> str:
    """Post a message (`text` and `blocks`); returns its ts."""
    response = client.chat_postMessage(channel=channel, unfurl_links=False, **message)
    return str(response["ts"])


def post_digest(client: WebClient, channel: str, message: dict) -> str:
    """Post a digest, retrying rate limits only (see `_once`); returns its ts."""
    return post_message(_once(client), channel, message)


def update_message(client: WebClient, channel: str, ts: str, message: dict) -> None:
    client.chat_update(channel=channel, ts=ts, **message)


def notify_admin(client: WebClient, admin_channel: str | None, text: str) -> bool:
    """Tell the admin channel something went wrong; the log has it either way."""
    log.error("%s", text)
    if not admin_channel:
        return False
    try:
        client.chat_postMessage(channel=admin_channel, text=text)
        return True
    except SlackApiError as exc:
        log.error("could not report to admin channel %s: %s", admin_channel, error_code(exc))
    except Exception as exc:  # the report must never take the caller down with it
        log.error("could not report to admin channel %s: %s", admin_channel, type(exc).__name__)
    return False


@dataclass(frozen=True)
class SlackUser:
    """A workspace member as Slack describes them: their member id and whether their account is
    deactivated (Slack keeps a deactivated member's id and answers for it)."""

    id: str
    deleted: bool = False


def _member(user: object) -> SlackUser | None:
    """The member of a users.* answer; None for a bot, or an id the roster could not hold."""
    if not isinstance(user, dict) or user.get("is_bot"):
        return None
    user_id = str(user.get("id") or "")
    return SlackUser(user_id, bool(user.get("deleted"))) if USER_ID.fullmatch(user_id) else None


def lookup_by_email(client: WebClient, email: str) -> SlackUser | None:
    """The member whose Slack account has this e-mail address (users.lookupByEmail: bot scope
    users:read.email; Tier 3, 50+ a minute, so a long list meets 429s, which the client of
    `make_client` waits out); None when the workspace has no such member. Any other refusal
    (missing_scope, invalid_auth) raises SlackApiError."""
    try:
        return _member(client.users_lookupByEmail(email=email).get("user"))
    except SlackApiError as exc:
        if error_code(exc) in NO_SUCH_USER:
            return None
        raise


def user_info(client: WebClient, user_id: str) -> SlackUser | None:
    """The member with this id (users.info: bot scope users:read; Tier 4); None when Slack does
    not know it (user_not_found, or not visible to the bot). Other refusals raise SlackApiError."""
    try:
        return _member(client.users_info(user=user_id).get("user"))
    except SlackApiError as exc:
        if error_code(exc) in NO_SUCH_USER:
            return None
        raise


@dataclass(frozen=True)
class Upload:
    channel: str  # where the file went
    direct: bool  # True when it went to the user's DM because the bot is not in the channel


def upload_chart(
    client: WebClient, *, channel: str, user: str, png: bytes, title: str, comment: str
) -> Upload:
    """Upload a chart to the channel (files_upload_v2 needs a channel ID); if the bot is not a
    member there, to the user's DM instead."""
    args = dict(file=png, filename="forecast.png", title=title, alt_txt=title,
                initial_comment=comment)  # fmt: skip
    try:
        client.files_upload_v2(channel=channel, **args)
        return Upload(channel, direct=False)
    except SlackApiError as exc:
        if error_code(exc) not in NOT_A_MEMBER:
            raise
        log.info("not in channel %s (%s): sending the chart by DM", channel, error_code(exc))
    dm = open_dm(client, user)
    client.files_upload_v2(channel=dm, **args)
    return Upload(dm, direct=True)


def publish_home(client: WebClient, user_id: str, view: dict) -> None:
    """Publish a person's Home tab (views.publish; no scope beyond the bot's)."""
    client.views_publish(user_id=user_id, view=view)


def open_modal(client: WebClient, trigger_id: str, view: dict) -> None:
    """Open a modal for a press (views.open): the trigger expires 3 seconds after the press."""
    client.views_open(trigger_id=trigger_id, view=view)


def open_dm(client: WebClient, user_id: str) -> str:
    """The id of the app's direct-message channel with a person (conversations.open, im:write)."""
    return str(client.conversations_open(users=user_id)["channel"]["id"])


def time_zone(client: WebClient, user_id: str) -> str | None:
    """A person's time zone as Slack has it ("Europe/Paris"; users.info, users:read); None when
    Slack gives none. Refusals raise SlackApiError."""
    user = client.users_info(user=user_id).get("user")
    tz = user.get("tz") if isinstance(user, dict) else None
    return tz if isinstance(tz, str) and tz else None
