"""`revbot serve` and `revbot morning`: the long-running bot and the one-shot morning run.

One process runs the Bolt app and the scheduler. Socket Mode when SLACK_APP_TOKEN is set (no
public URL needed: the default for an internal tool), else HTTP at POST /slack/events. GET /healthz
is served either way. Digests are claimed in SQLite, so even a second process never posts twice,
but run one scheduler per database (deploy/README.md).
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot import morning, scheduler, slack_api
from bot.app import create_app
from bot.config import SetupError
from bot.server import serve_background, wsgi_app
from bot.settings import Settings
from bot.snapshot import Pipeline

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


def _warm(pipeline, settings: Settings, presets: dict) -> None:
    """Load the data and the snapshot (and each channel's forecast) before the first request."""
    try:
        pipeline.refresh(presets)
        snap = pipeline.snapshot()
        for channel in settings.channels:
            snap.forecast(channel.scope)
    except Exception:
        log.exception("could not prepare the pipeline at start-up; commands will say so")


def serve(
    settings: Settings,
    presets: dict,
    *,
    db_path: Path,
    artifacts: Path,
    host: str,
    port: int,
    scheduler: bool = True,
    ready: threading.Event | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Run until SIGTERM/SIGINT (or `stop` is set). `ready` is set once requests are served."""
    socket_mode = bool(settings.secrets.app_token)
    app, pipeline = create_app(settings, db_path, artifacts)
    log.info("revbot starting: %s mode, database %s, %s", "Socket" if socket_mode else "HTTP",
             db_path, settings.secrets)  # fmt: skip
    _warm(pipeline, settings, presets)
    client = app.client

    def job(channel, day):
        outcome = morning.run_channel(pipeline, client, channel, day, presets)
        log.info("digest %s %s: %s %s", channel.id, day, outcome.status, outcome.detail)
        return outcome

    sched = None
    if scheduler and settings.channels:
        sched = _start_scheduler(settings, pipeline, job, client)
    elif not settings.channels:
        log.warning("no [[channels]] configured: no digest will be posted")
    server, _ = serve_background(wsgi_app(None if socket_mode else app, pipeline), host, port)
    log.info("listening on http://%s:%s (%s)", host, server.server_port,
             "/healthz" if socket_mode else "/slack/events and /healthz")  # fmt: skip
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    handler = None
    if socket_mode:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        handler = SocketModeHandler(app, settings.secrets.app_token)
        handler.connect()
    if ready is not None:
        ready.set()
    stop.wait()
    log.info("revbot stopping")
    if handler is not None:
        handler.close()
    if sched is not None:
        sched.shutdown(wait=False)
    server.shutdown()
    return 0


def _start_scheduler(settings: Settings, pipeline, job, client):
    morning.report_stale_claims(pipeline, client)
    sched = scheduler.start(settings.channels, job, now=_now)
    for channel, day in scheduler.missed(pipeline.db(), settings.channels, _now()):
        log.info("catching up the %s digest for %s, missed while revbot was down", day, channel.id)
        threading.Thread(target=job, args=(channel, day), name=f"catch-up {channel.id}").start()
    return sched


def morning_now(settings: Settings, presets: dict, db_path: Path, artifacts: Path) -> list:
    """Post each channel's digest that is due today (its days, its time passed, in its own
    timezone), once: for running the morning job from cron instead of `revbot serve`."""
    if not settings.secrets.bot_token:
        raise SetupError(
            "SLACK_BOT_TOKEN is not set; to see the digest without Slack, run `revbot digest`"
        )
    if not settings.channels:
        raise SetupError("no [[channels]] in the configuration: nowhere to post the digest")
    pipeline = Pipeline(db_path, artifacts, settings)
    client = slack_api.make_client(settings.secrets)
    outcomes = []
    now = _now()
    for channel in settings.channels:
        day = scheduler.due_today(channel, now)
        if day is None:
            today = now.astimezone(ZoneInfo(channel.timezone)).date().isoformat()
            outcomes.append(morning.Outcome(channel.id, today, "skipped",
                                            f"not due yet ({channel.days} at {channel.time} {channel.timezone})"))  # fmt: skip
            continue
        outcomes.append(morning.run_channel(pipeline, client, channel, day, presets))
    return outcomes
