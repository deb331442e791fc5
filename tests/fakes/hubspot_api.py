"""A loopback fake of the parts of HubSpot's CRM v3/v4 API the deal reader calls.

Why a fake server rather than mocks: the reader is tested through the real `hubspot-api-client`,
so the requests it builds (search filters and paging, batch reads with property history, the
archived listing, owners, pipelines, associations) and the answers it parses are the real ones.
The fake keeps its own ground truth (`state_on`) to check the reader's change rows against, a
clock of its own (sent as the `Date` header), and failure switches (429 with Retry-After, 401).
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MODIFIED = "hs_lastmodifieddate"
TRACKED = ("dealstage", "amount", "closedate", "hs_deal_stage_probability", "hs_forecast_category")
# (id, label, probability, closed) per pipeline, in display order
PIPELINES = {
    "default": ("Sales Pipeline", [
        ("appointmentscheduled", "Appointment Scheduled", "0.2", False),
        ("qualifiedtobuy", "Qualified To Buy", "0.4", False),
        ("presentationscheduled", "Presentation Scheduled", "0.6", False),
        ("decisionmakerboughtin", "Decision Maker Bought-In", "0.8", False),
        ("contractsent", "Contract Sent", "0.9", False),
        ("closedwon", "Closed Won", "1.0", True),
        ("closedlost", "Closed Lost", "0.0", True),
    ]),
    "renewals": ("Renewals", [
        ("1001", "Renewal Due", "0.5", False),
        ("1002", "Renewal Committed", "0.85", False),
        ("1003", "Renewed", "1.0", True),
        ("1004", "Churned", "0.0", True),
    ]),
}  # fmt: skip
FORECAST = {"0.0": "OMIT", "1.0": "CLOSED"}  # else by probability, see _forecast
OWNERS = [("101", "Ada", "Lovelace"), ("102", "Grace", "Hopper"), ("103", "Alan", "Turing"),
          ("104", "Edsger", "Dijkstra"), ("105", "Barbara", "Liskov"), ("106", "Ken", "Thompson")]  # fmt: skip
ARCHIVED_OWNER = ("107", "Dennis", "Ritchie")  # left the company; still owns old deals


def iso(at: datetime) -> str:
    """HubSpot's date-time text: UTC with milliseconds and a Z."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime:
    """A filter value: epoch milliseconds or ISO text."""
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _forecast(probability: str) -> str:
    p = float(probability)
    return FORECAST.get(probability) or (
        "COMMIT" if p >= 0.8 else "BEST_CASE" if p >= 0.5 else "PIPELINE"
    )


@dataclass
class Deal:
    id: str
    created: datetime
    name: str
    owner: str
    pipeline: str
    company: str | None
    dealtype: str
    history: dict[str, list[tuple[datetime, str]]] = field(default_factory=dict)  # oldest first
    modified: datetime | None = None
    archived_at: datetime | None = None
    merged_ids: list[str] = field(default_factory=list)
    next_step: str = ""
    last_activity: datetime | None = None

    def value(self, prop: str, at: datetime | None = None) -> str | None:
        """The property as it stood at `at` (now when None): the last change at or before it."""
        seen = [v for t, v in self.history.get(prop, []) if at is None or t <= at]
        return seen[-1] if seen else None

    def set(self, at: datetime, **props: str) -> None:
        for prop, value in props.items():
            self.history.setdefault(prop, []).append((at, value))
        self.modified = max(self.modified or at, at)


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: dict | None


