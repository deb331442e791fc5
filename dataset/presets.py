"""Column-mapping presets: which header of which CRM export feeds which field of ours.

Each preset maps our canonical field names to the header names a CRM uses (matched ignoring case and
surrounding spaces). Built-in presets cover the MavenTech data set, Salesforce opportunity reports
(and Data Loader exports) and HubSpot deal exports; a `revbot.toml` can override any of them or add
new ones (see `apply_overrides`).

Canonical deal fields (why they exist):
- deal_id, stage: required; the stage decides open / won / lost through the preset's stage map.
- owner (the rep), product, account: who and what; account may be blank while a deal is open.
- engage_date: when the deal entered the active pipeline (MavenTech "engage_date", Salesforce and
  HubSpot "created" date); blank for MavenTech deals still prospecting.
- close_date: actual close date for closed deals; for open deals the *expected* close date where the
  CRM has one (Salesforce, HubSpot, the demo generator), so that pushes of it can be tracked.
- value: close value / amount. last_activity: date of the last logged activity, where exported.
- What the CRM itself says about a deal, where the export has it (each is a model feature, see
  scoring/features.py): probability (the CRM's win probability in %, the stage default unless a
  rep overrode it), forecast_category (Pipeline, Best Case, Commit...), next_step (its text; only
  whether there is one is used), stage_changed (the date of the last stage change), push_count
  (Salesforce's count of close-date pushes), deal_type (new or existing business), lead_source.

Stage order and default probabilities: a preset lists its stages in pipeline order with the CRM's
default probability of each open stage, so that "Negotiation/Review" is known to be further along
than "Qualification" even before any deal has closed from it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

OPEN, WON, LOST = "open", "won", "lost"

DEAL_FIELDS = (
    "deal_id",
    "name",
    "owner",
    "product",
    "account",
    "stage",
    "engage_date",
    "close_date",
    "value",
    "last_activity",
    "probability",
    "forecast_category",
    "next_step",
    "stage_changed",
    "push_count",
    "deal_type",
    "lead_source",
)


def name_key(text: str) -> str:
    """Spelling-insensitive key: `GTXPro`, `GTX Pro` and `gtx-pro` all give `gtxpro`."""
    return re.sub(r"[^0-9a-z]", "", text.lower())


@dataclass(frozen=True)
class Preset:
    """How to read one kind of file from one CRM.

    Sources for the built-in header names: Salesforce's Opportunity field reference (labels and
    API names: Id, StageName, CloseDate, CreatedDate, LastActivityDate...) and report exports
    ("Opportunity Owner", "Account Name", "Product Name"); HubSpot's "all deals" export ("Record
    ID", "Deal Name", "Deal Stage", "Deal owner", "Create Date", "Last Activity Date") and its
    property names (dealname, dealstage, closedate, createdate, hubspot_owner_id). Names we could
    not confirm in a real export are kept out; add yours in revbot.toml.
    """

    name: str
    table: str  # deals | accounts | products | sales_teams | dictionary
    columns: Mapping[str, tuple[str, ...]]
    required: frozenset[str]
    stages: Mapping[str, str] = field(default_factory=dict)  # stage label -> open/won/lost
    date_order: str = "iso"  # which reading wins when 01/02/2017 is ambiguous: iso | mdy | dmy
    probabilities: Mapping[str, float] = field(default_factory=dict)  # stage -> default %
    # how the CRM writes a probability: "percent" (Salesforce: 0-100), else a file whose every
    # value is at most 1 is read as fractions (HubSpot exports 0.2 for 20%)
    probability_scale: str = "fraction_if_all_below_1"
    # Salesforce: a report's 15-character ids are stored in their 18-character case-safe form
    case_safe_ids: bool = False

    def stage_table(self, observed: Mapping[str, float] | None = None) -> list[dict]:
        """Every stage with its status, its rank among the open stages (0 = earliest) and its
        default probability: the preset's, else `observed` (the median probability an export
        gave that stage's deals), else None. Open stages rank by default probability where every
        open stage has one, else in the order listed."""
        open_stages = [s for s, status in self.stages.items() if status == OPEN]
        probs = {name_key(k): float(v) for k, v in (observed or {}).items()}
        probs.update({name_key(k): float(v) for k, v in self.probabilities.items()})
        known = [probs.get(name_key(s)) for s in open_stages]
        order = list(range(len(open_stages)))
        if open_stages and all(p is not None for p in known):
            order.sort(key=lambda i: (known[i], i))
        rank = {open_stages[i]: r for r, i in enumerate(order)}
        closed = {WON: 100.0, LOST: 0.0}
        return [
            {
                "stage": s,
                "status": status,
                "rank": rank.get(s),
                "probability": probs.get(name_key(s), closed.get(status)),
            }
            for s, status in self.stages.items()
        ]

    def stage_status(self) -> dict[str, tuple[str, str]]:
        """`name_key(label)` -> (label as the preset spells it, status)."""
        out: dict[str, tuple[str, str]] = {}
        for label, status in self.stages.items():
            out.setdefault(name_key(label), (label, status))
        return out

    def match(self, header: list[str]) -> tuple[dict[str, int], list[str]]:
        """Column index of each canonical field found in `header`, and the required ones missing."""
        index = {h.strip().lower(): i for i, h in enumerate(header)}
        found: dict[str, int] = {}
        for canonical, names in self.columns.items():
            for name in names:
                if name.strip().lower() in index:
                    found[canonical] = index[name.strip().lower()]
                    break
        missing = [
            f"{c} ({' / '.join(repr(n) for n in self.columns[c])})"
            for c in sorted(self.required)
            if c not in found
        ]
        return found, missing


MAVENTECH_STAGES = {"Prospecting": OPEN, "Engaging": OPEN, "Won": WON, "Lost": LOST}

# Salesforce's default opportunity stages (Setup > Opportunity Stages) and their API values.
SALESFORCE_STAGES = {
    "Prospecting": OPEN,
    "Qualification": OPEN,
    "Needs Analysis": OPEN,
    "Value Proposition": OPEN,
    "Id. Decision Makers": OPEN,
    "Perception Analysis": OPEN,
    "Proposal/Price Quote": OPEN,
    "Negotiation/Review": OPEN,
    "Closed Won": WON,
    "Closed Lost": LOST,
}

SALESFORCE_PROBABILITIES = {
    "Prospecting": 10,
    "Qualification": 10,
    "Needs Analysis": 20,
    "Value Proposition": 50,
    "Id. Decision Makers": 60,
    "Perception Analysis": 70,
    "Proposal/Price Quote": 75,
    "Negotiation/Review": 90,
}

# HubSpot's default sales pipeline. Stages match through `name_key`, so the exported labels
# ("Qualified to Buy", "Decision Maker Bought In") and the API's ids ("qualifiedtobuy") all match.
HUBSPOT_STAGES = {
    "Appointment Scheduled": OPEN,
    "Qualified To Buy": OPEN,
    "Presentation Scheduled": OPEN,
    "Decision Maker Bought-In": OPEN,
    "Contract Sent": OPEN,
    "Closed Won": WON,
    "Closed Lost": LOST,
}
HUBSPOT_PROBABILITIES = {
    "Appointment Scheduled": 20,
    "Qualified To Buy": 40,
    "Presentation Scheduled": 60,
    "Decision Maker Bought-In": 80,
    "Contract Sent": 90,
}

_DEAL_REQUIRED = frozenset({"deal_id", "stage", "owner"})

BUILTIN: tuple[Preset, ...] = (
    Preset(
        name="maventech",
        table="deals",
        columns={
            "deal_id": ("opportunity_id",),
            "owner": ("sales_agent",),
            "product": ("product",),
            "account": ("account",),
            "stage": ("deal_stage",),
            "engage_date": ("engage_date",),
            "close_date": ("close_date",),
            "value": ("close_value",),
            "last_activity": ("last_activity",),
        },
        required=frozenset(
            {
                "deal_id",
                "owner",
                "product",
                "account",
                "stage",
                "engage_date",
                "close_date",
                "value",
            }
        ),
        stages=MAVENTECH_STAGES,
    ),
    Preset(
        name="salesforce",
        table="deals",
        columns={
            "deal_id": ("Opportunity ID", "Id"),
            "name": ("Opportunity Name", "Name"),
            "owner": ("Opportunity Owner", "OwnerId"),
            "product": ("Product Name", "Product"),
            "account": ("Account Name", "Account", "AccountId"),
            "stage": ("Stage", "StageName"),
            "engage_date": ("Created Date", "CreatedDate"),
            "close_date": ("Close Date", "CloseDate"),
            "value": ("Amount", "Total Price"),
            "last_activity": ("Last Activity", "LastActivityDate", "Last Activity Date"),
            "probability": ("Probability (%)", "Probability"),
            "forecast_category": ("Forecast Category", "ForecastCategoryName", "ForecastCategory"),
            "next_step": ("Next Step", "NextStep"),
            "stage_changed": ("Last Stage Change Date", "LastStageChangeDate"),
            "push_count": ("Push Count", "PushCount"),
            "deal_type": ("Type", "Opportunity Type"),
            "lead_source": ("Lead Source", "LeadSource"),
        },
        required=_DEAL_REQUIRED | {"close_date", "value"},
        stages=SALESFORCE_STAGES,
        date_order="mdy",
        probabilities=SALESFORCE_PROBABILITIES,
        probability_scale="percent",
        case_safe_ids=True,
    ),
    Preset(
        name="hubspot",
        table="deals",
        columns={
            "deal_id": ("Record ID", "Deal ID", "hs_object_id"),
            "name": ("Deal Name", "dealname"),
            "owner": ("Deal owner", "Deal Owner", "hubspot_owner_id"),
            "product": ("Associated Product", "Product Name", "Product"),
            "account": ("Associated Company", "Associated Company (Primary)", "Company name"),
            "stage": ("Deal Stage", "dealstage"),
            "engage_date": ("Create Date", "createdate"),
            "close_date": ("Close Date", "closedate"),
            "value": ("Amount", "Amount in company currency"),
            "last_activity": ("Last Activity Date", "notes_last_updated"),
            "probability": (
                "Deal probability",
                "Deal Stage Probability",
                "hs_deal_stage_probability",
            ),
            "forecast_category": ("Forecast category", "hs_manual_forecast_category"),
            "next_step": ("Next step", "hs_next_step"),
            "stage_changed": (
                "Date entered current stage",
                "Date of last stage change",
                "hs_v2_date_entered_current_stage",
            ),
            "deal_type": ("Deal Type", "dealtype"),
            "lead_source": (
                "Original Source Type",
                "Original Traffic Source",
                "hs_analytics_source",
            ),
        },
        required=_DEAL_REQUIRED | {"close_date", "value"},
        stages=HUBSPOT_STAGES,
        date_order="iso",
        probabilities=HUBSPOT_PROBABILITIES,
    ),
    Preset(
        name="maventech-accounts",
        table="accounts",
        columns={
            "account": ("account",),
            "sector": ("sector",),
            "year_established": ("year_established",),
            "revenue": ("revenue",),
            "employees": ("employees",),
            "office_location": ("office_location",),
            "subsidiary_of": ("subsidiary_of",),
        },
        required=frozenset({"account", "sector"}),
    ),
    Preset(
        name="maventech-products",
        table="products",
        columns={"product": ("product",), "series": ("series",), "sales_price": ("sales_price",)},
        required=frozenset({"product", "sales_price"}),
    ),
    Preset(
        name="maventech-teams",
        table="sales_teams",
        columns={
            "sales_agent": ("sales_agent",),
            "manager": ("manager",),
            "regional_office": ("regional_office",),
        },
        required=frozenset({"sales_agent", "manager", "regional_office"}),
    ),
    Preset(
        name="data-dictionary",
        table="dictionary",
        columns={"table": ("Table",), "field": ("Field",), "description": ("Description",)},
        required=frozenset({"table", "field", "description"}),
    ),
)


class PresetError(ValueError):
    """No preset fits the file's header; the message names what is missing."""


