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

import pandas as pd
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import ledger, slack_api
from bot.blocks import check_limits, digest_message
from bot.digest import COMPARED, Digest, build, candidates, in_scope, left_since, nothing_new
from bot.inert import inert
from bot.mentions import mentions_of
from bot.reader import Reader, SavedRun
from bot.services import Services
from bot.settings import Channel, Scope
from bot.target_text import movement_text
from bot.track_text import headline

log = logging.getLogger(__name__)
WORKER = f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Outcome:
    channel: str
    digest_date: str
    status: str  # posted | skipped | failed
    detail: str = ""


def compose(
    reader: Reader,
    saved: SavedRun,
    *,
    scope: Scope,
    top: int,
    min_risk: float,
    previous_run: int | None,
    channel_id: str | None = None,
    notes: list[str] | None = None,
    repeat: bool = False,
    weekly: bool | None = None,
) -> Digest:
    """A scope's digest on a saved run, compared with `previous_run` (None: first one).
    `repeat`: no new data since the last digest (it says so). `weekly`: add what moved in the
    quarter since last week (default: when the data's day is a Monday). Reads only: every deal
    it lists was given its reasons by the refresh."""
    listable = candidates(saved.scores, scope, min_risk, top)
    missing = listable.loc[listable["drivers"].isna(), "deal_id"].tolist()
    if missing:  # below the run's explained top: reasons worked out once, saved with the run
        reader.ensure_reasons(saved, missing)
    previous = reader.run_scores(previous_run, COMPARED) if previous_run else None
    gone = ([] if previous is None
            else left_since(in_scope(previous, scope)["deal_id"], saved.scores["deal_id"]))  # fmt: skip
    digest = build(
        run=saved.run,
        scores=saved.scores,
        scope=scope,
        top=top,
        min_risk=min_risk,
        marks=ledger.marks(reader.db(), channel_id or ""),  # no channel (offline): no marks
        previous=previous,
        closed=reader.closed_since(gone),
        quarter=saved.quarter(scope),
    )
    digest.odds = saved.odds(scope)
    digest.track = headline(reader.track_record(scope, saved.as_of))
    if weekly if weekly is not None else pd.Timestamp(saved.as_of).weekday() == 0:
        moved = saved.movements(scope)
        if moved is not None:
            quarter = str(saved.forecast(scope).quarter()["period"])
            digest.movement = movement_text(moved[0], quarter)
    if repeat and digest.news is None:  # no new data, and none before to compare with
        digest.news = nothing_new()
        digest.deals["previous_risk"] = digest.deals["risk"]  # unchanged, not new
    if repeat:
        digest.notes.append(
            f"no new CRM data since {saved.as_of}: the same scores as the last digest"
        )
    digest.notes.extend(notes or [])
    return digest


def compared_with(reader: Reader, run_id: int, last_posted: int | None) -> tuple[int | None, bool]:
    """(the run a channel's "what changed" compares with, whether the digest repeats the last
    one's data): the run of the channel's last digest (this same run when no new data came:
    nothing changed, and the digest says so); before a channel's first digest, the latest run
    made of other data."""
    if last_posted is not None:
        return last_posted, last_posted == run_id
    other = reader.previous_run(run_id)
    return (other["run_id"] if other else None), False


