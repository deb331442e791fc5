"""Salesforce, read with simple-salesforce (the maintained client of its REST API): the
opportunities changed since a moment with their OpportunityHistory, the stages, the org's date.

Why these calls: `queryAll` by SystemModstamp (oldest first) returns changed and deleted
opportunities alike, paged by Salesforce itself (`nextRecordsUrl`), and each page's histories come
in one more query, so a page is whole on its own and is kept with its cursor. Read-only: the
integration user needs only "API Enabled" and read access to Opportunity, Account, User,
Product2 and OpportunityHistory. Each owner's name and e-mail address (Owner.Name, Owner.Email)
come with their opportunities, for `revbot roster --build` (`dataset.people`).

Secrets come from the environment only (see `from_env`), and never reach a log or a message.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime

import requests

from dataset.crm_reader import (
    DELETED,
    MERGED_INTO,
    MODSTAMP,
    CrmBusy,
    CrmError,
    CrmSessionExpired,
    Page,
    StageInfo,
)

log = logging.getLogger(__name__)

FIELDS = (
    "Id, Name, Owner.Name, Owner.Email, Account.Name, StageName, CreatedDate, CloseDate, Amount, Probability, "
    "ForecastCategoryName, LastActivityDate, NextStep, Type, LeadSource, SystemModstamp, IsDeleted, "
    "(SELECT Product2.Name FROM OpportunityLineItems ORDER BY CreatedDate LIMIT 1)"
)
HISTORY_FIELDS = "Id, OpportunityId, CreatedDate, StageName, Amount, CloseDate, Probability, ForecastCategory"  # fmt: skip
# every environment variable the sign-in reads (deploy/env.example names them all)
ENV_NAMES = ("SALESFORCE_DOMAIN", "SALESFORCE_USERNAME", "SALESFORCE_CONSUMER_KEY",
             "SALESFORCE_PRIVATE_KEY_FILE", "SALESFORCE_CONSUMER_SECRET", "SALESFORCE_REFRESH_TOKEN",
             "SALESFORCE_PASSWORD", "SALESFORCE_SECURITY_TOKEN", "SALESFORCE_INSTANCE_URL",
             "SALESFORCE_ACCESS_TOKEN")  # fmt: skip
# OpportunityFieldHistory's names of the fields revbot replays (where the org tracks them)
FIELD_NAMES = {"Owner": "OwnerName", "Name": "Name", "NextStep": "NextStep", "Type": "Type",
               "LeadSource": "LeadSource"}  # fmt: skip
# an owner change is logged twice, by user ids and by names: the rows holding ids are dropped
RECORD_ID = re.compile(r"^[a-zA-Z0-9]{3}[0-9][a-zA-Z0-9]{11}([a-zA-Z0-9]{3})?$")
IDS_PER_QUERY = 200  # opportunity ids per OpportunityHistory query (SOQL text stays short)
# OpportunityHistory.ForecastCategory is the picklist's API value; the Opportunity shows its label
FORECAST_LABELS = {"BestCase": "Best Case", "MostLikely": "Most Likely"}
ENV_HELP = (
    "set SALESFORCE_USERNAME, SALESFORCE_CONSUMER_KEY and SALESFORCE_PRIVATE_KEY_FILE (JWT bearer "
    "flow, for a server), or SALESFORCE_CONSUMER_KEY and SALESFORCE_REFRESH_TOKEN (with "
    "SALESFORCE_CONSUMER_SECRET if the connected app has one), or SALESFORCE_USERNAME, "
    "SALESFORCE_PASSWORD and SALESFORCE_SECURITY_TOKEN, or SALESFORCE_INSTANCE_URL and "
    "SALESFORCE_ACCESS_TOKEN (a session you opened yourself: it cannot be renewed); "
    "SALESFORCE_DOMAIN is 'login' (default), 'test' for a sandbox, or your My Domain (acme.my)"
)


# A transaction's SystemModstamp is its start, and it may commit after a read that began later:
# each read starts this much before the cursor (the mirror replaces what is read twice).
OVERLAP = timedelta(minutes=10)


def soql_datetime(stamp: str, back: timedelta = OVERLAP) -> str:
    """A SystemModstamp, `back` earlier, as a SOQL date-time literal (UTC, whole seconds)."""
    moment = datetime.fromisoformat(stamp.replace("+0000", "+00:00").replace("Z", "+00:00"))
    return (moment.astimezone(UTC) - back).strftime("%Y-%m-%dT%H:%M:%SZ")


def _quoted(ids: list[str]) -> str:
    return ", ".join("'" + i.replace("\\", "").replace("'", "") + "'" for i in ids)


class SalesforceReader:
    """Reads one Salesforce org. `connect` signs in (called again after an expired session)."""

    name = "salesforce"

    def __init__(self, connect: Callable[[requests.Session], object], session=None):
        self._connect = connect
        self._session = session or requests.Session()
        self._session.hooks["response"].append(self._note_date)
        self._date: date | None = None
        self._sf = None

    @classmethod
    def from_env(cls, env: Mapping[str, str], session=None) -> SalesforceReader:
        """Sign-in from environment variables only; which flow is chosen by what is set."""
        return cls(_sign_in_from(env), session)

    def _note_date(self, response, *args, **kwargs):
        stamp = response.headers.get("Date")
        if stamp:
            with contextlib.suppress(TypeError, ValueError):
                self._date = parsedate_to_datetime(stamp).astimezone(UTC).date()
        return response

    @property
    def sf(self):
        if self._sf is None:
            self._sf = _calling(lambda: self._connect(self._session), "sign in to Salesforce")
        return self._sf

    def reconnect(self) -> None:
        self._sf = None
        _ = self.sf

    def today(self) -> date:
        if self._date is None:
            _calling(lambda: self.sf.query("SELECT Id FROM Organization LIMIT 1"), "read the org")
        if self._date is None:
            raise CrmError("Salesforce sent no Date header: cannot tell the CRM's date")
        return self._date

    def pages(self, cursor: str | None) -> Iterator[Page]:
        where = f" WHERE SystemModstamp >= {soql_datetime(cursor)}" if cursor else ""
        soql = f"SELECT {FIELDS} FROM Opportunity{where} ORDER BY SystemModstamp, Id"
        result = _calling(lambda: self.sf.query(soql, include_deleted=True), "read opportunities")
        while True:
            raw = result["records"]
            if raw:
                records = [_record(r) for r in raw]
                ids = [r["Id"] for r in records]
                people = sorted({p for p in map(_owner, raw) if p is not None})
                yield Page(records, self._history(ids), records[-1][MODSTAMP], self._fields(ids),
                           people)  # fmt: skip
            if result.get("done", True):
                return
            url = result["nextRecordsUrl"]
            result = _calling(
                lambda url=url: self.sf.query_more(url, identifier_is_url=True),
                "read opportunities",
            )

    def _history(self, ids: list[str]) -> list[dict]:
        rows: list[dict] = []
        for i in range(0, len(ids), IDS_PER_QUERY):
            soql = (
                f"SELECT {HISTORY_FIELDS} FROM OpportunityHistory WHERE OpportunityId IN "
                f"({_quoted(ids[i : i + IDS_PER_QUERY])}) ORDER BY OpportunityId, CreatedDate"
            )
            found = _calling(lambda soql=soql: self.sf.query_all_iter(soql), "read history")
            rows += [_change(r) for r in _calling(lambda f=found: list(f), "read history")]
        return rows

    def _fields(self, ids: list[str]) -> list[dict]:
        """Owner, name, next step, type and lead source changes, where the org tracks them."""
        wanted = ", ".join(f"'{f}'" for f in FIELD_NAMES)
        rows: list[dict] = []
        for i in range(0, len(ids), IDS_PER_QUERY):
            soql = (
                "SELECT Id, OpportunityId, CreatedDate, Field, OldValue, NewValue FROM "
                f"OpportunityFieldHistory WHERE OpportunityId IN ({_quoted(ids[i : i + IDS_PER_QUERY])}) "
                f"AND Field IN ({wanted}) ORDER BY OpportunityId, CreatedDate"
            )
            found = _calling(lambda soql=soql: list(self.sf.query_all_iter(soql)), "read field history")  # fmt: skip
            rows += [
                {"Id": r["Id"], "OpportunityId": r["OpportunityId"], "CreatedDate": r["CreatedDate"],
                 "Field": FIELD_NAMES[r["Field"]], "OldValue": r.get("OldValue"),
                 "NewValue": r.get("NewValue")}
                for r in found
                if not (r["Field"] == "Owner" and any(isinstance(v, str) and RECORD_ID.match(v) for v in (r.get("OldValue"), r.get("NewValue"))))
            ]  # fmt: skip
        return rows

    def stages(self) -> list[StageInfo]:
        soql = (
            "SELECT ApiName, MasterLabel, IsActive, IsClosed, IsWon, DefaultProbability, "
            "SortOrder FROM OpportunityStage ORDER BY SortOrder"
        )
        rows = _calling(lambda: self.sf.query_all(soql)["records"], "read the stages")
        return [
            StageInfo(
                label=r.get("ApiName") or r["MasterLabel"],
                status=("won" if r["IsWon"] else "lost") if r["IsClosed"] else "open",
                probability=None
                if r.get("DefaultProbability") is None
                else float(r["DefaultProbability"]),  # fmt: skip
                order=int(r.get("SortOrder") or 0),
            )
            for r in rows
        ]


def _name(value) -> str | None:
    return value.get("Name") if isinstance(value, dict) else None


def _owner(raw: dict) -> tuple[str, str] | None:
    """(Owner.Name, Owner.Email) of an opportunity, when the org gives both (the User's e-mail
    is required in Salesforce, but the integration user may not see it)."""
    owner = raw.get("Owner")
    if not isinstance(owner, dict):
        return None
    name, email = owner.get("Name"), owner.get("Email")
    return (name, email) if isinstance(name, str) and isinstance(email, str) and email else None


def _record(raw: dict) -> dict:
    items = raw.get("OpportunityLineItems") or {}
    product = next((_name(i.get("Product2")) for i in items.get("records") or ()), None)
    return {
        "Id": raw["Id"],
        "Name": raw.get("Name"),
        "OwnerName": _name(raw.get("Owner")),
        "AccountName": _name(raw.get("Account")),
        "ProductName": product,
        **{k: raw.get(k) for k in (
            "StageName", "CreatedDate", "CloseDate", "Amount", "Probability",
            "ForecastCategoryName", "LastActivityDate", "NextStep", "Type", "LeadSource")},
        MODSTAMP: raw["SystemModstamp"],
        DELETED: bool(raw.get("IsDeleted")),
        MERGED_INTO: None,  # Salesforce merges accounts, contacts and leads, not opportunities
    }  # fmt: skip


def _change(raw: dict) -> dict:
    category = raw.get("ForecastCategory")
    return {
        "Id": raw["Id"],
        "OpportunityId": raw["OpportunityId"],
        "CreatedDate": raw["CreatedDate"],
        "StageName": raw.get("StageName"),
        "Amount": raw.get("Amount"),
        "CloseDate": raw.get("CloseDate"),
        "Probability": raw.get("Probability"),
        "ForecastCategoryName": FORECAST_LABELS.get(category, category),
    }


def _calling(call: Callable, what: str):
    """Run one API call; the library's and the network's errors become the sync's plain ones."""
    from simple_salesforce.exceptions import (
        SalesforceAuthenticationFailed,
        SalesforceError,
        SalesforceExpiredSession,
    )

    try:
        return call()
    except SalesforceExpiredSession as exc:
        raise CrmSessionExpired(f"could not {what}: the Salesforce session expired") from exc
    except SalesforceAuthenticationFailed as exc:
        raise CrmError(f"could not {what}: Salesforce refused the sign-in ({_code(exc)}); {ENV_HELP}") from exc  # fmt: skip
    except SalesforceError as exc:
        code = _code(exc)
        if code in ("REQUEST_LIMIT_EXCEEDED", "TOO_MANY_REQUESTS") or exc.status in (429, 503):
            raise CrmBusy(f"Salesforce refused to {what}: {code} (the org's API request limit)") from exc  # fmt: skip
        raise CrmError(f"could not {what}: Salesforce answered {exc.status} {code}") from exc
    except requests.exceptions.SSLError as exc:  # not transient: waiting will not fix it
        raise CrmError(f"could not {what}: Salesforce's TLS certificate was not trusted") from exc
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise CrmBusy(f"could not reach Salesforce to {what} ({type(exc).__name__})") from exc


