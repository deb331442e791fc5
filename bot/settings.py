"""Settings read once, from revbot.toml and the environment, into frozen dataclasses.

The file says what to post where and who may see what; secrets (tokens, signing secret) come only
from the environment and are never printed: `Secrets.__repr__` masks them.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from bot.config import ConfigError
from bot.crm_links import check_template
from dataset.limits import DEFAULT_LIMITS, Limits
from dataset.money import DEFAULT_CURRENCY, check_currency
from dataset.retention import Retention
from forecasting.targets import Target, TargetError, parse_amount, parse_quarter
from forecasting.targets import read_csv as read_targets_csv
from scoring.hygiene import RULE_NAMES, HygieneConfig

ROLES = ("leader", "manager", "rep")
USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")  # a Slack member id: a [roster] key (U0123ABCD)
DAYS = re.compile(r"^(\*|(mon|tue|wed|thu|fri|sat|sun)(-(mon|tue|wed|thu|fri|sat|sun))?(,(mon|tue|wed|thu|fri|sat|sun)(-(mon|tue|wed|thu|fri|sat|sun))?)*)$")  # fmt: skip
DIGEST_DEFAULTS: dict[str, Any] = {
    "time": "08:00",
    "days": "mon-fri",
    "timezone": "UTC",
    "top": 10,
    "min_risk": 0,
    "grace_minutes": 120,
}

# [model]: retrain once the newest data are this many days past the model's training data (0:
# only when the model does not fit the data); give reasons to this many deals, by value at risk
MODEL_DEFAULTS = {"retrain_days": 7, "explain_top": 20_000}


@dataclass(frozen=True)
class Scope:
    """Which deals: all of them, one region (regional office) or one manager's team."""

    kind: str  # all | region | manager | rep
    name: str | None = None

    @classmethod
    def parse(cls, text: str) -> Scope:
        text = text.strip()
        if text == "all":
            return cls("all")
        kind, sep, name = text.partition(":")
        if not sep or kind not in ("region", "manager", "rep") or not name.strip():
            raise ConfigError(
                f"scope {text!r}: expected 'all', 'region:<office>', 'manager:<name>' or "
                "'rep:<name>'"
            )
        return cls(kind, name.strip())

    def __str__(self) -> str:
        return "all" if self.kind == "all" else f"{self.kind}:{self.name}"

    @property
    def label(self) -> str:
        """How the scope reads in a message."""
        return {
            "all": "all teams",
            "region": f"{self.name} region",
            "manager": f"{self.name}'s team",
            "rep": f"{self.name}'s deals",
        }[self.kind]


@dataclass(frozen=True)
class NudgeConfig:
    """`[nudges]`: personal direct messages to a deal's owner (`bot.nudges`)."""

    enabled: bool = True
    per_day: int = 3  # deal nudges a person gets a day at most (each may lower it in the Home tab)
    risk: float = 60.0  # a deal crossing this risk is news to its owner
    quiet: tuple[str, str] = ("20:00", "08:00")  # their local night: nothing is sent
    snooze_days: int = 7


NUDGE_KEYS = ("enabled", "per_day", "risk", "quiet_from", "quiet_until", "snooze_days")


@dataclass(frozen=True)
class DaskConfig:
    """`[dask]`: score and train on this Dask scheduler (`scoring.cluster`); `--dask` overrides."""

    address: str
    connect_timeout: float = 5.0  # seconds to reach it (and for a worker to be there)


DASK_KEYS = ("address", "connect_timeout")
DASK_ADDRESS = re.compile(r"(tcp|tls|ucx|ws|wss)://[^\s/]+:\d+/?")


@dataclass(frozen=True)
class Channel:
    id: str
    scope: Scope
    time: str
    days: str
    timezone: str
    top: int
    min_risk: float
    grace_minutes: int

    @property
    def hour_minute(self) -> tuple[int, int]:
        hour, minute = self.time.split(":")
        return int(hour), int(minute)


