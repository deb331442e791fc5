"""What a live CRM reader hands the sync (issue 13): pages of changed opportunities with their
change history, the CRM's stage metadata, and the CRM's own date. Why a contract of its own:
Salesforce and HubSpot are read by different client libraries (`dataset.salesforce_reader`,
`dataset.hubspot_reader`), and everything after the read (the mirror, the resume cursor, the
replay into daily exports, the import) is shared and knows neither.

Records use Salesforce's API field names (`dataset.crm_replay.HEADER`), whatever the CRM.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

# An opportunity record: every key of dataset.crm_replay.HEADER (Id, Name, OwnerName,
# AccountName, ProductName, StageName, CreatedDate, CloseDate, Amount, Probability,
# ForecastCategoryName, LastActivityDate, NextStep, Type, LeadSource; None where the CRM has no
# value) plus MODSTAMP (ISO date-time of its last change, the sync's cursor), DELETED (True when
# the CRM deleted it) and MERGED_INTO (the id it was merged into, else None).
MODSTAMP, DELETED, MERGED_INTO = "SystemModstamp", "IsDeleted", "MergedInto"

# A change row: CHANGE_ID (unique and stable: fetching it again replaces, never doubles),
# "OpportunityId", "CreatedDate" (ISO date-time of the change) and every field of
# dataset.crm_replay.TRACKED as it stood right after the change (the full state, not only the
# field that changed: Salesforce's OpportunityHistory rows are like that).
CHANGE_ID = "Id"
# A field change (Salesforce's OpportunityFieldHistory): CHANGE_ID, "OpportunityId",
# "CreatedDate", "Field" (one of dataset.crm_replay.FIELD_TRACKED: OwnerName, Name, NextStep,
# Type, LeadSource), "OldValue" and "NewValue" (text or None).


@dataclass(frozen=True)
class Page:
    """One page of a read, committed with its cursor so that an interrupted sync resumes after
    the last page it kept. `changes`: the whole history of each opportunity in `records`;
    `field_changes`: the history of other fields where the CRM tracks them (FIELD_CHANGE rows);
    `people`: (name, e-mail) of the users who own the page's opportunities, where the CRM gives
    an address, the name spelt as the records' OwnerName (`dataset.people`)."""

    records: list[dict]
    changes: list[dict]
    cursor: str  # resume point: read again from here (inclusive) loses nothing
    field_changes: list[dict] = field(default_factory=list)
    people: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class StageInfo:
    """One stage as the CRM defines it: its label (as records spell StageName), whether it is
    open, won or lost, its default probability (0-100, None if the CRM has none) and its place
    in the pipeline (lower = earlier)."""

    label: str
    status: str  # open | won | lost
    probability: float | None
    order: int


class CrmError(Exception):
    """A CRM call failed. The message is plain and safe to show: never a secret."""


@dataclass
class CrmBusy(CrmError):
    """Rate or request limit hit (HubSpot 429, Salesforce REQUEST_LIMIT_EXCEEDED): wait and try
    again from the saved cursor. `retry_after`: seconds the CRM asked for, if it said."""

    message: str
    retry_after: float | None = None

    def __str__(self) -> str:
        return self.message


class CrmSessionExpired(CrmError):
    """The session or token expired: sign in again (`CrmReader.reconnect`) and go on."""


@dataclass
class ReadStats:
    """What a reader spent, for the sync's log line."""

    requests: int = 0
    retries: int = 0
    notes: list[str] = field(default_factory=list)


class CrmReader(Protocol):
    name: str  # "salesforce" | "hubspot": names the sync's sources and its cursor

    def pages(self, cursor: str | None) -> Iterator[Page]:
        """Every opportunity changed at or after `cursor` (all of them when None), oldest change
        first, in pages, with their full change history and deleted ones flagged."""
        ...

    def stages(self) -> list[StageInfo]:
        """The CRM's opportunity stages (Salesforce OpportunityStage; HubSpot deal pipelines)."""
        ...

    def today(self) -> date:
        """The CRM's own date (its clock, from its last answer): the sync's as-of day."""
        ...

    def reconnect(self) -> None:
        """Sign in again after CrmSessionExpired."""
        ...
