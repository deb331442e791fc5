"""Read HubSpot deals for the live CRM sync (issue 13), through `hubspot-api-client`.

Why this shape: HubSpot keeps each property's own history (value + timestamp), while the sync
replays Salesforce-style full-state change rows (`dataset.crm_reader`). This reader finds changed
deals with the CRM search (ascending by hs_lastmodifieddate, each page a new search from the last
page's modified time, so one search never nears its 10,000-result cap and a deal changed mid-read
hides no other), reads them in batches with their property history, and folds the histories
into one full-state row per moment any tracked property changed. Archived deals (which search
never returns) come from the archived listing; deals merged away come from the survivor's
hs_merged_object_ids. Each page names its deals' owners with their e-mail addresses, from the
owners list (for `revbot roster --build`). Every call goes through `_call`, which keeps the CRM's `Date` header (our
as-of day), honours Retry-After a few times, and turns failures into plain CrmErrors.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import urllib3
from hubspot import HubSpot
from hubspot.crm.associations.v4 import (
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicFetchAssociationsBatchRequest,
)
from hubspot.crm.companies import BatchReadInputSimplePublicObjectId as CompanyBatchInput
from hubspot.crm.deals import (
    BatchReadInputSimplePublicObjectId,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectId,
)
from urllib3.util.retry import Retry

from dataset.crm_reader import (
    DELETED,
    MERGED_INTO,
    MODSTAMP,
    CrmBusy,
    CrmError,
    CrmSessionExpired,
    Page,
    ReadStats,
    StageInfo,
)
from dataset.crm_replay import HEADER

log = logging.getLogger(__name__)

SCOPES = ("crm.objects.deals.read", "crm.objects.owners.read", "crm.objects.companies.read",
          "crm.schemas.deals.read")  # fmt: skip
ENV_NAMES = ("HUBSPOT_ACCESS_TOKEN", "HUBSPOT_API_URL")  # deploy/env.example names them
SEARCH_CAP = 10_000  # HubSpot search answers at most this many results per query
HISTORY_BATCH = 50  # a batch read with property history takes at most 50 ids
MODIFIED = "hs_lastmodifieddate"
# HubSpot property -> the Salesforce field of crm_replay.TRACKED it feeds
TRACKED_PROPS = {"dealstage": "StageName", "amount": "Amount", "closedate": "CloseDate",
                 "hs_deal_stage_probability": "Probability",
                 "hs_forecast_category": "ForecastCategoryName"}  # fmt: skip
PROPERTIES = ["dealname", "hubspot_owner_id", "createdate", "closedate", "amount", "dealstage",
              "pipeline", MODIFIED, "notes_last_updated", "hs_next_step", "dealtype",
              "hs_merged_object_ids", "hs_deal_stage_probability", "hs_forecast_category"]  # fmt: skip
FORECAST = {"COMMIT": "Commit", "BEST_CASE": "Best Case", "PIPELINE": "Pipeline",
            "OMIT": "Omitted", "CLOSED": "Closed"}  # fmt: skip
DEAL_TYPES = {"newbusiness": "New Business", "existingbusiness": "Existing Business"}
EPOCH = "1970-01-01T00:00:00.000Z"
# HubSpot's search index trails its writes (a change shows in search moments later, so a change
# stamped before the cursor may appear after a read): each read starts this much before the
# cursor, as the Salesforce reader does (the mirror replaces what is read twice)
OVERLAP = timedelta(minutes=10)
# HubSpot's burst limit is per ten seconds: a 429 without Retry-After waits that long
DEFAULT_WAIT = 10.0


class HubSpotReader:
    """`dataset.crm_reader.CrmReader` for HubSpot, with a private app's access token."""

    name = "hubspot"

    def __init__(
        self,
        access_token: str,
        host: str | None = None,
        page_size: int = 100,
        sleep: Callable[[float], None] = time.sleep,
        max_retries: int = 3,
        max_wait: float = 60.0,
        search_cap: int = SEARCH_CAP,
        overlap: timedelta = OVERLAP,
    ) -> None:
        self._token, self._host = access_token, host
        self.page_size = min(page_size, 200)  # search pages hold at most 200
        self.sleep, self.max_retries, self.max_wait = sleep, max_retries, max_wait
        self.search_cap, self.overlap = search_cap, overlap
        self.stats = ReadStats()
        self._date: date | None = None
        self._owners: dict[str, str] | None = None
        self._emails: dict[str, str] = {}  # owner id -> e-mail address, from the owners list
        self._stages: dict[str, tuple[str, float | None]] | None = None  # id -> (label, %)
        self._stage_list: list[StageInfo] = []
        self._companies: dict[str, str] = {}
        self.reconnect()

    @classmethod
    def from_env(cls, env: Mapping[str, str], **kwargs: Any) -> HubSpotReader:
        token = (env.get("HUBSPOT_ACCESS_TOKEN") or "").strip()
        if not token:
            raise CrmError(
                "HubSpot is not configured: set HUBSPOT_ACCESS_TOKEN to the access token of a "
                "HubSpot private app (Settings > Integrations > Private apps) with the read-only "
                f"scopes {', '.join(SCOPES)}."
            )
        return cls(token, host=(env.get("HUBSPOT_API_URL") or "").strip() or None, **kwargs)

    def reconnect(self) -> None:
        """A private-app token does not expire, so there is nothing to re-read: a fresh client."""
        # no urllib3 retry on statuses: a 429 must reach `_call` (which honours Retry-After
        # and reports CrmBusy), not be slept through by urllib3; connection errors retry twice
        retry = Retry(total=2, connect=2, read=0, status=0, other=0, redirect=0,
                      respect_retry_after_header=False, raise_on_status=False)  # fmt: skip
        client = HubSpot(access_token=self._token, retry=retry, **({"host": self._host} if self._host else {}))  # fmt: skip
        crm = client.crm  # each property access builds an ApiClient with its own pool: keep them
        self._search = crm.deals.search_api
        self._batch = crm.deals.batch_api
        self._basic = crm.deals.basic_api
        self._pipelines = crm.pipelines.pipelines_api
        self._owners_api = crm.owners.owners_api
        self._assoc = crm.associations.v4.batch_api
        self._company_batch = crm.companies.batch_api

    # -- the contract ---------------------------------------------------------------------------
    def pages(self, cursor: str | None) -> Iterator[Page]:
        """Each page is a fresh search from the last page's hs_lastmodifieddate (keyset paging),
        not the next offset of one search: a deal changed mid-read leaves the front of the
        sorted results, and offsets would then skip the deal that moved up into its place. The
        deals modified at that boundary moment come again and are dropped here. Only when a
        whole page shares one moment does the reader page by offset, up to the search cap."""
        self._owners = None  # read again each sync: a rep who joined since must get a name
        self._lookups()
        emitted: set[tuple[str, str]] = set()  # (id, modstamp) already in a page
        start = _iso(_parse(cursor) - self.overlap) if cursor else None
        since, after, last = start, None, start
        while True:
            hits, nxt = self._search_page(since, after)
            fresh = [i for i, stamp in hits if (i, stamp) not in emitted]
            emitted.update(hits)
            if hits:
                last = hits[-1][1]
            if fresh:  # a page of the overlap keeps the cursor it was asked for: never back
                yield self._page(fresh, max(last, cursor or last))
            if nxt is None:
                break
            if last != since:
                since, after = last, None
            elif int(nxt) + self.page_size <= self.search_cap:
                after = nxt  # a page of one moment: on through it by offset
            else:
                raise CrmError(
                    f"HubSpot search cannot page past {self.search_cap} deals modified at the "
                    f"same moment ({last}); the sync cannot go on from there."
                )
        # every archived deal, not only those since the cursor: a sync resumed after a retry
        # starts from a later cursor, and a deal archived in between must not be missed (the
        # listing cannot filter by date anyway; the mirror counts a removal once)
        yield from self._archived(None, max(last or EPOCH, cursor or EPOCH))

    def stages(self) -> list[StageInfo]:
        self._stages = None
        self._lookups()
        return list(self._stage_list)

    def today(self) -> date:
        if self._date is None:
            self._call(self._pipelines.get_all_with_http_info, "deals")  # any answer has a Date
        assert self._date is not None
        return self._date

    # -- reading --------------------------------------------------------------------------------
    def _search_page(self, since: str | None, after: str | None) -> tuple[list[tuple[str, str]], str | None]:  # fmt: skip
        """One search page: (deal id, hs_lastmodifieddate) oldest first, and the next `after`."""
        groups = []
        if since is not None:
            value = str(int(_parse(since).timestamp() * 1000))
            groups = [FilterGroup(filters=[Filter(property_name=MODIFIED, operator="GTE", value=value)])]  # fmt: skip
        request = PublicObjectSearchRequest(
            filter_groups=groups, sorts=[{"propertyName": MODIFIED, "direction": "ASCENDING"}],
            properties=[MODIFIED], limit=self.page_size, after=after,
        )  # fmt: skip
        result = self._call(self._search.do_search_with_http_info, request)
        hits = [(r.id, _iso(r.properties.get(MODIFIED)) or _iso(r.updated_at)) for r in result.results]  # fmt: skip
        nxt = result.paging.next.after if result.paging and result.paging.next else None
        return hits, nxt

    def _page(self, ids: list[str], cursor: str) -> Page:
        deals = []
        for chunk in _chunks(ids, HISTORY_BATCH):
            body = BatchReadInputSimplePublicObjectId(
                inputs=[SimplePublicObjectId(id=i) for i in chunk], properties=PROPERTIES,
                properties_with_history=list(TRACKED_PROPS),
            )  # fmt: skip
            # a deal archived since the search is missing here (207): the archived pass has it
            deals += self._call(self._batch.read_with_http_info, body, archived=False).results
        return self._to_page(deals, cursor)

    def _archived(self, cursor: str | None, page_cursor: str) -> Iterator[Page]:
        """Archived deals (search never returns them), those archived at or after `cursor`
        (the overlap included): HubSpot's listing cannot filter, so every archived deal is paged."""
        after: str | None = None
        since = _parse(cursor) if cursor else None
        while True:
            result = self._call(
                self._basic.get_page_with_http_info, limit=min(self.page_size, HISTORY_BATCH),
                after=after, properties=PROPERTIES, properties_with_history=list(TRACKED_PROPS),
                archived=True,
            )  # fmt: skip
            deals = [d for d in result.results if since is None or (d.archived_at or d.updated_at) >= since]  # fmt: skip
            if deals:
                yield self._to_page(deals, page_cursor)
            if not (result.paging and result.paging.next):
                return
            after = result.paging.next.after

    def _to_page(self, deals: list, cursor: str) -> Page:
        companies = self._company_names([d.id for d in deals])
        records: list[dict] = []
        changes: list[dict] = []
        for deal in deals:
            record = self._record(deal, companies.get(deal.id))
            records.append(record)
            changes += self._changes(deal)
            merged = (deal.properties.get("hs_merged_object_ids") or "").split(";")
            records += [_merged(m.strip(), deal.id, record[MODSTAMP]) for m in merged if m.strip()]  # fmt: skip
        return Page(records, changes, cursor, people=self._people(deals))

    def _people(self, deals: list) -> list[tuple[str, str]]:
        """(name, e-mail) of the owners of these deals, where HubSpot's owners list has an
        address (an owner id missing from it has neither)."""
        ids = {str(d.properties.get("hubspot_owner_id") or "") for d in deals}
        return sorted((self._owner(i), self._emails[i]) for i in ids if i in self._emails)

    def _record(self, deal: Any, account: str | None) -> dict:
        p = deal.properties
        stage, default = self._stage(p.get("dealstage"))
        probability = _percent(p.get("hs_deal_stage_probability"))
        archived = bool(deal.archived)
        stamp = _iso(deal.archived_at) if archived and deal.archived_at else None
        return {
            "Id": deal.id, "Name": p.get("dealname"), "OwnerName": self._owner(p.get("hubspot_owner_id")),
            "AccountName": account, "ProductName": None, "StageName": stage,
            "CreatedDate": _iso(p.get("createdate")) or _iso(deal.created_at),
            "CloseDate": _day(p.get("closedate")), "Amount": _float(p.get("amount")),
            "Probability": default if probability is None else probability,
            "ForecastCategoryName": FORECAST.get(p.get("hs_forecast_category") or ""),
            "LastActivityDate": _day(p.get("notes_last_updated")), "NextStep": p.get("hs_next_step"),
            "Type": DEAL_TYPES.get(p.get("dealtype") or "", p.get("dealtype")), "LeadSource": None,
            MODSTAMP: stamp or _iso(p.get(MODIFIED)) or _iso(deal.updated_at),
            DELETED: archived, MERGED_INTO: None,
        }  # fmt: skip

    def _changes(self, deal: Any) -> list[dict]:
        """Full-state rows: one per moment any tracked property changed, every tracked field as
        it stood right after (the latest value at or before that moment)."""
        history = deal.properties_with_history or {}
        events = {
            prop: sorted(reversed(history.get(prop) or []), key=lambda v: v.timestamp)
            for prop in TRACKED_PROPS
        }  # HubSpot lists newest first; reversed + stable sort keeps same-time order
        moments = sorted({v.timestamp for values in events.values() for v in values})
        rows = []
        for moment in moments:
            state = {}
            for prop, values in events.items():
                seen = [v.value for v in values if v.timestamp <= moment]
                state[prop] = seen[-1] if seen else None
            stage, default = self._stage(state["dealstage"])
            probability = _percent(state["hs_deal_stage_probability"])
            at = _iso(moment)
            rows.append({
                "Id": f"{deal.id}:{at}", "OpportunityId": deal.id, "CreatedDate": at,
                "StageName": stage, "Amount": _float(state["amount"]),
                "CloseDate": _day(state["closedate"]),
                "Probability": default if probability is None else probability,
                "ForecastCategoryName": FORECAST.get(state["hs_forecast_category"] or ""),
            })  # fmt: skip
        return rows

    def _company_names(self, deal_ids: list[str]) -> dict[str, str]:
        """deal id -> its primary company's name: one associations read per page, and one
        companies read for the companies not seen before."""
        body = BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[PublicFetchAssociationsBatchRequest(id=i) for i in deal_ids]
        )
        result = self._call(self._assoc.get_page_with_http_info, "deals", "companies", body)
        company_of: dict[str, str] = {}
        for row in result.results:
            targets = sorted(row.to, key=lambda t: not any(a.type_id == 5 for a in t.association_types))  # fmt: skip
            if targets:  # type 5: the deal's primary company
                company_of[row._from.id] = str(targets[0].to_object_id)
        unknown = sorted(set(company_of.values()) - set(self._companies))
        for chunk in _chunks(unknown, 100):
            body = CompanyBatchInput(inputs=[{"id": c} for c in chunk], properties=["name"])
            for company in self._call(self._company_batch.read_with_http_info, body).results:
                self._companies[company.id] = company.properties.get("name") or company.id
        return {d: self._companies[c] for d, c in company_of.items() if c in self._companies}

    def _lookups(self) -> None:
        """Owners and stages, read once per reader (a sync is minutes long)."""
        if self._owners is None:
            owners: dict[str, str] = {}
            emails: dict[str, str] = {}
            for archived in (False, True):  # deals keep owners who left (archived users)
                after = None
                while True:
                    result = self._call(self._owners_api.get_page_with_http_info, limit=500, after=after, archived=archived)  # fmt: skip
                    for o in result.results:
                        owners[str(o.id)] = " ".join(filter(None, [o.first_name, o.last_name])) or o.email or str(o.id)  # fmt: skip
                        if o.email:
                            emails[str(o.id)] = o.email
                    if not (result.paging and result.paging.next):
                        break
                    after = result.paging.next.after
            self._owners, self._emails = owners, emails
        if self._stages is None:
            pipelines = self._call(self._pipelines.get_all_with_http_info, "deals").results
            self._stages, self._stage_list = {}, []
            for pipeline in sorted(pipelines, key=lambda p: p.display_order):
                for stage in sorted(pipeline.stages, key=lambda s: s.display_order):
                    meta = stage.metadata or {}
                    p = _percent(meta.get("probability"))
                    self._stages[stage.id] = (stage.label, p)
                    if any(s.label == stage.label for s in self._stage_list):
                        continue  # the same label in two pipelines: one stage for the model
                    closed = str(meta.get("isClosed", "")).lower() == "true"
                    status = "open" if not closed else "won" if p == 100.0 else "lost"
                    self._stage_list.append(StageInfo(stage.label, status, p, len(self._stage_list)))  # fmt: skip

    def _owner(self, owner_id: str | None) -> str | None:
        if not owner_id:
            return None
        return (self._owners or {}).get(owner_id, owner_id)

    def _stage(self, stage_id: str | None) -> tuple[str | None, float | None]:
        if not stage_id:
            return None, None
        return (self._stages or {}).get(stage_id, (stage_id, None))

    # -- every request --------------------------------------------------------------------------
    def _call(self, method: Callable[..., tuple], *args: Any, **kwargs: Any) -> Any:
        """One API call: keep the CRM's date, wait out short 429s, map failures to CrmErrors."""
        attempt = 0
        while True:
            self.stats.requests += 1
            try:
                data, _status, headers = method(*args, **kwargs)
            except urllib3.exceptions.HTTPError as e:
                raise CrmError(f"HubSpot could not be reached ({type(e).__name__}).") from None
            except Exception as e:
                if not type(e).__module__.startswith("hubspot.") or not hasattr(e, "status"):
                    raise
                self._keep_date(getattr(e, "headers", None))
                status, message, policy = e.status, *self._said(getattr(e, "body", None))
                if status == 429:
                    wait = _retry_after(getattr(e, "headers", None))
                    pause = DEFAULT_WAIT if wait is None else wait
                    if attempt < self.max_retries and pause <= self.max_wait and policy != "DAILY":
                        attempt += 1
                        self.stats.retries += 1
                        log.info("hubspot: rate limited, waiting %.1f s (try %d)", pause, attempt)
                        self.sleep(pause)
                        continue
                    raise CrmBusy(f"HubSpot rate limit hit (429): {message}", retry_after=wait) from None  # fmt: skip
                if status == 401:
                    raise CrmSessionExpired(
                        "HubSpot refused the access token (401): it was revoked or rotated. "
                        "Copy the private app's current token into HUBSPOT_ACCESS_TOKEN. "
                        f"HubSpot said: {message}"
                    ) from None
                if status == 403:
                    raise CrmError(
                        f"HubSpot refused the request (403): {message} The private app needs the "
                        f"read-only scopes {', '.join(SCOPES)}."
                    ) from None
                raise CrmError(f"HubSpot answered {status or 'nothing'}: {message}") from None
            self._keep_date(headers)
            return data

    def _said(self, body: Any) -> tuple[str, str | None]:
        """HubSpot's own error message (and rate-limit policy), never echoing the token."""
        try:
            said = json.loads(body) if body else {}
        except (TypeError, ValueError):
            said = {}
        text = str(said.get("message") or "no message") if isinstance(said, dict) else "no message"
        policy = said.get("policyName") if isinstance(said, dict) else None
        return text.replace(self._token, "[token]"), policy

    def _keep_date(self, headers: Any) -> None:
        stamp = headers.get("Date") if headers else None
        if stamp:
            with contextlib.suppress(TypeError, ValueError):  # a bad header keeps the last date
                self._date = parsedate_to_datetime(stamp).astimezone(UTC).date()


def _merged(merged_id: str, survivor: str, stamp: str) -> dict:
    """A deal merged into `survivor`: gone under its own id."""
    return {**dict.fromkeys(HEADER), "Id": merged_id, MODSTAMP: stamp, DELETED: True, MERGED_INTO: survivor}  # fmt: skip


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _parse(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso(value: Any) -> str | None:
    """Date-times as HubSpot writes them: UTC, milliseconds, Z (sortable as text)."""
    if value in (None, ""):
        return None
    at = value if isinstance(value, datetime) else _parse(str(value))
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _day(value: str | None) -> str | None:
    """A HubSpot date-time as the calendar day (UTC) Salesforce's date fields hold."""
    stamp = _iso(value)
    return stamp[:10] if stamp else None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def _percent(value: str | None) -> float | None:
    """HubSpot's probability (a 0-1 fraction) in percent, as Salesforce's Probability."""
    number = _float(value)
    return None if number is None else round(number * 100, 6)


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
