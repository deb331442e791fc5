"""A loopback fake of the Salesforce REST API (SOQL query/queryAll with server-side paging,
OAuth token and SOAP login endpoints), served over TLS on 127.0.0.1 so that simple-salesforce
runs unchanged against it.

It holds a seeded org: a few hundred opportunities with months of OpportunityHistory (stages
moving, amounts changed, close dates pushed, deals won and lost), a custom stage, and its own
clock (the `Date` header of every answer). Tests change deals, delete them, expire sessions and
make the next requests fail with Salesforce's own error bodies. `export(day)` is the org's own
account of the pipeline on a past day, written from its timeline (not from revbot's replay), for
comparing a synced history with one imported from weekly exports.

Only the SOQL revbot sends is understood (FROM Opportunity / OpportunityHistory /
OpportunityStage / Organization, the SystemModstamp and OpportunityId IN filters); an
opportunity's Owner carries its Email only when the query selects Owner.Email, as Salesforce's.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import random
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import HTTPAdapter

from dataset.ids import salesforce_18
from tests.fakes.tls import make_certificates, server_context

VERSION = "59.0"
# (label, status, default probability, forecast category API value), in pipeline order; one
# custom stage ("Technical Win") that no built-in preset knows
STAGES = (
    ("Prospecting", "open", 10, "Pipeline"),
    ("Qualification", "open", 10, "Pipeline"),
    ("Needs Analysis", "open", 20, "Pipeline"),
    ("Value Proposition", "open", 50, "Pipeline"),
    ("Technical Win", "open", 65, "BestCase"),
    ("Proposal/Price Quote", "open", 75, "BestCase"),
    ("Negotiation/Review", "open", 90, "Commit"),
    ("Closed Won", "won", 100, "Closed"),
    ("Closed Lost", "lost", 0, "Omitted"),
)
OPEN = [s for s in STAGES if s[1] == "open"]
BY_LABEL = {s[0]: s for s in STAGES}
CATEGORY_LABEL = {"BestCase": "Best Case"}
OWNERS = ("Avery Stone", "Blake Reyes", "Casey Lin", "Devon Park", "Emery Cole", "Finley Shaw")
ACCOUNTS = tuple(f"Account {c}" for c in "ABCDEFGHIJKLMNOPQRST")
PRODUCTS = ("Core", "Core Plus", "Analytics", "Enterprise Suite")
TRACKED = ("StageName", "Amount", "CloseDate", "Probability", "ForecastCategory")


def stamp(moment: datetime) -> str:
    """Salesforce's date-time format."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def email_of(name: str) -> str:
    """An owner's e-mail address in the fake org (User.Email): avery.stone@example.com."""
    return name.lower().replace(" ", ".") + "@example.com"


def _user_id(name: str) -> str:
    return salesforce_18(f"0055g{OWNERS.index(name):010d}")


def _id(prefix: str, n: int) -> str:
    return salesforce_18(f"{prefix}{n:010d}")


@dataclass
class Opportunity:
    id: str
    name: str
    owner: str
    account: str | None
    product: str | None
    created: datetime
    last_activity: date | None
    deal_type: str
    timeline: list[tuple[datetime, dict]]  # (when, tracked state after the change)
    deleted_at: datetime | None = None
    modstamp: datetime | None = None

    @property
    def state(self) -> dict:
        return self.timeline[-1][1]

    def state_on(self, day: date) -> dict | None:
        end = datetime.combine(day, datetime.max.time(), UTC)
        seen = [s for t, s in self.timeline if t <= end]
        return seen[-1] if seen else None