@dataclass(frozen=True)
class Member:
    user_id: str
    role: str  # leader | manager | rep
    name: str | None = None  # the CRM's name for managers and reps


@dataclass(frozen=True)
class Secrets:
    bot_token: str | None = field(default=None, repr=False)
    signing_secret: str | None = field(default=None, repr=False)
    app_token: str | None = field(default=None, repr=False)
    api_url: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Secrets:
        env = os.environ if env is None else env
        return cls(
            bot_token=env.get("SLACK_BOT_TOKEN") or None,
            signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
            app_token=env.get("SLACK_APP_TOKEN") or None,
            api_url=env.get("SLACK_API_URL") or None,
        )

    def __repr__(self) -> str:
        shown = {k: "set" if getattr(self, k) else "unset" for k in ("bot_token", "signing_secret", "app_token")}  # fmt: skip
        return f"Secrets({shown}, api_url={self.api_url!r})"


@dataclass(frozen=True)
class Settings:
    channels: tuple[Channel, ...] = ()
    roster: dict[str, Member] | None = None  # None: no roster, everyone may ask
    admin_channel: str | None = None
    exports_folder: Path | None = None
    import_limits: Limits = DEFAULT_LIMITS
    currency: str = DEFAULT_CURRENCY  # ISO 4217 code of the exports' amounts
    secrets: Secrets = Secrets()
    retrain_days: int = MODEL_DEFAULTS["retrain_days"]
    explain_top: int = MODEL_DEFAULTS["explain_top"]
    crm: str | None = None  # [crm] kind: the CRM the refresh syncs from first (secrets: env)
    targets: tuple[Target, ...] = ()  # quotas per quarter and scope ([[targets]], targets_csv)
    deal_url: str | None = None  # [links]: the CRM's URL of a deal, `{id}` where its id goes
    hygiene: HygieneConfig = HygieneConfig()  # [hygiene]: the deal hygiene rules' thresholds
    nudges: NudgeConfig = NudgeConfig()  # [nudges]: direct messages to deal owners
    retention: Retention = Retention()  # [retention]: how long runs keep their per-deal rows
    people_csv: Path | None = None  # [roster] people_csv: name,email,role for `roster --build`
    dask: DaskConfig | None = None  # [dask]: score and train on a Dask cluster (None: here)

    def target(self, quarter: str, scope: Scope) -> Target | None:
        """The target of a quarter for a scope, if one is configured."""
        return next((t for t in self.targets if t.quarter == quarter and t.scope == str(scope)), None)  # fmt: skip

    def member(self, user_id: str) -> Member | None:
        """Who a Slack user is; with no roster configured everyone counts as a leader."""
        if self.roster is None:
            return Member(user_id, "leader")
        return self.roster.get(user_id)