def detect(
    header: list[str], presets: tuple[Preset, ...] = BUILTIN, forced: str | None = None
) -> tuple[Preset, dict[str, int]]:
    """Choose the preset whose required columns are all in `header` (most columns matched wins).

    Raises PresetError naming the missing columns of the closest preset.
    """
    candidates = [p for p in presets if forced is None or p.name == forced]
    if not candidates:
        names = ", ".join(p.name for p in presets)
        raise PresetError(f"unknown preset {forced!r}; known presets: {names}")
    scored = []
    for preset in candidates:
        found, missing = preset.match(header)
        scored.append((not missing, len(found) - len(missing), preset, found, missing))
    scored.sort(key=lambda t: (t[0], t[1]), reverse=True)
    ok, _, preset, found, missing = scored[0]
    if not ok:
        raise PresetError(
            f"missing required column(s) {', '.join(missing)} for preset {preset.name!r} "
            f"(closest match; header was: {', '.join(header)})"
        )
    repeated = repeated_columns(header, found)
    if repeated:
        name, positions = next(iter(repeated.items()))
        where = ", ".join(map(str, positions[:-1])) + f" and {positions[-1]}"
        raise PresetError(
            f"column {name!r} appears {len(positions)} times in the header (columns {where}): "
            "which one holds the data cannot be told; rename or remove the others"
        )
    return preset, found


