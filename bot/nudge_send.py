"""Sending the nudges: the hourly job (and `revbot morning`) that reads the latest run, asks
`bot.nudges` what each roster member should hear now, claims it in the ledger and sends it by
direct message.

Reads the saved run only. Each person's time zone comes from Slack's `users.info` (asked once a
day per person): at night there, nothing is sent and the nudges wait for their morning; without
it (no `users:read` scope, say) nothing is sent to them, and the log says why. A
message Slack refuses releases its claim (the next hour tries again); any other failure keeps it,
so a nudge is never sent twice. One person's failure never stops the others'.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import nudge_ledger, slack_api
from bot.nudges import (
    candidates,
    crossed,
    local_day,
    nudge_message,
    owners_map,
    plan,
    quiet_now,
    rolled_message,
)
from bot.reader import Reader
from bot.settings import NudgeConfig

log = logging.getLogger(__name__)
ZONE_TTL = 24 * 3600  # seconds a person's time zone is kept (a failure: an hour)


@dataclass
class Sent:
    """What one pass did: nudges sent, people skipped at night, failures."""

    sent: int = 0
    rolled: int = 0
    night: list[str] = field(default_factory=list)
    no_zone: list[str] = field(default_factory=list)  # Slack did not say their time zone
    failed: list[str] = field(default_factory=list)


class Nudger:
    """The nudges of the latest run to the roster's people, within their budget and day."""

    def __init__(self, reader: Reader, client: WebClient, config: NudgeConfig | None = None):
        self.reader, self.client = reader, client
        self.config = config or reader.settings.nudges
        self._zones: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def zone(self, user_id: str) -> str | None:
        """The person's time zone from Slack; None when Slack does not say (then nothing is
        sent to them: "never at night" cannot be kept without it). A failure is asked again
        after an hour, an answer after a day."""
        cached = self._zones.get(user_id)
        if cached and time.monotonic() < cached[0]:
            return cached[1]
        try:
            tz = slack_api.time_zone(self.client, user_id)
        except SlackApiError as exc:
            code = slack_api.error_code(exc)
            hint = " (add the users:read scope: deploy/README.md, step 2)" if code == "missing_scope" else ""  # fmt: skip
            log.warning("no nudge to %s: Slack did not give their time zone (%s)%s", user_id, code, hint)  # fmt: skip
            tz = None
        self._zones[user_id] = (time.monotonic() + (ZONE_TTL if tz else 3600), tz)
        return tz

    def run(self, now: datetime) -> Sent:
        """One pass over the roster (one at a time: the hourly job and the morning may meet)."""
        with self._lock:
            return self._run(now)

    def _run(self, now: datetime) -> Sent:
        out = Sent()
        roster, config = self.reader.settings.roster, self.config
        saved = self.reader.latest()
        if not config.enabled or not roster or saved is None:
            return out
        db = self.reader.db()
        owners = owners_map(roster)
        pending = self._note_crossings(db, saved, owners)
        found = candidates(saved.scores, pending, saved.flags(), owners, config.risk)
        told = nudge_ledger.told(db)
        for user_id in sorted(set(found["user_id"])):
            try:
                self._person(user_id, found, told, saved, now, out)
            except Exception as exc:  # one person's failure must not stop the others'
                log.exception("nudges for %s failed", user_id)
                out.failed.append(f"{user_id}: {type(exc).__name__}")
        if out.sent or out.failed:
            log.info("nudges of run #%d: %d sent, %d rolled up, %d failed, %d at night",
                     saved.run_id, out.sent, out.rolled, len(out.failed), len(out.night))  # fmt: skip
        return out

    def _note_crossings(self, db, saved, owners) -> pd.DataFrame:
        """Keep in the ledger what crossed the risk threshold since the last run a pass saw (the
        run before, where no pass saw any, or where that run's deals were pruned), so that it
        waits for its owner's budget, snooze and morning whatever runs come between; returns
        every crossing kept and not yet told (`nudge_ledger.crossings`)."""
        base = nudge_ledger.base_run(db, saved.run_id)
        compared = self.reader.run_header(base) if base is not None else None
        previous = self.reader.run_scores(base, ("deal_id", "risk")) if compared else None
        if previous is None or previous.empty:
            compared = self.reader.previous_run(saved.run_id)
            previous = (self.reader.run_scores(compared["run_id"], ("deal_id", "risk"))
                        if compared else None)  # fmt: skip
        found = (crossed(saved.scores, previous, owners, self.config.risk) if compared else
                 pd.DataFrame({"deal_id": [], "from_risk": []}))  # the first run: nothing new  # fmt: skip
        kept = nudge_ledger.crossings(db)
        found = found[~found["deal_id"].isin(kept.loc[kept["run_id"] == saved.run_id, "deal_id"])]
        if not len(found) and nudge_ledger.seen(db, saved.run_id):
            return kept  # nothing new since this run's first pass
        since = str(compared["as_of"]) if compared else ""
        nudge_ledger.note_crossings(db, saved.run_id, found, since)
        return nudge_ledger.crossings(db)

    def _person(self, user_id, found, told, saved, now: datetime, out: Sent) -> None:
        db, config = self.reader.db(), self.config
        per_day = nudge_ledger.budget(db, user_id, config.per_day)
        if per_day <= 0:
            return  # opted out
        tz = self.zone(user_id)
        if tz is None:
            out.no_zone.append(user_id)
            return
        if quiet_now(now, tz, config.quiet):
            out.night.append(user_id)
            return
        today = local_day(now, tz)
        left = per_day - nudge_ledger.sent_on(db, user_id, today)
        todo = plan(found, user_id, told, nudge_ledger.snoozed(db, user_id, today), left)
        if todo is None:
            return
        channel = self._dm(user_id)  # before any claim: a refusal here leaves nothing claimed
        for rules in todo.deals:
            deal_id = str(rules["deal_id"].iloc[0])
            claim = nudge_ledger.claim(db, user_id=user_id, deal_id=deal_id,
                                       rules=rules["rule"].tolist(), run_id=saved.run_id,
                                       local_day=today, per_day=per_day)  # fmt: skip
            if claim is None:
                continue
            nudge_id, claimed = claim
            try:
                message = nudge_message(nudge_id, saved.deal(deal_id), rules[rules["rule"].isin(claimed)],
                                        snooze_days=config.snooze_days)  # fmt: skip
            except Exception:
                nudge_ledger.release(db, nudge_id, "could not write the message")
                raise
            if self._send(db, nudge_id, channel, message):
                out.sent += 1
                told |= {(deal_id, r) for r in claimed}
        if not todo.rolled.empty:
            keys = [f"{d}\x1f{r}" for d, r in zip(todo.rolled["deal_id"], todo.rolled["rule"], strict=True)]  # fmt: skip
            claim = nudge_ledger.claim(db, user_id=user_id, deal_id=None, rules=keys,
                                       run_id=saved.run_id, local_day=today, per_day=per_day,
                                       kind="rolled")  # fmt: skip
            if claim is not None:
                kept = set(claim[1])
                rows = todo.rolled[[k in kept for k in keys]]
                try:
                    message = rolled_message(rows, saved.scores)
                except Exception:
                    nudge_ledger.release(db, claim[0], "could not write the message")
                    raise
                if self._send(db, claim[0], channel, message):
                    out.rolled += 1

    def _dm(self, user_id: str) -> str:
        return slack_api.open_dm(self.client, user_id)

    def _send(self, db, nudge_id: int, channel: str, message: dict) -> bool:
        try:
            ts = slack_api.post_digest(self.client, channel, message)  # retries 429s only
        except SlackApiError as exc:
            code = slack_api.error_code(exc)
            if slack_api.refused(exc):
                nudge_ledger.release(db, nudge_id, code)
            else:
                nudge_ledger.note_error(db, nudge_id, f"unknown outcome: {code}")
            log.warning("nudge %d not sent: %s", nudge_id, code)
            return False
        except Exception as exc:  # a timeout: it may have gone out, so it is not sent again
            nudge_ledger.note_error(db, nudge_id, f"unknown outcome: {type(exc).__name__}")
            log.warning("nudge %d: unknown outcome (%s)", nudge_id, type(exc).__name__)
            return False
        nudge_ledger.sent(db, nudge_id, channel, ts)
        return True
