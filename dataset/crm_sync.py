"""A live CRM sync (issue 13): read what changed since the last sync, keep it in the mirror,
then import each day not yet imported as that day's export, through the same import as a CSV.

Why through the import: the history tables, the balance line of each import, the set-aside
rules and the import log are then the same whether the data came from a file or the API; a first
sync replays the CRM's history week by week, so a new install trains point-in-time at once.

Failures: a busy CRM (rate or request limits) is retried with backoff from the last page kept,
an expired session signs in again; when the CRM keeps refusing, the sync stops with a plain
reason, keeps what it read, and the next sync resumes from its cursor. A stopped sync imports
nothing (a day half-read would mix two days), so the morning goes on with yesterday's data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

import sqlite_utils

from dataset import crm_mirror
from dataset.crm_reader import CrmBusy, CrmError, CrmReader, CrmSessionExpired, StageInfo
from dataset.crm_replay import replay, weekly_days
from dataset.ingest import FileResult, IngestError, ingest_sources
from dataset.limits import DEFAULT_LIMITS, Limits
from dataset.money import plural
from dataset.presets import BUILTIN, Preset, apply_overrides

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6  # tries in a row without a page kept, before the sync stops for today
BACKOFF_SECONDS = (2, 5, 15, 30, 60)


@dataclass
class SyncResult:
    crm: str
    run_id: int | None
    status: str  # done | stopped | dry-run
    records: int = 0
    new: int = 0
    changed: int = 0
    changes: int = 0
    removed: int = 0
    days: list[date] = field(default_factory=list)
    imports: list[FileResult] = field(default_factory=list)
    as_of: date | None = None
    note: str | None = None
    seconds: float = 0.0
    read_seconds: float = 0.0  # of which reading the CRM into the mirror

    def summary(self) -> str:
        """One plain line for the log and the terminal."""
        head = f"{self.crm} sync" + (" (dry run: nothing written)" if self.status == "dry-run" else "")  # fmt: skip
        read = (
            f"{plural(self.records, 'opportunity', 'opportunities')} read ({self.new:,} new, "
            f"{self.changed:,} changed, {self.removed:,} deleted or merged), "
            f"{plural(self.changes, 'history row')}"
        )
        if self.status == "stopped":
            return f"{head} stopped: {self.note}; {read} kept, resumes from there next time"
        verb = "would import" if self.status == "dry-run" else "imported"
        fresh = [r for r in self.imports if r.status == "imported"]
        if not self.days:
            days = "no day to import"
        elif self.status == "done" and not fresh:
            days = f"nothing new to import: the pipeline of {self.days[-1]} was imported before"
        elif len(self.days) == 1:
            days = f"{verb} the pipeline of {self.days[0]}"
        else:
            days = f"{verb} {len(self.days)} days from {self.days[0]} to {self.days[-1]}"
        return (
            f"{head}: {read}; {days} (as of the CRM's date {self.as_of}), in {self.seconds:.0f} s"
        )


def reader_from_env(kind: str, env: Mapping[str, str]) -> CrmReader:
    """The reader of a CRM, signed in from environment variables only. Raises CrmError naming
    what to install or set."""
    try:
        if kind == "salesforce":
            from dataset.salesforce_reader import SalesforceReader

            return SalesforceReader.from_env(env)
        if kind == "hubspot":
            from dataset.hubspot_reader import HubSpotReader

            return HubSpotReader.from_env(env)
    except ImportError as exc:
        raise CrmError(
            f"the {kind} client library is not installed: pip install 'revbot[{kind}]' ({exc.name})"
        ) from exc
    raise CrmError(f"unknown CRM {kind!r}: salesforce or hubspot")


def crm_preset(
    crm: str, stages: list[StageInfo], overrides: Mapping | None = None
) -> tuple[Preset, ...]:
    """The preset the replayed exports are read with: Salesforce's API column names, the CRM's
    own stages (status, default probability, order) and the site's `[presets.CRM]` overrides
    of revbot.toml on top (`[presets.salesforce]` or `[presets.hubspot]`: they win, so a stage
    the CRM misfiles can be put right)."""
    base = next(p for p in BUILTIN if p.name == "salesforce")
    base = replace(base, case_safe_ids=crm == "salesforce")
    if stages:
        ordered = sorted(stages, key=lambda s: (s.order, s.label))
        base = replace(
            base,
            stages={s.label: s.status for s in ordered},
            probabilities={s.label: s.probability for s in ordered if s.probability is not None and s.status == "open"},
        )  # fmt: skip
    spec = (overrides or {}).get(crm)  # [presets.salesforce] or [presets.hubspot]
    return apply_overrides((base,), {base.name: spec} if spec else {})


def sync(
    db: sqlite_utils.Database,
    reader: CrmReader,
    *,
    dry_run: bool = False,
    overrides: Mapping | None = None,
    limits: Limits = DEFAULT_LIMITS,
    say: Callable[[str], None] = log.info,
    sleep: Callable[[float], None] = time.sleep,
) -> SyncResult:
    """Read what changed, keep it, import the days not yet imported. Raises CrmError when the
    CRM cannot be read at all (bad credentials, unreachable): nothing is written then."""
    start = time.monotonic()
    crm = reader.name
    if dry_run:
        result = _dry_run(db, reader)
        result.seconds = time.monotonic() - start
        return result
    run_id, cursor = crm_mirror.start_run(db, crm)
    result = SyncResult(crm, run_id, "done")
    try:
        stopped = _read(db, reader, run_id, cursor, result, say, sleep)
        if stopped is None:
            crm_mirror.keep_stages(db, crm, reader.stages())
    except CrmError as exc:
        crm_mirror.finish_run(db, run_id, "failed", note=str(exc))
        raise
    except BaseException as exc:  # its text may quote a request: the log has it, not the table
        crm_mirror.finish_run(db, run_id, "failed", note=f"{type(exc).__name__} (see the log)")
        raise
    if stopped is not None:
        result.status, result.note = "stopped", stopped
        crm_mirror.finish_run(db, run_id, "stopped", note=stopped)
        result.seconds = time.monotonic() - start
        return result
    result.read_seconds = time.monotonic() - start
    result.as_of = reader.today()
    result.days = days_to_import(db, crm, result.as_of)
    presets = crm_preset(crm, crm_mirror.stages(db, crm), overrides)
    sources = replay(crm_mirror.current(db, crm), crm_mirror.history(db, crm), result.days, crm,
                     crm_mirror.field_history(db, crm))  # fmt: skip
    try:
        for source in sources:  # a day at a time: a backfill's exports would not fit in memory
            result.imports += ingest_sources(
                db, [source], presets=presets, preset=presets[0].name, limits=limits,
                today=result.as_of,
            )  # fmt: skip
            if len(result.days) > 1:  # a backfill takes a while: show it moving
                say(f"  imported the pipeline of {source.as_of} ({len(result.imports)} of {len(result.days)})")  # fmt: skip
    except BaseException as exc:
        note = str(exc) if isinstance(exc, IngestError) else f"{type(exc).__name__} (see the log)"
        crm_mirror.finish_run(db, run_id, "failed", note=f"import: {note}")
        raise
    crm_mirror.finish_run(db, run_id, "done", days=len(result.days), as_of=result.as_of)
    result.seconds = time.monotonic() - start
    return result


def days_to_import(
    db: sqlite_utils.Database, crm: str, today: date, read_first: date | None = None
) -> list[date]:
    """On a first sync, a day a week back to the first live deal's creation (the exports a
    weekly habit would have left) and today; after that, every day since the last day imported
    (a day missed by a failed or stopped sync is imported by the next one), and today.
    `read_first`: the first creation among records read but not kept (a dry run)."""
    last = crm_mirror.last_synced_day(db, crm)
    if last is None:
        known = [d for d in (crm_mirror.first_created(db, crm), read_first) if d is not None]
        if not known:
            return [today]
        return weekly_days(min(*known, today), today)
    gap = (today - last).days
    return [last + timedelta(days=i) for i in range(1, gap + 1)] or [today]


def _read(db, reader: CrmReader, run_id: int, cursor, result: SyncResult, say, sleep) -> str | None:
    """Page through the changes from `cursor`, keeping each page; None when read to the end,
    else why it stopped."""
    attempts, signed_in_again = 0, False
    while True:
        try:
            for page in reader.pages(cursor):
                seen = crm_mirror.count(db, reader.name, page)
                crm_mirror.keep_page(db, reader.name, run_id, page, seen)
                _add(result, seen)
                cursor, attempts, signed_in_again = page.cursor, 0, False
            return None
        except CrmBusy as exc:
            attempts += 1
            if attempts >= MAX_ATTEMPTS:
                return f"{reader.name} kept refusing ({exc})"
            wait = exc.retry_after if exc.retry_after is not None else _backoff(attempts)
            say(f"{reader.name} is busy ({exc}); trying again in {wait:.0f} s from the last page kept")  # fmt: skip
            sleep(wait)
        except CrmSessionExpired as exc:
            if signed_in_again:  # refused again right after a fresh sign-in: it will not resume
                raise CrmError(f"{reader.name} refused the session again after signing in: {exc}") from exc  # fmt: skip
            say(f"{reader.name} session expired; signing in again")
            reader.reconnect()
            signed_in_again = True


def _backoff(attempt: int) -> float:
    return float(BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS)) - 1])


def _add(result: SyncResult, seen: crm_mirror.Counted) -> None:
    result.records += seen.records
    result.new += seen.new
    result.changed += seen.changed
    result.removed += seen.removed
    result.changes += seen.changes


def _dry_run(db: sqlite_utils.Database, reader: CrmReader) -> SyncResult:
    """What a sync would read and import, with nothing written (and the cursor left alone)."""
    result = SyncResult(reader.name, None, "dry-run")
    first: date | None = None
    for page in reader.pages(crm_mirror.resume_point(db, reader.name)):
        _add(result, crm_mirror.count(db, reader.name, page))
        for created in (r.get("CreatedDate") for r in page.records):
            day = date.fromisoformat(str(created)[:10]) if created else None
            first = day if first is None or (day is not None and day < first) else first
    result.as_of = reader.today()
    result.days = days_to_import(db, reader.name, result.as_of, first)
    return result