@dataclass
class FakeOrg:
    """The org's data; `now` is its clock."""

    now: datetime
    opportunities: dict[str, Opportunity] = field(default_factory=dict)
    history_ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    history: dict[str, list[tuple[str, datetime, dict]]] = field(default_factory=dict)
    # OpportunityFieldHistory: (id, when, field, old, new); an owner change logs ids and names
    field_history: dict[str, list[tuple[str, datetime, str, str, str]]] = field(
        default_factory=dict
    )
    _odds: tuple[float, float] = (0.45, 0.55)
    # User.Email of each owner (None: the integration user may not see it); email_of by default
    emails: dict[str, str | None] = field(default_factory=lambda: {o: email_of(o) for o in OWNERS})

    @classmethod
    def generate(cls, n: int = 300, seed: int = 7, start=date(2024, 1, 1), now=datetime(2024, 10, 15, 12, tzinfo=UTC),
                 advance: float = 0.45, lose: float = 0.10):  # fmt: skip
        """`n` deals created from `start` to a week before `now`; at each change a deal moves
        a stage on with odds `advance`, is lost with odds `lose`, else its amount or close date
        changes (lower odds: longer histories)."""
        rng = random.Random(seed)
        org = cls(now=now)
        org._odds = (advance, advance + lose)
        span = (now.date() - start).days - 7
        for i in range(n):
            created = datetime.combine(start + timedelta(days=rng.randrange(span)), datetime.min.time(), UTC)  # fmt: skip
            created += timedelta(hours=rng.randrange(8, 18), minutes=rng.randrange(60))
            org._add(i, created, rng)
        return org

    def _add(self, i: int, created: datetime, rng: random.Random) -> None:
        stage = 0
        state = {"StageName": OPEN[0][0], "Amount": float(rng.randrange(5, 200) * 1000),
                 "CloseDate": (created + timedelta(days=rng.randrange(30, 120))).date().isoformat(),
                 "Probability": float(OPEN[0][2]), "ForecastCategory": OPEN[0][3]}  # fmt: skip
        timeline = [(created, dict(state))]
        t = created
        while True:
            t += timedelta(days=rng.randrange(3, 40), hours=rng.randrange(0, 6))
            if t > self.now:
                break
            roll = rng.random()
            move, drop = self._odds
            if roll < move and stage < len(OPEN) - 1:
                stage += 1
                label, _, prob, cat = OPEN[stage]
                state.update(StageName=label, Probability=float(prob), ForecastCategory=cat)
            elif roll < drop or (roll < drop + 0.2 and stage == len(OPEN) - 1):
                won = stage == len(OPEN) - 1 and rng.random() < 0.7
                label, _, prob, cat = STAGES[-2] if won else STAGES[-1]
                state.update(StageName=label, Probability=float(prob), ForecastCategory=cat)
            elif roll < drop + 0.15:
                state["Amount"] = float(max(1000, state["Amount"] + rng.randrange(-20, 30) * 1000))
            else:
                pushed = date.fromisoformat(state["CloseDate"]) + timedelta(days=rng.randrange(7, 45))  # fmt: skip
                state["CloseDate"] = pushed.isoformat()
            timeline.append((t, dict(state)))
            if BY_LABEL[state["StageName"]][1] != "open":
                break
        end = min(timeline[-1][0], self.now)
        activity = None
        if rng.random() < 0.8:
            activity = (created + (end - created) * rng.random()).date()
        opp = Opportunity(
            id=_id("0065g", i), name=f"Deal {i:04d}", owner=rng.choice(OWNERS),
            account=rng.choice(ACCOUNTS) if rng.random() < 0.95 else None,
            product=rng.choice(PRODUCTS) if rng.random() < 0.9 else None, created=created,
            last_activity=activity, deal_type=rng.choice(("New Business", "Existing Business")),
            timeline=timeline,
        )  # fmt: skip
        opp.modstamp = timeline[-1][0]
        self.opportunities[opp.id] = opp
        self.history[opp.id] = [(self._history_id(), t, s) for t, s in timeline]
        self.field_history[opp.id] = []
        if rng.random() < 0.25:  # reassigned once, some time after creation
            when = created + (end - created) * rng.uniform(0.2, 0.9)
            self.reassign(opp.id, rng.choice([o for o in OWNERS if o != opp.owner]), when)

    def _history_id(self) -> str:
        return _id("0085g", next(self.history_ids))

    # -- what a test does to the org ---------------------------------------------------------

    def tick(self, **delta) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def change(self, opp_id: str, **fields) -> None:
        """A user edits a deal now: a new history row and a new SystemModstamp."""
        opp = self.opportunities[opp_id]
        state = {**opp.state, **fields}
        if "StageName" in fields:
            _, _, prob, cat = BY_LABEL[fields["StageName"]]
            state.update(Probability=float(fields.get("Probability", prob)), ForecastCategory=cat)
        opp.timeline.append((self.now, state))
        self.history[opp_id].append((self._history_id(), self.now, state))
        opp.modstamp = self.now

    def reassign(self, opp_id: str, owner: str, when: datetime | None = None) -> None:
        """A new owner: OpportunityFieldHistory logs it twice (user ids, then names)."""
        opp, when = self.opportunities[opp_id], when or self.now
        log = self.field_history[opp_id]
        log.append((self._field_id(), when, "Owner", _user_id(opp.owner), _user_id(owner)))
        log.append((self._field_id(), when, "Owner", opp.owner, owner))
        opp.owner = owner
        opp.modstamp = max(opp.modstamp or when, when)

    def owner_on(self, opp_id: str, day: date) -> str:
        """Who owned the deal at the end of `day` (the org's own account)."""
        end = datetime.combine(day, datetime.max.time(), UTC)
        names = [(t, old, new) for _, t, f, old, new in self.field_history[opp_id] if f == "Owner" and not new.startswith("005")]  # fmt: skip
        for t, old, _ in names:
            if t > end:
                return old
        return self.opportunities[opp_id].owner

    def _field_id(self) -> str:
        return _id("0175g", next(self.history_ids))

    def touch(self, opp_id: str, **fields) -> None:
        """An edit of an untracked field (last_activity): no history row."""
        opp = self.opportunities[opp_id]
        for k, v in fields.items():
            setattr(opp, k, v)
        opp.modstamp = self.now

    def delete(self, opp_id: str) -> None:
        opp = self.opportunities[opp_id]
        opp.deleted_at = opp.modstamp = self.now

    def open_ids(self) -> list[str]:
        return [o.id for o in self.opportunities.values() if BY_LABEL[o.state["StageName"]][1] == "open" and o.deleted_at is None]  # fmt: skip

    # -- what the org answers ----------------------------------------------------------------

    def record(self, opp: Opportunity, email: bool = False) -> dict:
        """An opportunity as the REST API answers it; `email`: the SOQL selected Owner.Email."""
        s = opp.state
        owner = {"attributes": {"type": "User"}, "Name": opp.owner}
        if email:
            owner["Email"] = self.emails.get(opp.owner)
        items = None
        if opp.product:
            items = {"totalSize": 1, "done": True, "records": [{"attributes": {"type": "OpportunityLineItem"}, "Product2": {"attributes": {"type": "Product2"}, "Name": opp.product}}]}  # fmt: skip
        return {
            "attributes": {"type": "Opportunity", "url": f"/services/data/v{VERSION}/sobjects/Opportunity/{opp.id}"},
            "Id": opp.id, "Name": opp.name, "Owner": owner,
            "Account": {"attributes": {"type": "Account"}, "Name": opp.account} if opp.account else None,
            "StageName": s["StageName"], "CreatedDate": stamp(opp.created), "CloseDate": s["CloseDate"],
            "Amount": s["Amount"], "Probability": s["Probability"],
            "ForecastCategoryName": CATEGORY_LABEL.get(s["ForecastCategory"], s["ForecastCategory"]),
            "LastActivityDate": opp.last_activity.isoformat() if opp.last_activity else None,
            "NextStep": None, "Type": opp.deal_type, "LeadSource": "Web",
            "SystemModstamp": stamp(opp.modstamp), "IsDeleted": opp.deleted_at is not None,
            "OpportunityLineItems": items,
        }  # fmt: skip

    def history_rows(self, ids: list[str]) -> list[dict]:
        rows = []
        for opp_id in sorted(ids):
            for hid, t, s in self.history.get(opp_id, ()):
                rows.append({"attributes": {"type": "OpportunityHistory"}, "Id": hid,
                             "OpportunityId": opp_id, "CreatedDate": stamp(t),
                             **{k: s[k] for k in TRACKED}})  # fmt: skip
        return rows

    def field_rows(self, ids: list[str]) -> list[dict]:
        return [
            {"attributes": {"type": "OpportunityFieldHistory"}, "Id": fid, "OpportunityId": opp_id,
             "CreatedDate": stamp(t), "Field": f, "OldValue": old, "NewValue": new}
            for opp_id in sorted(ids) for fid, t, f, old, new in self.field_history.get(opp_id, ())
        ]  # fmt: skip

    def stage_rows(self) -> list[dict]:
        return [
            {"attributes": {"type": "OpportunityStage"}, "ApiName": label, "MasterLabel": label,
             "IsActive": True, "IsClosed": status != "open", "IsWon": status == "won",
             "DefaultProbability": float(prob), "SortOrder": i + 1}
            for i, (label, status, prob, _) in enumerate(STAGES)
        ]  # fmt: skip

    def export(self, day: date) -> bytes:
        """The pipeline as a report exported on the evening of `day` would show it, written
        from the org's own timeline, in the column names of revbot's salesforce preset."""
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["Id", "Name", "Opportunity Owner", "Account Name", "Product Name", "StageName",
                    "CreatedDate", "CloseDate", "Amount", "Probability", "ForecastCategoryName",
                    "LastActivityDate", "NextStep", "Type", "LeadSource"])  # fmt: skip
        for opp in sorted(self.opportunities.values(), key=lambda o: o.id):
            s = opp.state_on(day)
            if s is None or (opp.deleted_at is not None and opp.deleted_at.date() <= day):
                continue
            seen = opp.last_activity if opp.last_activity and opp.last_activity <= day else None
            amount = s["Amount"]
            w.writerow([opp.id, opp.name, self.owner_on(opp.id, day), opp.account or "", opp.product or "",
                        s["StageName"], opp.created.date().isoformat(), s["CloseDate"],
                        int(amount) if float(amount).is_integer() else amount, int(s["Probability"]),
                        CATEGORY_LABEL.get(s["ForecastCategory"], s["ForecastCategory"]),
                        seen.isoformat() if seen else "", "", opp.deal_type, "Web"])  # fmt: skip
        return out.getvalue().encode()


