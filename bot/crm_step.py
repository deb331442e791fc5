"""The refresh's first step when a CRM is configured (`[crm] kind`): sync it before scoring.

Why apart from `bot.refresh`: the sync has its own failure modes (credentials, limits, a CRM that
is down), and each must become a line the digest carries while the morning goes on with the data
already imported; the writer only asks "anything to report?". Only `bot.refresh` calls it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping

from bot.settings import Settings
from dataset.crm_reader import CrmError, CrmReader
from dataset.crm_sync import reader_from_env, sync

log = logging.getLogger(__name__)
# each channel's job refreshes; channels due at the same time share one sync
RESYNC_AFTER_SECONDS = 15 * 60


class CrmStep:
    def __init__(
        self,
        settings: Settings,
        overrides: Mapping | None,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.settings, self.overrides = settings, overrides or {}
        self.env = os.environ if env is None else env
        self._clock, self._sleep, self._synced_at = clock, sleep, None
        self._reader: CrmReader | None = None

    def run(self, db, say: Callable[[str], None]) -> list[str]:
        """Sync if a CRM is configured and none was synced in the last minutes; returns the
        problems to report with the digest (none when all went well)."""
        kind = self.settings.crm
        if kind is None:
            return []
        now = self._clock()
        if self._synced_at is not None and now - self._synced_at < RESYNC_AFTER_SECONDS:
            return []
        try:
            if self._reader is None:
                self._reader = reader_from_env(kind, self.env)
            say(f"reading {kind}: what changed since the last sync…")
            result = sync(db, self._reader, overrides=self.overrides,
                          limits=self.settings.import_limits, say=say, sleep=self._sleep)  # fmt: skip
        except CrmError as exc:
            log.error("the %s sync failed: %s", kind, exc)
            return [f"the {kind} sync failed, so this uses the data of the last sync: {exc}"]
        except Exception as exc:  # a sync must not stop the digest
            log.exception("the %s sync failed", kind)
            return [f"the {kind} sync failed, so this uses the data of the last sync: {exc}"]
        say(result.summary())
        self._synced_at = now
        problems = []
        if result.status == "stopped":
            self._synced_at = None  # try again at the next refresh
            problems.append(f"the {kind} sync stopped half-way ({result.note}); this uses the data "
                            "of the last full sync, and the next one resumes where it stopped")  # fmt: skip
        aside = sum(r.rows_set_aside for r in result.imports)
        if aside:
            problems.append(f"{aside} {kind} rows were set aside (`revbot quarantine` lists them)")
        return problems