class FakeHubSpot:
    """The fake account: deals with months of history from a seed, owners, companies, pipelines."""

    def __init__(
        self,
        seed: int = 13,
        deals: int = 300,
        token: str = "pat-na1-fake-0000",
        now: datetime = datetime(2025, 3, 14, 15, 30, tzinfo=UTC),
        search_cap: int = 10_000,
    ) -> None:
        self.token, self.now, self.search_cap = token, now, search_cap
        self.requests: list[Recorded] = []
        self.failures: list[tuple[int, str | None]] = []  # (status, Retry-After) for next calls
        self.answer_first = 0
        self.lock = threading.Lock()
        self.companies = {str(5000 + i): f"Company {i:02d} Ltd" for i in range(40)}
        self.deals: dict[str, Deal] = {}
        rng = random.Random(seed)
        for i in range(deals):
            self._generate(rng, str(9000 + i))
        self.base_url = ""

    def _generate(self, rng: random.Random, deal_id: str) -> None:
        pipeline = "renewals" if rng.random() < 0.2 else "default"
        stages = PIPELINES[pipeline][1]
        created = self.now - timedelta(days=rng.uniform(20, 270), seconds=rng.randint(0, 86399))
        created = created.replace(microsecond=rng.randint(0, 999) * 1000)
        owner = rng.choice([o[0] for o in OWNERS] + [ARCHIVED_OWNER[0], "999"])
        company = rng.choice([*self.companies, None])
        deal = Deal(deal_id, created, f"Deal {deal_id}", owner, pipeline, company,
                    rng.choice(["newbusiness", "existingbusiness"]))  # fmt: skip
        close = (created + timedelta(days=rng.randint(30, 120))).date()
        stage = stages[0]
        deal.set(created, dealstage=stage[0], amount=str(rng.randint(5, 200) * 500),
                 closedate=f"{close.isoformat()}T00:00:00.000Z",
                 hs_deal_stage_probability=stage[2], hs_forecast_category=_forecast(stage[2]))  # fmt: skip
        at, index = created, 0
        open_stages = [s for s in stages if not s[3]]
        while True:
            at += timedelta(days=rng.uniform(2, 40), seconds=rng.randint(0, 3600))
            if at >= self.now - timedelta(hours=1):
                break
            roll = rng.random()
            if roll < 0.45 and index < len(open_stages) - 1:
                index += 1
                stage = open_stages[index]
            elif roll < 0.6:
                stage = rng.choice([s for s in stages if s[3]])
            elif roll < 0.8:
                deal.set(at, amount=str(rng.randint(5, 200) * 500))
                continue
            else:
                close += timedelta(days=rng.randint(7, 60))
                deal.set(at, closedate=f"{close.isoformat()}T00:00:00.000Z")
                continue
            # the stage moves; HubSpot recalculates probability and forecast a few ms later
            deal.set(at, dealstage=stage[0])
            later = at + timedelta(milliseconds=rng.choice([0, 0, 3]))
            deal.set(later, hs_deal_stage_probability=stage[2], hs_forecast_category=_forecast(stage[2]))  # fmt: skip
            deal.last_activity = at
            if stage[3]:
                break
        deal.next_step = rng.choice(["", "Send proposal", "Call back"])
        self.deals[deal_id] = deal

    # what tests use to move the account forward ------------------------------------------------
    def change(self, deal_id: str, at: datetime, **props: str) -> None:
        with self.lock:
            self.deals[deal_id].set(at, **props)

    def archive(self, deal_id: str, at: datetime) -> None:
        with self.lock:
            self.deals[deal_id].archived_at = at

    def merge(self, survivor: str, merged: str, at: datetime) -> None:
        """HubSpot's merge: the merged deal's id disappears into the survivor's
        hs_merged_object_ids; the survivor's modified date moves."""
        with self.lock:
            gone = self.deals.pop(merged)
            keep = self.deals[survivor]
            keep.merged_ids += [merged, *gone.merged_ids]
            keep.modified = at

    def fail_next(
        self, count: int, status: int = 429, retry_after: str | None = "2", after: int = 0
    ) -> None:
        """After `after` more calls are answered, the next `count` get this error."""
        with self.lock:
            self.failures += [(status, retry_after)] * count
            self.answer_first = after

    def state_on(self, deal_id: str, day: date) -> dict[str, str | None]:
        """Ground truth: the tracked properties as they stood at the end of `day` (UTC)."""
        end = datetime.combine(day, datetime.max.time(), UTC)
        return {p: self.deals[deal_id].value(p, end) for p in TRACKED}

    def live(self) -> list[Deal]:
        return [d for d in self.deals.values() if d.archived_at is None]

    # the server -------------------------------------------------------------------------------
    @contextmanager
    def serve(self) -> Iterator[FakeHubSpot]:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        # polled every 50 ms, not socketserver's 500: each shutdown waits out one poll
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        self.base_url = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join()

    def answer(self, req: Recorded) -> tuple[int, dict, dict[str, str]]:
        """Route one request: (status, JSON body, extra headers)."""
        with self.lock:
            self.requests.append(req)
            if req.headers.get("authorization") != f"Bearer {self.token}":
                return 401, _error("Authentication credentials not found.", "INVALID_AUTHENTICATION"), {}  # fmt: skip
            if self.failures and self.answer_first > 0:
                self.answer_first -= 1
            elif self.failures:
                status, retry_after = self.failures.pop(0)
                if status == 429:
                    body = _error(
                        "You have reached your ten_secondly_rolling limit.", "RATE_LIMITS"
                    )
                    return 429, body, {"Retry-After": retry_after} if retry_after else {}
                return status, _error(f"Injected failure {status}.", "ERROR"), {}
            route = (req.method, req.path.rstrip("/"))
            handlers = {
                ("POST", "/crm/v3/objects/deals/search"): self._search,
                ("POST", "/crm/v3/objects/deals/batch/read"): self._batch_read,
                ("GET", "/crm/v3/objects/deals"): self._list,
                ("GET", "/crm/v3/pipelines/deals"): self._pipelines,
                ("GET", "/crm/v3/owners"): self._owners,
                ("POST", "/crm/v4/associations/deals/companies/batch/read"): self._associations,
                ("POST", "/crm/v3/objects/companies/batch/read"): self._companies,
            }
            if route not in handlers:
                return 404, _error(f"No route {route}.", "OBJECT_NOT_FOUND"), {}
            return handlers[route](req)

    def _object(self, deal: Deal, props: list[str], history: list[str]) -> dict:
        values = {
            "hs_object_id": deal.id, "createdate": iso(deal.created), "dealname": deal.name,
            "hubspot_owner_id": deal.owner, "pipeline": deal.pipeline, "dealtype": deal.dealtype,
            "hs_lastmodifieddate": iso(deal.modified or deal.created), "hs_next_step": deal.next_step or None,
            "notes_last_updated": iso(deal.last_activity) if deal.last_activity else None,
            "hs_merged_object_ids": ";".join(deal.merged_ids) or None,
            **{p: deal.value(p) for p in TRACKED},
        }  # fmt: skip
        out = {
            "id": deal.id, "properties": {p: values.get(p) for p in props},
            "createdAt": iso(deal.created), "updatedAt": iso(deal.modified or deal.created),
            "archived": deal.archived_at is not None,
        }  # fmt: skip
        if deal.archived_at:
            out["archivedAt"] = iso(deal.archived_at)
        if history:
            out["propertiesWithHistory"] = {
                p: [{"value": v, "timestamp": iso(t), "sourceType": "CRM_UI"}
                    for t, v in reversed(deal.history.get(p, []))]  # newest first, as HubSpot
                for p in history if p in deal.history
            }  # fmt: skip
        return out

    def _search(self, req: Recorded) -> tuple[int, dict, dict]:
        body = req.body or {}
        limit, after = int(body.get("limit", 10)), int(body.get("after") or 0)
        if limit > 200:
            return 400, _error("limit must be at most 200", "VALIDATION_ERROR"), {}
        if after + limit > self.search_cap:
            return 400, _error(f"Search is limited to {self.search_cap} results", "VALIDATION_ERROR"), {}  # fmt: skip
        deals = self.live()
        for group in body.get("filterGroups", []):
            for f in group.get("filters", []):
                if (f.get("propertyName"), f.get("operator")) != ("hs_lastmodifieddate", "GTE"):
                    return 400, _error(f"The fake filters on hs_lastmodifieddate GTE only: {f}", "VALIDATION_ERROR"), {}  # fmt: skip
                since = parse_time(f["value"])
                deals = [d for d in deals if (d.modified or d.created) >= since]
        sorts = body.get("sorts") or []
        if sorts not in ([{"propertyName": MODIFIED, "direction": "ASCENDING"}], [MODIFIED]):
            return 400, _error(f"The fake sorts by hs_lastmodifieddate only: {sorts}", "VALIDATION_ERROR"), {}  # fmt: skip
        deals.sort(key=lambda d: (d.modified or d.created, int(d.id)))
        page = deals[after : after + limit]
        out = {"total": len(deals), "results": [self._object(d, body.get("properties") or [], []) for d in page]}  # fmt: skip
        if after + limit < len(deals):
            out["paging"] = {"next": {"after": str(after + limit)}}
        return 200, out, {}

    def _batch_read(self, req: Recorded) -> tuple[int, dict, dict]:
        body = req.body or {}
        ids = [i["id"] for i in body.get("inputs", [])]
        history = body.get("propertiesWithHistory") or []
        if len(ids) > (50 if history else 100):
            return 400, _error("Too many inputs", "VALIDATION_ERROR"), {}
        archived = req.query.get("archived", ["false"])[0].lower() == "true"
        found = [self.deals[i] for i in ids if i in self.deals and (self.deals[i].archived_at is not None) == archived]  # fmt: skip
        out = {"status": "COMPLETE", "startedAt": iso(self.now), "completedAt": iso(self.now),
               "results": [self._object(d, body.get("properties") or [], history) for d in found]}  # fmt: skip
        missing = [i for i in ids if i not in {d.id for d in found}]
        if not missing:
            return 200, out, {}
        out["numErrors"] = 1
        out["errors"] = [{"status": "error", "category": "OBJECT_NOT_FOUND", "message": "Could not get some DEAL objects", "context": {"ids": missing}, "links": {}, "errors": []}]  # fmt: skip
        return 207, out, {}

    def _list(self, req: Recorded) -> tuple[int, dict, dict]:
        q = {k: v[0] for k, v in req.query.items()}
        history = q.get("propertiesWithHistory", "").split(",") if q.get("propertiesWithHistory") else []  # fmt: skip
        limit, after = int(q.get("limit", 10)), int(q.get("after") or 0)
        if limit > (50 if history else 100):
            return 400, _error("limit too large", "VALIDATION_ERROR"), {}
        archived = (q.get("archived") or "").lower() == "true"  # the client sends True/False
        deals = sorted((d for d in self.deals.values() if (d.archived_at is not None) == archived),
                       key=lambda d: int(d.id))  # fmt: skip
        props = q.get("properties", "").split(",") if q.get("properties") else []
        out: dict = {"results": [self._object(d, props, history) for d in deals[after : after + limit]]}  # fmt: skip
        if after + limit < len(deals):
            out["paging"] = {"next": {"after": str(after + limit)}}
        return 200, out, {}

    def _pipelines(self, req: Recorded) -> tuple[int, dict, dict]:
        stamp = iso(self.now - timedelta(days=400))
        results = [
            {"id": pid, "label": label, "displayOrder": n, "archived": False, "createdAt": stamp, "updatedAt": stamp,
             "stages": [{"id": sid, "label": slabel, "displayOrder": k, "archived": False, "createdAt": stamp,
                         "updatedAt": stamp, "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                         "metadata": {"probability": p, "isClosed": str(closed).lower()}}
                        for k, (sid, slabel, p, closed) in enumerate(stages)]}
            for n, (pid, (label, stages)) in enumerate(PIPELINES.items())
        ]  # fmt: skip
        return 200, {"results": results}, {}

    def _owners(self, req: Recorded) -> tuple[int, dict, dict]:
        archived = req.query.get("archived", ["false"])[0].lower() == "true"
        stamp = iso(self.now - timedelta(days=500))
        people = [ARCHIVED_OWNER] if archived else OWNERS
        results = [{"id": i, "firstName": f, "lastName": last, "email": f"{f.lower()}@example.com",
                    "type": "PERSON", "archived": archived, "createdAt": stamp, "updatedAt": stamp}
                   for i, f, last in people]  # fmt: skip
        return 200, {"results": results}, {}

    def _associations(self, req: Recorded) -> tuple[int, dict, dict]:
        ids = [i["id"] for i in (req.body or {}).get("inputs", [])]
        results = [
            {"from": {"id": i}, "to": [{"toObjectId": int(self.deals[i].company),
                                        "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 5, "label": "Primary"}]}]}
            for i in ids if i in self.deals and self.deals[i].company
        ]  # fmt: skip
        return 200, {"status": "COMPLETE", "results": results, "startedAt": iso(self.now), "completedAt": iso(self.now)}, {}  # fmt: skip

    def _companies(self, req: Recorded) -> tuple[int, dict, dict]:
        ids = [i["id"] for i in (req.body or {}).get("inputs", [])]
        stamp = iso(self.now)
        results = [{"id": i, "properties": {"name": self.companies[i]}, "createdAt": stamp, "updatedAt": stamp}
                   for i in ids if i in self.companies]  # fmt: skip
        return 200, {"status": "COMPLETE", "results": results, "startedAt": stamp, "completedAt": stamp}, {}  # fmt: skip


def _error(message: str, category: str) -> dict:
    return {
        "status": "error",
        "message": message,
        "correlationId": "fake-0001",
        "category": category,
    }


def _handler(fake: FakeHubSpot) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def date_time_string(self, timestamp: float | None = None) -> str:
            return format_datetime(fake.now.astimezone(UTC), usegmt=True)  # the CRM's clock

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            req = Recorded(self.command, parts.path, parse_qs(parts.query),
                           {k.lower(): v for k, v in self.headers.items()},
                           json.loads(raw) if raw else None)  # fmt: skip
            status, body, extra = fake.answer(req)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for k, v in extra.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

    return Handler