def _check_channel_id(value: Any, where: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[CGD][A-Z0-9]{2,}", value):
        raise ConfigError(
            f"{where}: {value!r} is not a Slack channel ID (like C0123ABCD; a #name will not do: "
            "copy the ID from the channel's details)"
        )
    return value


def _channel(raw: dict[str, Any], defaults: dict[str, Any], i: int) -> Channel:
    where = f"[[channels]] #{i + 1}"
    unknown = set(raw) - {"id", "scope", *DIGEST_DEFAULTS}
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    merged = {**defaults, **raw}
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", str(merged["time"])):
        raise ConfigError(f"{where}: time {merged['time']!r} is not HH:MM (24-hour)")
    if not DAYS.match(str(merged["days"])):
        raise ConfigError(f"{where}: days {merged['days']!r}: use e.g. 'mon-fri' or 'mon,wed,fri'")
    try:
        ZoneInfo(str(merged["timezone"]))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"{where}: unknown timezone {merged['timezone']!r}") from exc
    try:  # what APScheduler will be given, checked now so that a typo fails at start-up
        hour, minute = str(merged["time"]).split(":")
        CronTrigger(day_of_week=str(merged["days"]), hour=int(hour), minute=int(minute),
                    timezone=ZoneInfo(str(merged["timezone"])))  # fmt: skip
    except ValueError as exc:
        raise ConfigError(f"{where}: days {merged['days']!r}: {exc}") from exc
    if int(merged["grace_minutes"]) < 1:
        raise ConfigError(f"{where}: grace_minutes must be at least 1")
    top, min_risk = int(merged["top"]), float(merged["min_risk"])
    if not 1 <= top <= 20:
        raise ConfigError(f"{where}: top must be 1-20 (a digest longer than that gets muted)")
    if not 0 <= min_risk <= 100:
        raise ConfigError(f"{where}: min_risk must be 0-100")
    return Channel(
        id=_check_channel_id(raw.get("id"), where),
        scope=Scope.parse(str(merged.get("scope", "all"))),
        time=str(merged["time"]),
        days=str(merged["days"]),
        timezone=str(merged["timezone"]),
        top=top,
        min_risk=min_risk,
        grace_minutes=int(merged["grace_minutes"]),
    )


ROSTER_FILE = "people_csv"  # the one [roster] key that is not a Slack user id


def _roster(raw: dict[str, Any]) -> dict[str, Member]:
    if not isinstance(raw, dict):
        raise ConfigError('[roster] is a table: write `[roster]` on a line of its own, then e.g. '
                          '"U0123ABCD" = { role = "rep", name = "Ann Lee" } under it')  # fmt: skip
    roster = {}
    for user_id, entry in raw.items():
        if user_id == ROSTER_FILE:
            continue
        if not USER_ID.fullmatch(user_id):
            raise ConfigError(f"[roster]: {user_id!r} is not a Slack user ID (like U0123ABCD)")
        if not isinstance(entry, dict) or entry.get("role") not in ROLES:
            raise ConfigError(f"[roster] {user_id}: role must be one of {', '.join(ROLES)}")
        name = entry.get("name")
        if entry["role"] != "leader" and not name:
            raise ConfigError(f"[roster] {user_id}: a {entry['role']} needs the CRM `name`")
        roster[user_id] = Member(user_id, entry["role"], name)
    return roster


def people_csv_of(config: dict[str, Any]) -> Path | None:
    """`[roster] people_csv`: a CSV of people (name, email, role) that `revbot roster --build`
    looks up in Slack by e-mail, for CSV-export users (a live sync keeps the CRM owners'
    addresses itself). Only the path is checked here: the file is read by that command alone,
    so a missing one never stops the bot."""
    raw = config.get("roster")
    value = raw.get(ROSTER_FILE) if isinstance(raw, dict) else None
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f'[roster] {ROSTER_FILE}: {value!r} is not a file name; write e.g. '
                          f'{ROSTER_FILE} = "people.csv" (columns name, email, role)')  # fmt: skip
    return Path(value.strip())


EXPORTS_KEYS = ("folder", "max_amount", "currency")
CRM_KINDS = ("salesforce", "hubspot")


