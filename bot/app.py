"""The composition root: settings, data, Slack client and Bolt app wired together, once.

Nothing else constructs these; tests build the same app with a WebClient pointed at a loopback
fake Slack, so what is tested is what runs.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from slack_bolt import Ack, App
from slack_bolt.error import BoltError
from slack_sdk import WebClient

from bot import handoff, readiness, slack_api
from bot.config import SetupError
from bot.listeners import actions, commands, home, nudging
from bot.readiness import Readiness
from bot.services import Services, build
from bot.settings import Settings

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    db_path: Path,
    artifacts: Path,
    client: WebClient | None = None,
    ready: Readiness | None = None,
    work_slots: int = handoff.WORK_SLOTS,
    presets: dict | None = None,
) -> tuple[App, Services]:
    """The Bolt app with its listeners (readers only), and the services: the one writer the
    scheduler and the warm-up call, and the reader the listeners get. Request signatures are always
    verified (Socket Mode payloads come over an authenticated socket instead). While `ready`
    says starting, commands get a "starting" note; without it the app counts as ready."""
    if not settings.secrets.bot_token:
        raise SetupError("SLACK_BOT_TOKEN is not set: `revbot serve` needs the bot's xoxb- token")
    if not settings.secrets.app_token and not settings.secrets.signing_secret:
        raise SetupError(
            "set SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode): see deploy/README.md"
        )
    client = client or slack_api.make_client(settings.secrets)
    services = build(db_path, artifacts, settings, presets)
    slots = handoff.WorkSlots(work_slots)
    app = _bolt_app(client, settings, handoff.ListenerExecutor(slots))
    readiness.install(app, ready or Readiness(ready=True))  # before handoff: it answers itself
    handoff.install(app, slots)
    commands.register(app, services.reader)
    actions.register(app, services.reader)
    home.register(app, services.reader)  # before the catch-all event listener below
    nudging.register(app, services.reader)

    # revbot listens to app_home_opened only, but another may come (a subscription added in the app's settings):
    # Bolt answers a request no listener takes with a 404 and, over Socket Mode, no ack, so
    # Slack would send it again and again. Registered last, this takes only what nothing else did.
    @app.event(re.compile(".*"))
    def any_event(ack: Ack, event: dict) -> None:
        ack()
        log.debug("ignored a %s event: revbot listens to none", event.get("type"))

    @app.error
    def on_error(error: Exception, body: dict, respond, logger) -> None:
        logger.exception("listener failed: %s", type(error).__name__)
        if body.get("response_url"):
            respond(text="Sorry, something went wrong on my side; the error is in revbot's log.",
                    response_type="ephemeral", replace_original=False)  # fmt: skip

    if settings.roster is None:
        log.warning(
            "no [roster] in the configuration: everyone in the workspace may ask for any deal"
        )
    elif not settings.roster:  # `[roster]` with only people_csv, say, before the first build
        log.warning("[roster] lists no one: nobody may see deal data until `revbot roster "
                    "--build` (or you) adds members")  # fmt: skip
    else:
        log.info("roster: %d members", len(settings.roster))
    return app, services


def _bolt_app(client: WebClient, settings: Settings, executor: handoff.ListenerExecutor) -> App:
    """Bolt's App, which checks the bot token with Slack's auth.test as it is built: a failure
    becomes one line saying what to check, not a traceback."""
    where = settings.secrets.api_url or "https://slack.com/api/"
    try:
        return App(
            client=client,
            signing_secret=settings.secrets.signing_secret or "",
            request_verification_enabled=bool(settings.secrets.signing_secret),
            listener_executor=executor,
        )
    except BoltError as exc:  # Slack answered: the token is wrong, revoked or lacks a scope
        raise SetupError(
            f"Slack refused the bot token at start-up ({exc}); copy SLACK_BOT_TOKEN again "
            "(deploy/README.md, step 3)"
        ) from None
    except OSError as exc:  # no answer: refused, unresolvable, timed out (URLError included)
        reason = getattr(exc, "reason", None) or exc.strerror or exc
        raise SetupError(
            f"cannot reach Slack at {where} to check the bot token: {reason}. Check the "
            "network, any proxy, and SLACK_API_URL if set"
        ) from None
