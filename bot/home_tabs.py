"""Publishing the Home tab (`views.publish`): on `app_home_opened`, on a filter or page picked,
and for every roster member after each new score run.

Reads only: the view is built from the saved run (`bot.home`); a page's deals below the run's
explained top get their reasons from the writer, once, as the digest's do. A failure to publish
is logged, never raised: a Home tab is refreshed again when its owner opens it.
"""

from __future__ import annotations

import logging
import threading

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import nudge_ledger, slack_api
from bot.access import NOT_IN_ROSTER, member_scope
from bot.home import (
    PAGE,
    Forecast,
    HomeState,
    check_view,
    collapse_twins,
    filtered,
    home_view,
    notice_view,
    on_a_page,
)
from bot.inert import inert
from bot.mentions import mentions_of
from bot.reader import NotForecast, Reader, SavedRun
from bot.settings import Member, Scope

log = logging.getLogger(__name__)
NO_RUN = "No pipeline has been scored yet: your dashboard appears after the first morning run."


def _forecast(saved: SavedRun, scope: Scope) -> Forecast | None:
    try:
        quarter, p10, p50, p90 = saved.quarter(scope)
        fc = saved.forecast(scope)
        return Forecast(quarter, p10, p50, p90, saved.odds(scope),
                        (fc.quarter(), fc.open_deals, fc.new_per_week))  # fmt: skip
    except (NotForecast, IndexError):  # no forecast for the scope, or none of this quarter
        return None


def view_for(reader: Reader, member: Member | None, user_id: str, state: HomeState) -> dict:
    """The Home tab one user should see now."""
    if member is None:
        return notice_view(NOT_IN_ROSTER.format(user_id=inert(user_id)))
    saved = reader.latest()
    if saved is None:
        return notice_view(NO_RUN)
    nudges = reader.settings.nudges
    per_day = None
    if nudges.enabled and reader.settings.roster:  # nudges go to the roster's people only
        per_day = nudge_ledger.budget(reader.db(), user_id, nudges.per_day)
    return scope_view(reader, saved, member_scope(member), state, per_day)


def scope_view(reader: Reader, saved: SavedRun, scope: Scope, state: HomeState,
               nudges_per_day: int | None = None) -> dict:  # fmt: skip
    """The dashboard of a scope on a saved run (what `revbot digest` draws as home.png too)."""
    deals, checked = filtered(saved.scores, scope, state)
    deals, _ = collapse_twins(deals, saved.twins)
    checked = on_a_page(deals, checked)  # the page `home_view` will show
    page = deals.iloc[checked.page * PAGE : (checked.page + 1) * PAGE]
    missing = page.loc[page["drivers"].isna(), "deal_id"].tolist()
    reader.ensure_reasons(saved, missing)
    return home_view(saved.run_id, saved.as_of, saved.scores, scope, checked,
                     _forecast(saved, scope), saved.run["confidence"] or "",
                     nudges_per_day=nudges_per_day,
                     mentions=mentions_of(reader.settings.roster), twins=saved.twins)  # fmt: skip


def publish(reader: Reader, client: WebClient, user_id: str, state: HomeState | None = None) -> bool:  # fmt: skip
    """Publish one user's Home tab; False (logged) when Slack refused or could not be reached."""
    try:
        view = view_for(reader, reader.settings.member(user_id), user_id, state or HomeState())
    except Exception:  # a database error, say: the tab keeps its last view until the next try
        log.exception("could not build the Home tab of %s", user_id)
        return False
    problems = check_view(view)
    if problems:  # never expected: the view is built within the limits
        log.error("Home tab for %s outside Block Kit limits: %s", user_id, problems)
        return False
    try:
        slack_api.publish_home(client, user_id, view)
        return True
    except SlackApiError as exc:
        log.warning("could not publish the Home tab of %s: %s", user_id, slack_api.error_code(exc))
    except Exception as exc:  # a dropped connection: the next opening publishes it again
        log.warning("could not publish the Home tab of %s: %s", user_id, type(exc).__name__)
    return False


class HomeTabs:
    """Every roster member's Home tab brought up to date once per new score run (without a
    roster nobody is known in advance: each tab is published when its owner opens it)."""

    def __init__(self, reader: Reader, client: WebClient):
        self.reader, self.client = reader, client
        self._published: int | None = None
        self._lock = threading.Lock()

    def refresh_all(self) -> int:
        """Publish the latest run to every roster member, unless already done; returns how many
        tabs were published."""
        roster = self.reader.settings.roster
        saved = self.reader.latest()
        if not roster or saved is None:
            return 0
        with self._lock:
            if self._published == saved.run_id:
                return 0
            done = sum(publish(self.reader, self.client, user_id) for user_id in roster)
            self._published = saved.run_id
        log.info("Home tabs of run #%d published: %d of %d", saved.run_id, done, len(roster))
        return done