def targets_of(config: dict[str, Any]) -> tuple[Target, ...]:
    """`[[targets]]` tables (quarter, scope, amount) and the rows of `[forecast] targets_csv`
    (a CSV with the same columns): a quota per quarter per scope. A quarter and scope given
    twice is an error, naming both places."""
    forecast = config.get("forecast", {})
    unknown = set(forecast) - {"targets_csv"}
    if unknown:
        raise ConfigError(f"[forecast]: unknown keys {sorted(unknown)}")
    raw = [dict(t, _where=f"[[targets]] #{i + 1}") for i, t in enumerate(config.get("targets", []))]
    path = forecast.get("targets_csv")
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise ConfigError(
                f"[forecast] targets_csv: cannot read {path}: {exc.strerror}"
            ) from None
        try:
            raw += read_targets_csv(text, str(path))
        except TargetError as exc:
            raise ConfigError(str(exc)) from None
    out: dict[tuple[str, str], tuple[Target, str]] = {}
    for t in raw:
        where = t.pop("_where")
        unknown = set(t) - {"quarter", "scope", "amount"}
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
        try:
            target = Target(parse_quarter(t.get("quarter", ""), where),
                            str(Scope.parse(str(t.get("scope") or "all"))),
                            parse_amount(t.get("amount"), where))  # fmt: skip
        except TargetError as exc:
            raise ConfigError(str(exc)) from None
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        key = (target.quarter, target.scope)
        if key in out:
            raise ConfigError(f"{where}: a second target for {target.quarter} {target.scope} "
                              f"(the first is {out[key][1]})")  # fmt: skip
        out[key] = (target, where)
    return tuple(t for t, _ in out.values())


def crm_of(config: dict[str, Any]) -> str | None:
    """`[crm] kind`: the CRM read directly by `revbot sync` and the morning refresh (its
    credentials come from the environment only, never from this file)."""
    raw = config.get("crm")
    if raw is None:
        return None
    unknown = set(raw) - {"kind"}
    if unknown:
        raise ConfigError(
            f"[crm]: unknown keys {sorted(unknown)} (only `kind`; credentials go in the "
            "environment, see deploy/README.md)"
        )
    kind = raw.get("kind")
    if kind not in CRM_KINDS:
        raise ConfigError(f"[crm] kind: {kind!r} is not one of {', '.join(CRM_KINDS)}")
    return kind


LINKS_KINDS = ("deal_url", "salesforce", "hubspot_portal")
HUBSPOT_SITE = "https://app.hubspot.com"  # EU accounts: https://app-eu1.hubspot.com
SALESFORCE_DEAL = "/lightning/r/Opportunity/{id}/view"  # Lightning Experience's record page
HUBSPOT_DEAL = "/contacts/{portal}/record/0-3/{id}"  # 0-3: HubSpot's object type id of deals


def _site(value: Any, key: str, example: str) -> str:
    """An https site (scheme and host, nothing after them but a tolerated trailing slash)."""
    text = value.strip() if isinstance(value, str) else ""
    parts = urlsplit(text)
    if parts.scheme != "https" or not parts.netloc or not text.startswith("https://"):
        raise ConfigError(f"[links] {key}: {value!r} is not an https:// address; write the site "
                          f"only, e.g. {key} = \"{example}\"")  # fmt: skip
    if parts.path not in ("", "/") or parts.query or parts.fragment or re.search(r"[\s<>|{}]", text):  # fmt: skip
        raise ConfigError(f"[links] {key}: {value!r}: write the site only, without a path, "
                          f"e.g. {key} = \"{example}\"")  # fmt: skip
    return text.rstrip("/")


