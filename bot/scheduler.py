"""Morning digests on a cron per channel (APScheduler 3.x), and the catch-up after downtime.

APScheduler's defaults would lose digests: a 1-second misfire grace skips a run that starts a
little late, and the in-memory job store forgets a run missed while the bot was down. So each job
gets the channel's grace window and coalescing, and at start-up `missed` finds, from the cron and
the `digest_runs` table, any run of the last grace window that never went out: it is posted once
(the SQLite claim makes "once" hold across restarts and processes; a persistent job store could
not, since APScheduler's stores cannot be shared between processes).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from bot import ledger
from bot.settings import Channel

log = logging.getLogger(__name__)


def trigger(channel: Channel) -> CronTrigger:
    hour, minute = channel.hour_minute
    return CronTrigger(
        day_of_week=channel.days, hour=hour, minute=minute, timezone=ZoneInfo(channel.timezone)
    )


def digest_date(channel: Channel, when: datetime) -> str:
    """The day a run belongs to: its scheduled time's date in the channel's timezone."""
    return when.astimezone(ZoneInfo(channel.timezone)).date().isoformat()


def last_fire(channel: Channel, now: datetime) -> datetime | None:
    """The most recent scheduled time at or before `now` within the grace window."""
    return _last_fire(channel, now, timedelta(minutes=channel.grace_minutes))


def _last_fire(channel: Channel, now: datetime, window: timedelta) -> datetime | None:
    cron = trigger(channel)
    fire, last = cron.get_next_fire_time(None, now - window), None
    while fire is not None and fire <= now:
        last = fire
        # step in UTC: wall-clock arithmetic would land before `fire` in a repeated DST hour
        fire = cron.get_next_fire_time(fire, fire.astimezone(UTC) + timedelta(seconds=1))
    return last


def due_today(channel: Channel, now: datetime) -> str | None:
    """The day whose run is due for `revbot morning` (cron): a scheduled time of the channel
    passed today, in its timezone (None on its days off, or before its time)."""
    fire = _last_fire(channel, now, timedelta(days=1))
    if fire is None:
        return None
    day = digest_date(channel, fire)
    return day if day == digest_date(channel, now) else None


def job_day(channel: Channel, now: datetime) -> str:
    """The day a scheduled job posts for: its scheduled time's, not the moment it runs (a run
    late past midnight still posts the day it was due for)."""
    return digest_date(channel, last_fire(channel, now) or now)


def missed(db, channels: tuple[Channel, ...], now: datetime) -> list[tuple[Channel, str]]:
    """(channel, day) of the runs due within their grace window that have no digest yet (or
    only a failed attempt)."""
    out = []
    for channel in channels:
        fire = last_fire(channel, now)
        if fire is None:
            continue
        day = digest_date(channel, fire)
        record = ledger.digest_record(db, channel.id, day)
        if record is None or record["status"] == "failed":
            out.append((channel, day))
    return out


def start(
    channels: tuple[Channel, ...],
    job: Callable[[Channel, str], object],
    now: Callable[[], datetime],
) -> BackgroundScheduler:
    """A running scheduler with one cron job per channel. `job(channel, day)` posts a digest."""
    scheduler = BackgroundScheduler(timezone="UTC")
    for channel in channels:
        scheduler.add_job(
            lambda c=channel: job(c, job_day(c, now())),
            trigger(channel),
            id=f"digest:{channel.id}",
            name=f"digest for {channel.id} ({channel.scope})",
            replace_existing=True,
            misfire_grace_time=channel.grace_minutes * 60,
            coalesce=True,
            max_instances=1,
        )
    scheduler.start()
    for j in scheduler.get_jobs():
        log.info("scheduled %s: next at %s", j.name, j.next_run_time)
    return scheduler