def run_channel(
    services: Services, client: WebClient, channel: Channel, digest_date: str
) -> Outcome:
    """Post one channel's digest for a day, at most once however often this is called.

    Everything that can fail without Slack (data, scoring, forecast, rendering) happens before
    the claim, so such a failure leaves the day free for a later run; after the claim only the
    post remains."""
    reader = services.reader
    db = reader.db()
    admin = services.settings.admin_channel
    where = f"the {digest_date} digest for <#{channel.id}>"
    if (record := ledger.digest_record(db, channel.id, digest_date)) and record[
        "status"
    ] != "failed":
        if record["status"] == "claimed":
            log.warning("%s is claimed without a posted message (%s): not posting it again",
                        where, record["error"] or "being posted now")  # fmt: skip
        return Outcome(channel.id, digest_date, "skipped", f"already {record['status']}")
    try:
        refreshed = services.refresher.refresh()
        saved = reader.latest()
        if saved is None:
            raise RuntimeError("no score run to report on")
        previous, repeat = compared_with(
            reader, saved.run_id, ledger.last_posted_run(db, channel.id, digest_date)
        )
        digest = compose(
            reader, saved, scope=channel.scope, top=channel.top, min_risk=channel.min_risk,
            previous_run=previous, channel_id=channel.id, notes=refreshed.problems, repeat=repeat,
            weekly=pd.Timestamp(digest_date).weekday() == 0,  # the Monday digest
        )  # fmt: skip
        message = digest_message(digest, mentions=mentions_of(services.settings.roster))
        problems = check_limits(message)
        if problems:
            raise ValueError(f"digest outside Block Kit limits: {problems}")
    except Exception as exc:
        log.exception("%s was not posted: preparing it failed", where)
        slack_api.notify_admin(client, admin, f"revbot: {where} was not posted: {inert(str(exc))}")
        return Outcome(channel.id, digest_date, "failed", str(exc))
    if not ledger.claim_digest(db, channel.id, digest_date, saved.run_id, WORKER):
        return Outcome(channel.id, digest_date, "skipped", "claimed by another run")
    try:
        ts = slack_api.post_digest(client, channel.id, message)
    except SlackApiError as exc:
        code = slack_api.error_code(exc)
        if not slack_api.refused(exc):  # a 5xx or an unreadable answer: it may have gone out
            ledger.note_digest_error(db, channel.id, digest_date, f"unknown outcome: {code}")
            slack_api.notify_admin(client, admin, f"revbot: {where} may or may not have been posted (Slack "
                    f"answered {inert(code)}); please check the channel. It will not be "
                    "retried automatically.")  # fmt: skip
            return Outcome(channel.id, digest_date, "failed", f"unknown outcome: {code}")
        ledger.finish_digest(db, channel.id, digest_date, error=code)  # refused: nothing posted
        hint = " (invite the bot: /invite @revbot)" if code in slack_api.NOT_A_MEMBER else ""
        slack_api.notify_admin(client, admin, f"revbot: {where} failed: {inert(code)}{hint}; the next run "
                "will try again")  # fmt: skip
        return Outcome(channel.id, digest_date, "failed", code)
    except Exception as exc:  # a dropped connection or a timeout: it may have gone out
        log.exception("%s: unknown outcome", where)
        ledger.note_digest_error(db, channel.id, digest_date, f"unknown outcome: {exc}")
        slack_api.notify_admin(client, admin, f"revbot: {where} may or may not have been posted "
                f"({inert(str(exc))}); please check the channel. It will not be retried "
                "automatically.")  # fmt: skip
        return Outcome(channel.id, digest_date, "failed", f"unknown outcome: {exc}")
    ledger.finish_digest(db, channel.id, digest_date, slack_ts=ts)
    log.info("%s posted (ts %s)", where, ts)
    return Outcome(channel.id, digest_date, "posted", ts)


def report_stale_claims(services: Services, client: WebClient, older_than_minutes: int = 10) -> list[dict]:  # fmt: skip
    """Claims left without a posted message (the process died mid-post): tell the admin once
    at start-up rather than risk a double post."""
    db = services.reader.db()
    stale = ledger.stale_claims(db, older_than_minutes)
    for r in stale:
        slack_api.notify_admin(client, services.settings.admin_channel,
                f"revbot: the {r['digest_date']} digest for <#{r['channel_id']}> was being posted "
                "when revbot stopped; please check the channel. It will not be retried "
                "automatically.")  # fmt: skip
        ledger.note_digest_error(db, r["channel_id"], r["digest_date"],
                                 "unknown outcome: revbot stopped while posting; reported")  # fmt: skip
    return stale