def links_of(config: dict[str, Any]) -> str | None:
    """`[links]`: the URL template of a deal in the CRM, so that every deal revbot shows is one
    click away (`bot.crm_links`). One of: `deal_url` (any template with `{id}`), `salesforce`
    (the org's My Domain URL) or `hubspot_portal` (the account id; `hubspot_site` for EU
    accounts). None without the table."""
    raw = config.get("links")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError('[links] is a table: write `[links]` on a line of its own, then e.g. '
                          'deal_url = "https://crm.example.com/deals/{id}" under it')  # fmt: skip
    unknown = set(raw) - {*LINKS_KINDS, "hubspot_site"}
    if unknown:
        raise ConfigError(
            f"[links]: unknown keys {sorted(unknown)} (one of deal_url, salesforce or "
            "hubspot_portal, with hubspot_site for an EU HubSpot account)"
        )
    given = [k for k in LINKS_KINDS if k in raw]
    if len(given) != 1:
        which = "none of them; or delete the table for no links" if not given else (
            " and ".join(given) + ": keep one")  # fmt: skip
        raise ConfigError(
            f"[links]: set exactly one of deal_url, salesforce or hubspot_portal (found {which})"
        )
    if "hubspot_site" in raw and given != ["hubspot_portal"]:
        raise ConfigError("[links] hubspot_site goes with hubspot_portal (the HubSpot account "
                          "id); with deal_url or salesforce, delete it")  # fmt: skip
    kind = given[0]
    if kind == "deal_url":
        try:
            return check_template(raw["deal_url"])
        except ValueError as exc:
            raise ConfigError(f"[links] deal_url: {exc}") from None
    if kind == "salesforce":
        site = _site(raw["salesforce"], "salesforce", "https://acme.my.salesforce.com")
        return check_template(site + SALESFORCE_DEAL)
    portal = raw["hubspot_portal"]
    if isinstance(portal, bool) or not isinstance(portal, int) or portal <= 0:
        raise ConfigError(
            f"[links] hubspot_portal: {portal!r} is not a HubSpot account id (a positive whole "
            "number, without quotes, e.g. hubspot_portal = 1234567: in HubSpot, the account "
            "menu at the top right shows it)"
        )
    site = _site(raw.get("hubspot_site", HUBSPOT_SITE), "hubspot_site", HUBSPOT_SITE)
    return check_template(site + HUBSPOT_DEAL.replace("{portal}", str(portal)))


def _model_settings(raw: dict[str, Any]) -> dict[str, int]:
    unknown = set(raw) - set(MODEL_DEFAULTS)
    if unknown:
        raise ConfigError(f"[model]: unknown keys {sorted(unknown)}")
    out = {**MODEL_DEFAULTS, **raw}
    for key, value in out.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"[model] {key}: {value!r} is not a whole number, 0 or more")
    return out


# [hygiene]: each threshold's range and how to write it
HYGIENE_RANGES = {
    "close_date_grace_days": (0, None, "a whole number of days, 0 or more (0: any day past)"),
    "no_activity_days": (1, None, "a whole number of days, 1 or more"),
    "stage_percentile": (50, 100, "a percentage from 50 to 100 (90: slower than 90% of won deals)"),
    "close_pushes": (1, None, "a whole number of pushes, 1 or more"),
}


def retention_of(config: dict[str, Any]) -> Retention:
    """`[retention]`: every score run whole for `daily_days` (data days), then the last run of
    each week for `weekly_days` more (0: for ever); see `dataset.retention`."""
    raw = config.get("retention", {})
    if not isinstance(raw, dict):
        raise ConfigError("[retention] must be a table: a line `[retention]`, then its keys")
    unknown = set(raw) - {"daily_days", "weekly_days"}
    if unknown:
        raise ConfigError(f"[retention]: unknown keys {sorted(unknown)} (known: daily_days, weekly_days)")  # fmt: skip
    d = Retention()
    out = {}
    for key, low in (("daily_days", 7), ("weekly_days", 0)):
        v = raw.get(key, getattr(d, key))
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ConfigError(f"[retention] {key}: {v!r} is not a whole number of days, {low} or "
                              f"more; e.g. {key} = {getattr(d, key)}")  # fmt: skip
        out[key] = v
    return Retention(**out)


