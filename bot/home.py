"""The App Home dashboard: pure functions from a saved run and a member to a Home tab view.

Everyone who opens revbot's Home tab sees their own dashboard: a rep their open deals, a manager
their team's, a leader everything (`bot.access`), sorted by value at risk as the digest ranks
them (so a deal's number is the same in both), with the quarter's forecast and the chance of its
target at the top, filters and pages. The view's state (filters, page) travels in the view's
`private_metadata`: nothing is stored, and whatever Slack sends back is read defensively, since
a view published by an older version (or edited in transit) can carry anything.

Block Kit: a Home tab takes 100 blocks; a page of PAGE deals, one block each, stays far below,
and `check_view` checks every view the tests build.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace

import pandas as pd

from bot.blocks import MAX_BUTTON_ID, MAX_SECTION, _cut, _texts, deal_line, mrkdwn
from bot.digest import AT_RISK, first_of_sets, in_scope
from bot.inert import inert
from bot.listeners import (
    ACTION_DETAILS,
    ACTION_HOME_MANAGER,
    ACTION_HOME_PAGE,
    ACTION_HOME_REGION,
    ACTION_HOME_RISK,
    ACTION_HOME_STAGE,
    ACTION_NUDGE_BUDGET,
)
from bot.mentions import Mentions
from bot.settings import Scope
from bot.target_text import odds_text, sources_text
from dataset.money import money

PAGE = 20  # deals a page: 20 blocks of the 100 a Home tab takes
RISK_LEVELS = (0, 40, AT_RISK, 80)  # the "risk above" filter's choices
BUDGETS = (0, 1, 3, 5, 10)  # nudges a day a person may choose (0: none)
MAX_VIEW_BLOCKS = 100  # Home tabs and modals
MAX_OPTIONS = 100  # a static select's options
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_METADATA = 3000  # private_metadata
ANY = "*"  # the option value meaning "no filter"


@dataclass(frozen=True)
class HomeState:
    """What a user chose on their dashboard: filters (option values, see `option_value`) and
    the page, counted from 0."""

    region: str | None = None
    manager: str | None = None
    stage: str | None = None
    min_risk: int = 0
    page: int = 0

    def to_metadata(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v}, separators=(",", ":"))

    def choose(self, kind: str, value: str | None) -> HomeState:
        """The state after picking `value` for a filter (`ANY` clears it): back to page 1."""
        if kind == "risk":
            level = int(value) if value in {str(r) for r in RISK_LEVELS} else 0
            return replace(self, min_risk=level, page=0)
        chosen = None if value in (None, ANY) else value
        return replace(self, **{kind: chosen}, page=0)


def read_state(metadata: object) -> HomeState:
    """The state a view carried back, or the default for anything unreadable."""
    try:
        raw = json.loads(metadata) if isinstance(metadata, str) and metadata else {}
    except ValueError:
        return HomeState()
    if not isinstance(raw, dict):
        return HomeState()

    def text(key: str) -> str | None:
        v = raw.get(key)
        return v if isinstance(v, str) and 0 < len(v) <= MAX_OPTION_VALUE else None

    def whole(key: str, allowed) -> int:
        v = raw.get(key)
        return v if isinstance(v, int) and not isinstance(v, bool) and v in allowed else 0

    page = raw.get("page")
    page = page if isinstance(page, int) and not isinstance(page, bool) and 0 <= page < 10**6 else 0
    return HomeState(text("region"), text("manager"), text("stage"),
                     whole("min_risk", RISK_LEVELS), page)  # fmt: skip


def option_value(name: str) -> str:
    """A CRM name as a select option's value (150 characters at most): the name itself when it
    fits, else a digest of it, matched back by `resolve`."""
    if len(name) <= MAX_OPTION_VALUE and name != ANY:
        return name
    return "#" + hashlib.sha256(name.encode()).hexdigest()[:32]


def resolve(value: str | None, names) -> str | None:
    """The name an option value stands for among `names` (None: unknown, e.g. gone since)."""
    if value is None:
        return None
    return next((n for n in names if option_value(n) == value), None)


def _names(frame: pd.DataFrame, column: str) -> list[str]:
    """A column's distinct names, blank ones left out, sorted. Distinct first: a million deals
    name a few regions, and looking at each deal's took a leader's Home tab 6 s."""
    values = frame[column].dropna().unique()
    return sorted({v for v in values if isinstance(v, str) and v.strip()})


def fit(text: str, limit: int) -> str:
    """CRM text made inert (`bot.inert`: as the digest's header does, plain text too) within
    `limit` characters: cut before it is escaped, so no entity is cut in half."""
    for n in range(limit, 0, -1):
        out = inert(_cut(text, n))
        if len(out) <= limit:
            return out
    return "…"


def _select(action_id: str, everything: str, names: list[str], chosen: str | None) -> dict:
    """A static select of `names` (the first 99) after the "everything" option."""

    def option(label: str, value: str) -> dict:
        text = fit(label, MAX_OPTION_TEXT)
        return {"text": {"type": "plain_text", "text": text}, "value": value}

    options = [option(everything, ANY)] + [
        option(n, option_value(n)) for n in names[: MAX_OPTIONS - 1]
    ]
    select = {"type": "static_select", "action_id": action_id, "options": options,
              "placeholder": {"type": "plain_text", "text": everything}}  # fmt: skip
    picked = next((o for o in options if o["value"] == (chosen or ANY)), None)
    if picked is not None:
        select["initial_option"] = picked
    return select


def _risk_select(level: int) -> dict:
    options = [
        {"text": {"type": "plain_text", "text": "Any risk" if r == 0 else f"Risk {r}+"},
         "value": str(r)}
        for r in RISK_LEVELS
    ]  # fmt: skip
    picked = next(o for o in options if o["value"] == str(level))
    return {"type": "static_select", "action_id": ACTION_HOME_RISK, "options": options,
            "initial_option": picked,
            "placeholder": {"type": "plain_text", "text": "Any risk"}}  # fmt: skip


@dataclass(frozen=True)
class Forecast:
    """The quarter at the top of the dashboard: its name, P10/P50/P90 and the target's odds
    (None without a target), for the member's scope; None when the run has none for it."""

    quarter: str
    p10: float
    p50: float
    p90: float
    odds: object | None = None
    # the quarter's row, open deals and new deals a week, for `target_text.sources_text`: what
    # is still to come from open and from new deals, as /forecast says it
    still_to_come: tuple | None = None


def filtered(scores: pd.DataFrame, scope: Scope, state: HomeState) -> tuple[pd.DataFrame, HomeState]:  # fmt: skip
    """The member's deals the filters keep, by rank, and the state with filters that name
    nothing in the data any more cleared (a region renamed since the view was published)."""
    mine = in_scope(scores, scope)
    keep = pd.Series(True, index=mine.index)
    found = {}
    for kind, column in (("region", "region"), ("manager", "manager"), ("stage", "stage")):
        name = resolve(getattr(state, kind), _names(mine, column))
        found[kind] = None if name is None else getattr(state, kind)
        if name is not None:
            keep &= mine[column] == name
    if state.min_risk:
        keep &= mine["risk"] >= state.min_risk
    state = replace(state, **found)
    return mine[keep].sort_values("rank", kind="stable"), state


def collapse_twins(deals: pd.DataFrame, twins: pd.Series | None) -> tuple[pd.DataFrame, pd.Series]:  # fmt: skip
    """The first of each set of identical deals among `deals` (`twins`: the run's set number
    per row, see `SavedRun.twins`), order kept, and the others' ids by set number (sets with
    more than one deal here only), for `same_as`."""
    if twins is None or deals.empty:
        return deals, pd.Series(dtype=object)
    first, others = first_of_sets(twins.reindex(deals.index).to_numpy(), deals["deal_id"])
    return (deals if first.all() else deals[first]), others  # no copy of a million rows


def on_a_page(deals: pd.DataFrame, state: HomeState) -> HomeState:
    """The state with its page within the deals' pages (a view saved on a longer list, before a
    filter shrank it or its twins were collapsed, can name a page past the end)."""
    return replace(state, page=min(state.page, max(0, (len(deals) - 1) // PAGE)))


def home_view(run_id: int, as_of: str, scores: pd.DataFrame, scope: Scope,
              state: HomeState, forecast: Forecast | None = None, confidence: str = "",
              currency: str | None = None, nudges_per_day: int | None = None,
              mentions: Mentions | None = None, twins: pd.Series | None = None) -> dict:  # fmt: skip
    """The Home tab of one member on one run: the forecast, a glance, filters, a page of deals
    (each with its reason and a Details button) and the pager. `scores`: the run's rows with
    their reasons (the caller makes sure the page's deals have theirs); `mentions`: the
    roster's (`bot.mentions`), to show owners as members, as the digest does; `twins`: the
    run's sets of identical deals (`SavedRun.twins`), each listed once with the others' ids."""
    cash = lambda x: money(x, currency)  # noqa: E731
    mine = in_scope(scores, scope)
    deals, state = filtered(scores, scope, state)
    deals, others = collapse_twins(deals, twins)
    pages = max(1, -(-len(deals) // PAGE))
    state = on_a_page(deals, state)
    value = mine["value"].fillna(0)
    at_risk = int((mine["risk"] >= AT_RISK).sum())
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text",
                                    "text": fit(f"Your pipeline: {scope.label}", 150)}},
        {"type": "section", "fields": [
            mrkdwn(f"*Open deals*\n{len(mine):,}"),
            mrkdwn(f"*Pipeline value*\n{cash(value.sum())}"),
            mrkdwn(f"*At risk ({AT_RISK}+)*\n{at_risk:,}"),
            mrkdwn(f"*Value at risk*\n{cash(mine['value_at_risk'].fillna(0).sum())}"),
        ]},
    ]  # fmt: skip
    if forecast is not None:
        text = (f"*{forecast.quarter} forecast*: P50 *{cash(forecast.p50)}* "
                f"(P10 {cash(forecast.p10)} - P90 {cash(forecast.p90)})")  # fmt: skip
        if forecast.odds is not None:
            text += "\n" + odds_text(forecast.odds, forecast.quarter, currency)
        if forecast.still_to_come is not None:
            still = sources_text(*forecast.still_to_come, forecast.quarter, as_of, currency)
            text += "\n" + still if still else ""
        blocks.append({"type": "section", "text": mrkdwn(_cut(text, MAX_SECTION))})
    else:
        blocks.append(
            {"type": "section", "text": mrkdwn("_No forecast saved for this scope yet._")}
        )
    blocks.append({"type": "context", "elements": [mrkdwn(_cut(
        f"as of {as_of} · updated after each morning run · {inert(confidence)}", MAX_SECTION))]})  # fmt: skip
    selects = []
    if scope.kind == "all":
        selects.append(
            _select(ACTION_HOME_REGION, "All regions", _names(mine, "region"), state.region)
        )
        selects.append(
            _select(ACTION_HOME_MANAGER, "All teams", _names(mine, "manager"), state.manager)
        )
    selects.append(_select(ACTION_HOME_STAGE, "All stages", _names(mine, "stage"), state.stage))
    selects.append(_risk_select(state.min_risk))
    blocks += [{"type": "actions", "block_id": "home_filters", "elements": selects},
               {"type": "divider"}]  # fmt: skip
    first = state.page * PAGE
    page = deals.iloc[first : first + PAGE]
    for i, row in page.iterrows():
        if len(others):
            row = row.copy()
            row["same_as"] = others.get(twins[i], ())
        line = deal_line(row, row["risk"], currency, mentions)
        section = {"type": "section", "text": mrkdwn(line)}
        deal_id = str(row["deal_id"])
        if len(deal_id) <= MAX_BUTTON_ID:  # longer ids would not fit a button value
            section["accessory"] = {
                "type": "button", "action_id": ACTION_DETAILS, "value": f"{run_id}:{deal_id}",
                "text": {"type": "plain_text", "text": "Details"},
            }  # fmt: skip
        blocks.append(section)
    if deals.empty:
        empty = ("No open deal matches these filters." if len(mine) else
                 f"No open deal in {inert(scope.label)} in the latest run.")  # fmt: skip
        blocks.append({"type": "section", "text": mrkdwn(empty)})
    else:
        shown = f"Deals {first + 1:,}-{first + len(page):,} of {len(deals):,}, by value at risk"
        blocks.append({"type": "context", "elements": [mrkdwn(shown)]})
    pager = []
    if state.page > 0:
        pager.append(_page_button("◀ Previous", state.page - 1))
    if state.page < pages - 1:
        pager.append(_page_button("Next ▶", state.page + 1))
    if pager:
        blocks.append({"type": "actions", "block_id": "home_pages", "elements": pager})
    if nudges_per_day is not None:
        blocks += [{"type": "divider"}, _nudge_choice(nudges_per_day)]
    blocks.append({"type": "context", "elements": [mrkdwn(
        "`/deal &lt;id or account&gt;` for any deal · `/forecast` for the fan chart")]})  # fmt: skip
    return {"type": "home", "blocks": blocks, "private_metadata": state.to_metadata()}


def _nudge_choice(per_day: int) -> dict:
    """The person's own budget of nudges (direct messages about their deals), 0 to stop them."""

    def label(n: int) -> str:
        return "No nudges" if n == 0 else f"At most {n} a day"

    options = [{"text": {"type": "plain_text", "text": label(n)}, "value": str(n)}
               for n in sorted(set(BUDGETS) | {per_day})]  # fmt: skip
    picked = next(o for o in options if o["value"] == str(per_day))
    text = ("*Nudges*: a direct message when one of your deals newly crosses the risk threshold "
            "or breaks a hygiene rule, the most value at risk first, never at night your time.")  # fmt: skip
    return {"type": "section", "block_id": "home_nudges", "text": mrkdwn(text),
            "accessory": {"type": "static_select", "action_id": ACTION_NUDGE_BUDGET,
                          "options": options, "initial_option": picked}}  # fmt: skip


def _page_button(label: str, page: int) -> dict:
    return {"type": "button", "action_id": ACTION_HOME_PAGE, "value": str(page),
            "text": {"type": "plain_text", "text": label}}  # fmt: skip


def notice_view(text: str) -> dict:
    """A Home tab that only says something: not in the roster, nothing scored yet."""
    return {"type": "home", "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "revbot"}},
        {"type": "section", "text": mrkdwn(_cut(text, MAX_SECTION))},
    ]}  # fmt: skip


def check_view(view: dict) -> list[str]:
    """Problems with a Home tab or modal against Block Kit's limits (empty when fine)."""
    problems = []
    blocks = view.get("blocks", [])
    if len(blocks) > MAX_VIEW_BLOCKS:
        problems.append(f"{len(blocks)} blocks > {MAX_VIEW_BLOCKS}")
    if len(view.get("private_metadata", "")) > MAX_METADATA:
        problems.append("private_metadata over 3000 characters")
    for i, b in enumerate(blocks):
        if b["type"] == "section" and len(b.get("text", {}).get("text", "")) > MAX_SECTION:
            problems.append(f"block {i}: section over {MAX_SECTION}")
        if b["type"] == "header" and len(b["text"]["text"]) > 150:
            problems.append(f"block {i}: header over 150")
        for e in b.get("elements", []) if b["type"] == "actions" else []:
            options = e.get("options", [])
            if len(options) > MAX_OPTIONS:
                problems.append(f"block {i}: {len(options)} options > {MAX_OPTIONS}")
            for o in options:
                if len(o["text"]["text"]) > MAX_OPTION_TEXT or len(o["value"]) > MAX_OPTION_VALUE:
                    problems.append(f"block {i}: an option over its limits")
    if view.get("type") == "modal" and len(view["title"]["text"]) > 24:
        problems.append("modal title over 24 characters")
    if sum(len(t) for t in _texts(blocks)) > 100_000:
        problems.append("view text over 100,000 characters")
    return problems