class FakeSalesforce:
    """The org behind a TLS server on 127.0.0.1. Use as a context manager."""

    def __init__(self, org: FakeOrg, folder: Path, page_size: int = 50):
        self.org, self.page_size = org, page_size
        self.ca, cert, key = make_certificates(folder)
        self.client_id, self.refresh_token = "fake-consumer-key", "fake-refresh-" + uuid.uuid4().hex
        self.username, self.password, self.security_token = "sync@example.com", "pw-" + uuid.uuid4().hex, "tok-" + uuid.uuid4().hex  # fmt: skip
        self.tokens: set[str] = set()
        self.jwt_public_key: bytes | None = None  # the connected app's certificate (PEM key)
        self.requests: list[dict] = []
        self._failures: list[tuple[int, str]] = []
        self._answer_first, self._expire_in = 0, None
        self._cursors: dict[str, list[dict]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.socket = server_context(cert, key).wrap_socket(self._server.socket, server_side=True)  # fmt: skip
        self.base_url = f"https://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeSalesforce:
        # polled every 50 ms, not socketserver's 500: each shutdown waits out one poll
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- test controls -----------------------------------------------------------------------

    def issue_token(self) -> str:
        token = "00Dfake!" + uuid.uuid4().hex
        self.tokens.add(token)
        return token

    def expire_sessions(self) -> None:
        self.tokens.clear()

    def fail_next(
        self, n: int, status: int = 403, code: str = "REQUEST_LIMIT_EXCEEDED", after: int = 0
    ) -> None:
        """After `after` more data requests are answered, the next `n` get this error
        (Salesforce's JSON error body)."""
        self._failures += [(status, code)] * n
        self._answer_first = after

    def expire_after(self, n: int) -> None:
        """Sessions expire once `n` more data requests are answered."""
        self._expire_in = n

    def session(self) -> requests.Session:
        """A requests session that trusts the test CA and sends what simple-salesforce addresses
        to login.salesforce.com to this fake (it names that host itself)."""
        s = requests.Session()
        s.trust_env = False  # else REQUESTS_CA_BUNDLE (set on many machines) overrides verify
        s.verify = str(self.ca)
        s.mount("https://login.salesforce.com/", _Redirect(self.base_url))
        s.mount("https://test.salesforce.com/", _Redirect(self.base_url))
        return s

    def data_requests(self, kind: str | None = None) -> list[dict]:
        return [r for r in self.requests if r["path"].startswith("/services/data") and (kind is None or kind in r.get("soql", ""))]  # fmt: skip

    # -- answering ---------------------------------------------------------------------------

    def answer(self, method: str, path: str, headers: dict, body: bytes) -> tuple[int, object]:
        with self._lock:
            self.requests.append({"method": method, "path": path, "headers": headers, "body": body})
            if path.startswith("/services/oauth2/token"):
                return self._token(body)
            if path.startswith("/services/Soap/u/"):
                return self._soap(body)
            if not path.startswith("/services/data/"):
                return 404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]  # fmt: skip
            if self._expire_in is not None:
                if self._expire_in == 0:
                    self.expire_sessions()
                    self._expire_in = None
                else:
                    self._expire_in -= 1
            token = headers.get("authorization", "").removeprefix("Bearer ")
            if token not in self.tokens:
                return 401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]  # fmt: skip
            if self._failures and self._answer_first > 0:
                self._answer_first -= 1
            elif self._failures:
                status, code = self._failures.pop(0)
                return status, [{"message": f"{code} (fake)", "errorCode": code}]
            parts = urlsplit(path)
            locator = re.match(
                rf"/services/data/v{VERSION}/query(?:All)?/(01g\w+-\d+)$", parts.path
            )
            if locator:
                return 200, self._more(locator.group(1))
            soql = parse_qs(parts.query).get("q", [""])[0]
            self.requests[-1]["soql"] = soql
            return 200, self._query(soql, include_deleted="/queryAll/" in parts.path)

    def _token(self, body: bytes) -> tuple[int, object]:
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        grant = form.get("grant_type")
        if grant == "refresh_token" and form.get("refresh_token") == self.refresh_token and form.get("client_id") == self.client_id:  # fmt: skip
            return 200, {"access_token": self.issue_token(), "instance_url": self.base_url, "token_type": "Bearer"}  # fmt: skip
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer" and form.get("assertion"):
            import jwt

            try:
                claims = jwt.decode(form["assertion"], self.jwt_public_key, algorithms=["RS256"],
                                    audience="https://login.salesforce.com")  # fmt: skip
            except jwt.PyJWTError:
                return 400, {"error": "invalid_grant", "error_description": "invalid assertion"}
            if claims.get("iss") == self.client_id and claims.get("sub") == self.username:
                return 200, {"access_token": self.issue_token(), "instance_url": self.base_url, "token_type": "Bearer"}  # fmt: skip
        return 400, {"error": "invalid_grant", "error_description": "authentication failure"}

    def _soap(self, body: bytes) -> tuple[int, object]:
        text = body.decode()
        user = re.search(r"<n1:username>(.*?)</n1:username>", text)
        password = re.search(r"<n1:password>(.*?)</n1:password>", text)
        if user and password and user.group(1) == self.username and password.group(1) == self.password + self.security_token:  # fmt: skip
            xml = (f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
                   f"<soapenv:Body><loginResponse><result><serverUrl>{self.base_url}/services/Soap/u/{VERSION}/00Dfake</serverUrl>"
                   f"<sessionId>{self.issue_token()}</sessionId></result></loginResponse></soapenv:Body></soapenv:Envelope>")  # fmt: skip
            return 200, xml
        fault = ('<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
                 "<soapenv:Body><soapenv:Fault><faultcode>INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: Invalid username, password, security token; or user locked out.</faultstring>"
                 "</soapenv:Fault></soapenv:Body></soapenv:Envelope>")  # fmt: skip
        return 500, fault

    def _query(self, soql: str, include_deleted: bool) -> dict:
        org = self.org
        if re.search(r"\bFROM OpportunityStage\b", soql):
            return self._page(org.stage_rows())
        if re.search(r"\bFROM Organization\b", soql):
            return self._page([{"attributes": {"type": "Organization"}, "Id": "00Dfake"}])
        if re.search(r"\bFROM OpportunityFieldHistory\b", soql):
            ids = re.findall(r"'([^']*)'", soql.split(" IN ", 1)[1].split(") AND", 1)[0])
            return self._page(org.field_rows(ids))
        if re.search(r"\bFROM OpportunityHistory\b", soql):
            ids = re.findall(r"'([^']*)'", soql.split(" IN ", 1)[1])
            return self._page(org.history_rows(ids))
        if re.search(r"\bFROM Opportunity\b", soql):
            since = re.search(r"SystemModstamp >= (\S+)", soql)
            start = datetime.strptime(since.group(1), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) if since else None  # fmt: skip
            opps = [o for o in org.opportunities.values()
                    if (include_deleted or o.deleted_at is None) and (start is None or o.modstamp >= start)]  # fmt: skip
            opps.sort(key=lambda o: (o.modstamp, o.id))
            return self._page([org.record(o, "Owner.Email" in soql) for o in opps])
        return {"totalSize": 0, "done": True, "records": []}

    def _page(self, rows: list[dict], offset: int = 0, key: str | None = None) -> dict:
        key = key or "01gfake" + uuid.uuid4().hex[:8]
        self._cursors[key] = rows
        chunk = rows[offset : offset + self.page_size]
        done = offset + self.page_size >= len(rows)
        out = {"totalSize": len(rows), "done": done, "records": chunk}
        if not done:
            out["nextRecordsUrl"] = (
                f"/services/data/v{VERSION}/query/{key}-{offset + self.page_size}"
            )
        return out

    def _more(self, locator: str) -> dict:
        key, offset = locator.rsplit("-", 1)
        return self._page(self._cursors[key], int(offset), key)


class _Redirect(HTTPAdapter):
    """Sends requests for a real Salesforce login host to the fake (same path)."""

    def __init__(self, base_url: str):
        super().__init__()
        self.base_url = base_url

    def send(self, request, **kwargs):
        parts = urlsplit(request.url)
        request.url = self.base_url + parts.path + (f"?{parts.query}" if parts.query else "")
        return super().send(request, **kwargs)


def _handler(fake: FakeSalesforce):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def date_time_string(self, timestamp=None):
            return formatdate(fake.org.now.timestamp(), usegmt=True)

        def _serve(self, method: str):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, payload = fake.answer(method, self.path, headers, body)
            data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            self.send_response(status)
            kind = "text/xml" if isinstance(payload, str) else "application/json"
            self.send_header("Content-Type", f"{kind}; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Sforce-Limit-Info", "api-usage=10/15000")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self._serve("GET")

        def do_POST(self):
            self._serve("POST")

    return Handler