def nudges_of(config: dict[str, Any]) -> NudgeConfig:
    """`[nudges]`: whether revbot sends personal nudges to the roster's deal owners, how many a
    day (1-20), from which risk, their local night (HH:MM to HH:MM) and the snooze's days."""
    raw = config.get("nudges", {})
    if not isinstance(raw, dict):
        raise ConfigError("[nudges] must be a table: a line `[nudges]`, then its keys")
    unknown = set(raw) - set(NUDGE_KEYS)
    if unknown:
        raise ConfigError(f"[nudges]: unknown keys {sorted(unknown)} (known: {', '.join(NUDGE_KEYS)})")  # fmt: skip
    d = NudgeConfig()
    enabled = raw.get("enabled", d.enabled)
    if not isinstance(enabled, bool):
        raise ConfigError(f"[nudges] enabled: {enabled!r} is not true or false")

    def whole(key: str, low: int, high: int, default: int) -> int:
        v = raw.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
            raise ConfigError(f"[nudges] {key}: {v!r} is not a whole number {low}-{high}; "
                              f"e.g. {key} = {default}")  # fmt: skip
        return v

    risk = raw.get("risk", d.risk)
    if isinstance(risk, bool) or not isinstance(risk, int | float) or not 1 <= risk <= 100:
        raise ConfigError(f"[nudges] risk: {risk!r} is not a risk 1-100; e.g. risk = 60")
    quiet = []
    for key, default in (("quiet_from", d.quiet[0]), ("quiet_until", d.quiet[1])):
        v = raw.get(key, default)
        if not isinstance(v, str) or not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", v):
            raise ConfigError(f'[nudges] {key}: {v!r} is not HH:MM (24-hour); e.g. {key} = "{default}"')  # fmt: skip
        quiet.append(v)
    if quiet[0] == quiet[1]:
        raise ConfigError("[nudges] quiet_from and quiet_until are the same time: the night "
                          "would be empty or the whole day; e.g. 20:00 and 08:00")  # fmt: skip
    return NudgeConfig(enabled=enabled, per_day=whole("per_day", 1, 20, d.per_day),
                       risk=float(risk), quiet=(quiet[0], quiet[1]),
                       snooze_days=whole("snooze_days", 1, 90, d.snooze_days))  # fmt: skip


def dask_address(value: Any, where: str) -> str:
    """A Dask scheduler's address, checked for its shape only (whether one answers there is
    known when a command connects)."""
    if not isinstance(value, str) or not DASK_ADDRESS.fullmatch(value.strip()):
        raise ConfigError(f'{where}: {value!r} is not a Dask scheduler address; write it as '
                          '`dask scheduler` prints it, e.g. "tcp://10.0.0.5:8786"')  # fmt: skip
    return value.strip()


def dask_of(config: dict[str, Any], flag: str | None = None) -> DaskConfig | None:
    """`[dask]`: the scheduler that `revbot score`, `revbot train` and every refresh use (None:
    score and train in this process). `flag` (`--dask ADDRESS`) overrides the address."""
    raw = config.get("dask", {})
    if not isinstance(raw, dict):
        raise ConfigError("[dask] must be a table: a line `[dask]`, then e.g. "
                          'address = "tcp://10.0.0.5:8786"')  # fmt: skip
    unknown = set(raw) - set(DASK_KEYS)
    if unknown:
        raise ConfigError(f"[dask]: unknown keys {sorted(unknown)} (known: {', '.join(DASK_KEYS)})")
    timeout = raw.get("connect_timeout", DaskConfig.connect_timeout)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 600:
        raise ConfigError(f"[dask] connect_timeout: {timeout!r} is not a number of seconds "
                          "from 0 to 600; e.g. connect_timeout = 5")  # fmt: skip
    if flag is not None:
        return DaskConfig(dask_address(flag, "--dask"), float(timeout))
    if "address" not in raw:
        if raw:
            raise ConfigError('[dask]: no address; e.g. address = "tcp://10.0.0.5:8786"')
        return None
    return DaskConfig(dask_address(raw["address"], "[dask] address"), float(timeout))