def repeated_columns(header: list[str], found: Mapping[str, int]) -> dict[str, list[int]]:
    """The columns a preset reads that the header names more than once (compared as `match`
    compares them), with their 1-based positions. Reading one of them silently would take
    whichever came last; a repeated column the preset does not read does no harm."""
    out: dict[str, list[int]] = {}
    for idx in sorted(found.values()):
        key = header[idx].strip().lower()
        positions = [i + 1 for i, h in enumerate(header) if h.strip().lower() == key]
        if len(positions) > 1:
            out.setdefault(header[positions[0] - 1].strip(), positions)
    return out


def apply_overrides(presets: tuple[Preset, ...], config: Mapping) -> tuple[Preset, ...]:
    """Apply `[presets.NAME]` tables from revbot.toml.

    `columns = {deal_id = ["Opp #"]}` puts those names first for that field; `stages = {"Demo" =
    "open"}` adds stages; `date_order = "dmy"`; `required = [...]` replaces the required fields.
    `probabilities = {"Demo" = 30}` sets stages' default probabilities (%), which also order the
    open stages. A NAME that is not built in defines a new preset and must give `table` and
    `columns`.
    """
    by_name = {p.name: p for p in presets}
    for name, spec in config.items():
        base = by_name.get(name)
        if base is None:
            if "table" not in spec or "columns" not in spec:
                raise PresetError(f"preset {name!r} in the config needs 'table' and 'columns'")
            base = Preset(name=name, table=spec["table"], columns={}, required=frozenset())
        columns = dict(base.columns)
        for canonical, names in spec.get("columns", {}).items():
            names = (names,) if isinstance(names, str) else tuple(names)
            columns[canonical] = names + tuple(
                n for n in columns.get(canonical, ()) if n not in names
            )
        stages = {**base.stages, **spec.get("stages", {})}
        bad = {k: v for k, v in stages.items() if v not in (OPEN, WON, LOST)}
        if bad:
            raise PresetError(f"preset {name!r}: stage status must be open, won or lost: {bad}")
        probabilities = {**base.probabilities, **spec.get("probabilities", {})}
        bad = {k: v for k, v in probabilities.items() if not _is_percent(v)}
        if bad:
            raise PresetError(f"preset {name!r}: probabilities must be 0-100 (%): {bad}")
        required = frozenset(spec.get("required", base.required or _DEAL_REQUIRED))
        by_name[name] = replace(
            base,
            columns=columns,
            stages=stages,
            required=required,
            date_order=spec.get("date_order", base.date_order),
            probabilities=probabilities,
        )
    return tuple(by_name.values())


def _is_percent(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 100