def _code(exc) -> str:
    """The errorCode of a Salesforce error (never its whole content, which may echo a request)."""
    content = getattr(exc, "content", None)
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode", "error"))
    if isinstance(content, dict):
        return str(content.get("errorCode") or content.get("error") or "error")
    return getattr(exc, "code", None) or "error"


def _sign_in_from(env: Mapping[str, str]) -> Callable[[requests.Session], object]:
    """How to sign in, from the environment: JWT bearer, refresh token, then username, password
    and security token. Raises CrmError naming the variables when none is complete."""
    get = lambda k: (env.get(k) or "").strip() or None  # noqa: E731
    domain = get("SALESFORCE_DOMAIN") or "login"
    user, key = get("SALESFORCE_USERNAME"), get("SALESFORCE_CONSUMER_KEY")
    private_key, refresh = get("SALESFORCE_PRIVATE_KEY_FILE"), get("SALESFORCE_REFRESH_TOKEN")
    password, token = get("SALESFORCE_PASSWORD"), get("SALESFORCE_SECURITY_TOKEN")
    from simple_salesforce import Salesforce

    if user and key and private_key:
        return lambda s: Salesforce(
            username=user, consumer_key=key, privatekey_file=private_key, domain=domain, session=s
        )
    if key and refresh:
        secret = get("SALESFORCE_CONSUMER_SECRET")
        return lambda s: _refreshed(s, domain, key, secret, refresh)
    if user and password and token:
        return lambda s: Salesforce(
            username=user, password=password, security_token=token, domain=domain, session=s
        )
    instance, access = get("SALESFORCE_INSTANCE_URL"), get("SALESFORCE_ACCESS_TOKEN")
    if instance and access:
        return lambda s: Salesforce(instance_url=instance, session_id=access, session=s)
    raise CrmError(f"no Salesforce sign-in configured: {ENV_HELP}")


def _refreshed(session: requests.Session, domain: str, key: str, secret: str | None, refresh: str):
    """OAuth 2.0 refresh-token flow (simple-salesforce signs in by JWT, password or client
    credentials, not by a refresh token): a fresh access token, then the client on it."""
    from simple_salesforce import Salesforce
    from simple_salesforce.exceptions import SalesforceAuthenticationFailed

    data = {"grant_type": "refresh_token", "client_id": key, "refresh_token": refresh}
    if secret:
        data["client_secret"] = secret
    answer = session.post(f"https://{domain}.salesforce.com/services/oauth2/token", data=data)
    if answer.status_code != 200:
        try:
            code = answer.json().get("error", "error")
        except ValueError:
            code = "error"
        raise SalesforceAuthenticationFailed(code, f"token refresh answered {answer.status_code}")
    token = answer.json()
    return Salesforce(instance_url=token["instance_url"], session_id=token["access_token"], session=session)  # fmt: skip