def hygiene_of(config: dict[str, Any]) -> HygieneConfig:
    """`[hygiene]`: the deal hygiene rules' thresholds, and `off`, the rules switched off."""
    raw = config.get("hygiene", {})
    if not isinstance(raw, dict):
        raise ConfigError("[hygiene] must be a table: a line `[hygiene]`, then its keys")
    unknown = set(raw) - set(HygieneConfig.settings())
    if unknown:
        raise ConfigError(
            f"[hygiene]: unknown keys {sorted(unknown)} (known: {', '.join(HygieneConfig.settings())})"
        )
    values: dict[str, Any] = {}
    for key, (low, high, what) in HYGIENE_RANGES.items():
        if key not in raw:
            continue
        value = raw[key]
        whole = key != "stage_percentile"
        number = isinstance(value, int) if whole else isinstance(value, int | float)
        if isinstance(value, bool) or not number or not math.isfinite(value) or value < low or (high is not None and value > high):  # fmt: skip
            default = getattr(HygieneConfig(), key)
            raise ConfigError(f"[hygiene] {key}: {value!r} is not {what}; e.g. {key} = {default:g}")
        values[key] = value
    off = raw.get("off", [])
    if not isinstance(off, list) or not all(isinstance(r, str) for r in off):
        raise ConfigError(
            f'[hygiene] off: {off!r} is not a list of rule names; e.g. off = ["no_next_step"]'
        )
    wrong = [r for r in off if r not in RULE_NAMES]
    if wrong:
        raise ConfigError(
            f"[hygiene] off: unknown rules {wrong} (the rules: {', '.join(RULE_NAMES)})"
        )
    return HygieneConfig(**values, off=frozenset(off))


def import_limits(config: dict[str, Any]) -> Limits:
    """`[exports] max_amount`: the largest amount (deal value, price, revenue) an import
    accepts; a larger one is set aside as absurd. Read by `revbot ingest` too, which needs no
    other setting."""
    exports = config.get("exports", {})
    unknown = set(exports) - set(EXPORTS_KEYS)
    if unknown:
        raise ConfigError(f"[exports]: unknown keys {sorted(unknown)}")
    if "max_amount" not in exports:
        return DEFAULT_LIMITS
    value = exports["max_amount"]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:  # fmt: skip
        raise ConfigError(
            f"[exports] max_amount: {value!r} is not a positive number (e.g. 1e12 or 5_000_000)"
        )
    return Limits(max_amount=float(value))


def currency_of(config: dict[str, Any]) -> str:
    """`[exports] currency`: the ISO 4217 code of the exports' amounts (`EUR`), which every
    message, reason and chart shows; USD when not set (no preset maps a currency column). Read by
    `revbot score` and `revbot forecast` too."""
    value = config.get("exports", {}).get("currency", DEFAULT_CURRENCY)
    try:
        return check_currency(value)
    except ValueError as exc:
        raise ConfigError(f"[exports] currency: {exc}") from exc


def settings_from(config: dict[str, Any], env: dict[str, str] | None = None) -> Settings:
    """Validate the parsed revbot.toml; every problem names its table and key."""
    defaults = {**DIGEST_DEFAULTS, **config.get("digest", {})}
    unknown = set(config.get("digest", {})) - set(DIGEST_DEFAULTS)
    if unknown:
        raise ConfigError(f"[digest]: unknown keys {sorted(unknown)}")
    channels = tuple(_channel(c, defaults, i) for i, c in enumerate(config.get("channels", [])))
    ids = [c.id for c in channels]
    if len(set(ids)) != len(ids):
        raise ConfigError("[[channels]]: a channel is listed twice")
    admin = config.get("slack", {}).get("admin_channel")
    folder = config.get("exports", {}).get("folder")
    return Settings(
        channels=channels,
        roster=_roster(config["roster"]) if "roster" in config else None,
        admin_channel=_check_channel_id(admin, "[slack] admin_channel") if admin else None,
        exports_folder=Path(folder) if folder else None,
        import_limits=import_limits(config),
        currency=currency_of(config),
        secrets=Secrets.from_env(env),
        crm=crm_of(config),
        targets=targets_of(config),
        deal_url=links_of(config),
        hygiene=hygiene_of(config),
        nudges=nudges_of(config),
        retention=retention_of(config),
        people_csv=people_csv_of(config),
        dask=dask_of(config),
        **_model_settings(config.get("model", {})),
    )
