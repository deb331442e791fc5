"""`revbot serve` and `revbot morning`: the long-running bot and the one-shot morning run.

One process runs the Bolt app and the scheduler. Socket Mode when SLACK_APP_TOKEN is set (no
public URL needed: the default for an internal tool), else HTTP at POST /slack/events. GET /healthz
and /readyz are served either way: the process listens at once and warms up behind them. Digests
are claimed in SQLite, so even a second process never posts twice, but run one scheduler per
database (deploy/README.md).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from bot import morning, scheduler, slack_api
from bot.app import create_app
from bot.config import SetupError
from bot.home_tabs import HomeTabs
from bot.nudge_send import Nudger
from bot.readiness import Readiness
from bot.services import Services, build
from bot.settings import Settings
from bot.wsgi import serve_background, wsgi_app

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


def _warm(services: Services) -> str | None:
    """Bring the data and the saved run up to date (the refresh: newest export in, scored and
    forecast if new) and load it for the readers. Returns what failed, if anything: the bot
    serves anyway, and each command says what it lacks."""
    try:
        services.refresher.refresh()
        services.reader.latest()
    except Exception as exc:
        log.exception("could not prepare the pipeline at start-up; commands will say so")
        return f"{type(exc).__name__}: {exc}"
    return None


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
    """Run until SIGTERM/SIGINT (or `stop` is set). Listens at once, then warms up on a thread
    (/readyz says "starting" meanwhile) and starts the digest scheduler when warm. `ready` is
    set once requests are answered (the warm-up may still be running)."""
    socket_mode = bool(settings.secrets.app_token)
    readiness = Readiness()
    app, services = create_app(settings, db_path, artifacts, ready=readiness, presets=presets)
    log.info("revbot starting: %s mode, database %s, %s", "Socket" if socket_mode else "HTTP",
             db_path, settings.secrets)  # fmt: skip
    server, _ = serve_background(
        wsgi_app(None if socket_mode else app, services.reader, readiness), host, port
    )
    log.info("listening on http://%s:%s (%s); warming up", host, server.server_port,
             "/healthz, /readyz" if socket_mode else "/slack/events, /healthz, /readyz")  # fmt: skip
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
    warm = _WarmUp(services, app.client, readiness, scheduler, stop)
    threading.Thread(target=warm.run, name="warm-up", daemon=True).start()
    stop.wait()
    log.info("revbot stopping")
    if handler is not None:
        handler.close()
    warm.stop()
    server.shutdown()
    return 0


class _WarmUp:
    """The warm-up thread: refresh, say ready, then start the scheduler unless revbot is
    already stopping (a warm-up cannot be interrupted; it is left to die with the process)."""

    def __init__(self, services: Services, client, readiness: Readiness, scheduler: bool,
                 stopping: threading.Event) -> None:  # fmt: skip
        self.services, self.settings, self.client = services, services.settings, client
        self.readiness, self.scheduler, self.stopping = readiness, scheduler, stopping
        self._lock = threading.Lock()
        self._sched = None
        self.home = HomeTabs(services.reader, client)
        self.nudger = Nudger(services.reader, client)

    def nudge(self) -> None:
        """The hourly nudges: each person's, when it is day where they are."""
        try:
            self.nudger.run(_now())
        except Exception:  # the next hour tries again
            log.exception("the nudges failed")

    def job(self, channel, day):
        outcome = morning.run_channel(self.services, self.client, channel, day)
        log.info("digest %s %s: %s %s", channel.id, day, outcome.status, outcome.detail)
        self.home.refresh_all()  # the roster's Home tabs, once per new run
        return outcome

    def run(self) -> None:
        started = time.monotonic()
        problem = _warm(self.services)
        self.readiness.done(problem)
        log.info("ready after %.0f s of warm-up%s", time.monotonic() - started,
                 f" ({problem})" if problem else "")  # fmt: skip
        if problem is None:
            self.home.refresh_all()
        nudging = self.settings.nudges.enabled and bool(self.settings.roster)
        if not self.settings.channels:
            log.warning("no [[channels]] configured: no digest will be posted")
            if not nudging:
                return
        with self._lock:
            if self.scheduler and not self.stopping.is_set():
                self._sched = _start_scheduler(self.services, self.job, self.client)
                if nudging:  # hourly: each person hears in their own morning, not at night
                    self._sched.add_job(self.nudge, CronTrigger(minute=5, timezone="UTC"), id="nudges",
                                        name="nudges", coalesce=True, max_instances=1,
                                        misfire_grace_time=1800, replace_existing=True)  # fmt: skip

    def stop(self) -> None:
        with self._lock:
            if self._sched is not None:
                self._sched.shutdown(wait=False)


def _start_scheduler(services: Services, job, client):
    morning.report_stale_claims(services, client)
    channels = services.settings.channels
    sched = scheduler.start(channels, job, now=_now)
    for channel, day in scheduler.missed(services.reader.db(), channels, _now()):
        log.info("catching up the %s digest for %s, missed while revbot was down", day, channel.id)
        # not a daemon (a thread started by the daemon warm-up would be one by default): a
        # stop waits for a digest being posted, so its claim is marked posted, not left behind
        threading.Thread(target=job, args=(channel, day), name=f"catch-up {channel.id}",
                         daemon=False).start()  # fmt: skip
    return sched


def morning_now(
    settings: Settings, presets: dict, db_path: Path, artifacts: Path, verbose: bool = False
) -> list:
    """Post each channel's digest that is due today (its days, its time passed, in its own
    timezone), once: for running the morning job from cron instead of `revbot serve`."""
    if not settings.secrets.bot_token:
        raise SetupError(
            "SLACK_BOT_TOKEN is not set; to see the digest without Slack, run `revbot digest`"
        )
    if not settings.channels:
        raise SetupError("no [[channels]] in the configuration: nowhere to post the digest")
    services = build(db_path, artifacts, settings, presets, verbose=verbose)
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
        outcomes.append(morning.run_channel(services, client, channel, day))
    HomeTabs(services.reader, client).refresh_all()  # the roster's Home tabs on the new run
    try:  # the nudges of those whose day it is (run it hourly from cron for the others)
        Nudger(services.reader, client).run(now)
    except Exception:
        log.exception("the nudges failed")
    return outcomes
