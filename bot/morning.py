"""The morning run for one channel: refresh the data, claim the day's digest, build it, post it.

A digest is claimed in SQLite (unique per channel and day) before it is posted, so a restart or a
second process never posts it twice. Slack refusing the message (ok=false) leaves nothing posted:
the claim is marked failed and a later run may take it again. Any other failure after the claim
(a timeout, a crash) may have posted it: the claim stays, and the admin channel is asked to check
rather than risk a double post. Every failure is reported, in the log and to the admin channel.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import slack_api
from bot.blocks import check_limits, digest_message
from bot.digest import Digest, build, in_scope
from bot.settings import Channel, Scope
from bot.snapshot import Pipeline, Snapshot
from dataset import store

log = logging.getLogger(__name__)
WORKER = f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Outcome:
    channel: str
    digest_date: str
    status: str  # posted | skipped | failed
    detail: str = ""


def compose(
    db,
    snap: Snapshot,
    *,
    scope: Scope,
    top: int,
    min_risk: float,
    previous_run: int | None,
    channel_id: str | None = None,
    notes: list[str] | None = None,
) -> Digest:
    """A scope's digest on the snapshot's run, compared with `previous_run` (None: first one)."""
    previous = store.run_scores(db, previous_run) if previous_run else None
    gone = [] if previous is None else in_scope(previous, scope)["deal_id"].tolist()
    digest = build(
        run=snap.run,
        scores=snap.scores,
        scope=scope,
        top=top,
        min_risk=min_risk,
        marks=store.marks(db, channel_id or ""),  # no channel (the offline digest): no marks
        previous=previous,
        closed=store.closed_since(db, gone),
        quarter=snap.quarter(scope),
    )
    digest.notes.extend(notes or [])
    return digest


def run_channel(
    pipeline: Pipeline, client: WebClient, channel: Channel, digest_date: str, presets=None
) -> Outcome:
    """Post one channel's digest for a day, at most once however often this is called."""
    db = pipeline.db()
    admin = pipeline.settings.admin_channel
    if (record := store.digest_record(db, channel.id, digest_date)) and record[
        "status"
    ] != "failed":
        return Outcome(channel.id, digest_date, "skipped", f"already {record['status']}")
    try:
        notes = pipeline.refresh(presets)
        snap = pipeline.snapshot()
        if snap is None:
            raise RuntimeError("no score run to report on")
    except Exception as exc:
        log.exception("morning run for %s failed before posting", channel.id)
        slack_api.notify_admin(
            client,
            admin,
            f"revbot: the {digest_date} digest for <#{channel.id}> was not posted: {exc}",
        )
        return Outcome(channel.id, digest_date, "failed", str(exc))
    if not store.claim_digest(db, channel.id, digest_date, snap.run_id, WORKER):
        return Outcome(channel.id, digest_date, "skipped", "claimed by another run")
    try:
        previous = store.last_posted_run(db, channel.id, digest_date)
        digest = compose(
            db, snap, scope=channel.scope, top=channel.top, min_risk=channel.min_risk,
            previous_run=previous, channel_id=channel.id, notes=notes,
        )  # fmt: skip
        message = digest_message(digest)
        problems = check_limits(message)
        if problems:
            raise ValueError(f"digest outside Block Kit limits: {problems}")
        ts = slack_api.post_message(client, channel.id, message)
    except SlackApiError as exc:  # Slack refused it: nothing was posted, a later run may retry
        code = slack_api.error_code(exc)
        store.finish_digest(db, channel.id, digest_date, error=code)
        hint = " (invite the bot: /invite @revbot)" if code in slack_api.NOT_A_MEMBER else ""
        slack_api.notify_admin(
            client,
            admin,
            f"revbot: the {digest_date} digest for <#{channel.id}> failed: {code}{hint}",
        )
        return Outcome(channel.id, digest_date, "failed", code)
    except Exception as exc:  # it may or may not have gone out: never post it twice
        log.exception("digest for %s on %s: unknown outcome", channel.id, digest_date)
        store.note_digest_error(db, channel.id, digest_date, f"unknown outcome: {exc}")
        slack_api.notify_admin(
            client, admin,
            f"revbot: the {digest_date} digest for <#{channel.id}> may not have been posted "
            f"({exc}); please check the channel. It will not be retried automatically.",
        )  # fmt: skip
        return Outcome(channel.id, digest_date, "failed", str(exc))
    store.finish_digest(db, channel.id, digest_date, slack_ts=ts)
    log.info("digest for %s on %s posted (ts %s)", channel.id, digest_date, ts)
    return Outcome(channel.id, digest_date, "posted", ts)
