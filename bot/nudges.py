"""Personal nudges, decided: which of a person's deals to tell them about today, and the
message. Pure: no Slack, no SQL (`bot.nudge_send` does both).

A nudge goes to a deal's owner when the roster knows them (a member whose CRM `name` is the
deal's owner) and the deal crossed the risk threshold since the last run a nudge pass saw (kept
until told: `bot.nudge_ledger.crossings`), or broke a hygiene rule (`scoring.hygiene`, saved
with the run). Alert fatigue is why such bots get muted, so: one message per deal (all its new reasons in it), at most a person's budget a day, the
most value at risk first, the rest rolled into one line; never the same deal and rule twice
(the ledger); never at night in the person's time zone; each with "Snooze", "Done" and
"Not useful", and "Not useful" is counted per rule (`revbot nudges`) so a team can tune or drop
a rule.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from bot.access import can_see
from bot.blocks import MAX_SECTION, _cut, mrkdwn, reason_text, short
from bot.crm_links import deal_id_mrkdwn
from bot.digest import top_reasons
from bot.inert import inert
from bot.listeners import ACTION_NUDGE_DONE, ACTION_NUDGE_NOT_USEFUL, ACTION_NUDGE_SNOOZE
from bot.nudge_ledger import RISK_RULE
from bot.settings import Member
from dataset.money import chance, money, plural
from scoring.crm import positions

ROLLED_SHOWN = 8  # deals named in the rolled-up line


def owners_map(roster: dict | None) -> dict[str, list[Member]]:
    """CRM owner name -> the roster's members with that CRM name (a rep and a manager may share
    one): who may hear about a deal is then settled by `can_see`."""
    out: dict[str, list[Member]] = {}
    for member in (roster or {}).values():
        if member.name:
            out.setdefault(member.name, []).append(member)
    for members in out.values():  # a rep first: the deal's owner is who should act on it
        members.sort(key=lambda m: {"rep": 0, "manager": 1}.get(m.role, 2))
    return out


def _points(x: float, other: float) -> str:
    """A risk as a sentence states it: whole points, or one decimal where whole points would
    make two different risks read the same ("rose to 60 from 60")."""
    return f"{x:.0f}" if round(x) != round(other) else f"{x:.1f}"


def crossed(scores: pd.DataFrame, previous: pd.DataFrame, owners: dict[str, list[Member]],
            risk: float) -> pd.DataFrame:  # fmt: skip
    """The roster's deals at or above the risk threshold that were not at the run compared with
    (`previous`: deal_id, risk): deal_id, from_risk (that run's risk; NaN where the deal was not
    in it)."""
    mine = _of_roster(scores, owners)
    at = positions(mine["deal_id"], previous["deal_id"])
    before = np.append(previous["risk"].to_numpy(dtype=float), np.nan)[at]  # -1: not in it
    hit = (mine["risk"].to_numpy(dtype=float) >= risk) & ~(before >= risk)
    return pd.DataFrame({"deal_id": mine["deal_id"].to_numpy(dtype=object)[hit],
                         "from_risk": before[hit]})  # fmt: skip


def _of_roster(scores: pd.DataFrame, owners: dict[str, list[Member]]) -> pd.DataFrame:
    """The deals whose owner is in the roster (each distinct owner looked up once: pandas'
    `isin` on a million Arrow strings goes through Python, 2.6 s)."""
    codes, names = pd.factorize(scores["owner"])
    known = np.flatnonzero(pd.Index(names).isin(list(owners)))
    return scores[np.isin(codes, known)]


def candidates(scores: pd.DataFrame, crossings: pd.DataFrame | None, flags: pd.DataFrame,
               owners: dict[str, list[Member]], risk: float) -> pd.DataFrame:  # fmt: skip
    """One row per (deal, rule) a person may be told about: user_id, deal_id, rule, detail,
    value_at_risk. The person is the roster member with the owner's CRM name who may see the
    deal (`bot.access.can_see`: a rep and another team's manager may share a name). Risk
    crossings (`crossings`: deal_id, from_risk, since; kept until told) are news while the deal
    is still at or above the threshold; none without a run to compare with."""
    mine = _of_roster(scores, owners)
    rows = []
    if crossings is not None and len(crossings):
        at = positions(crossings["deal_id"], mine["deal_id"])  # -1: not the roster's now
        still = crossings[at >= 0].assign(risk=mine["risk"].to_numpy(dtype=float)[at[at >= 0]])
        # "rose" stays true even where the threshold was lowered since the crossing was kept
        rose = still["from_risk"].isna() | (still["risk"] > still["from_risk"])
        for r in still[(still["risk"] >= risk) & rose].itertuples():
            detail = (f"risk rose to {_points(r.risk, r.from_risk)} (of 100), from "
                      f"{_points(r.from_risk, r.risk)} on {r.since}" if pd.notna(r.from_risk) else
                      f"new in the pipeline since {r.since}, at risk {r.risk:.0f} (of 100)")  # fmt: skip
            rows.append((r.deal_id, RISK_RULE, detail))
    # by Arrow: pandas looks each of a million Arrow ids up in Python (5 s)
    for r in flags[positions(flags["deal_id"], mine["deal_id"]) >= 0].itertuples():
        rows.append((r.deal_id, r.rule, r.detail))
    out = pd.DataFrame(rows, columns=["deal_id", "rule", "detail"])
    info = mine.set_index("deal_id")
    # who is told depends on the owner and the manager alone: ask once per pair, not per deal
    # (a million deals break rules by the hundred thousand; asking per deal took 18 s an hour)
    wanted = info.loc[out["deal_id"].unique()].reindex(columns=["owner", "manager"])
    pairs = wanted.drop_duplicates()
    pairs["user_id"] = [
        next((m.user_id for m in owners[owner] if can_see(m, {"owner": owner, "manager": boss})), None)
        for owner, boss in pairs.itertuples(index=False)
    ]  # fmt: skip
    users = wanted.reset_index().merge(pairs, on=["owner", "manager"], how="left")
    out["user_id"] = out["deal_id"].map(users.set_index("deal_id")["user_id"])
    out["value_at_risk"] = out["deal_id"].map(info["value_at_risk"]).fillna(0.0)
    return out[out["user_id"].notna()].reset_index(drop=True)


@dataclass(frozen=True)
class Plan:
    """What one person gets now: deals (each with its rules, most value at risk first) and the
    deals rolled into one line (over today's budget)."""

    user_id: str
    deals: list[pd.DataFrame]  # one frame of (deal_id, rule, detail) per deal nudge
    rolled: pd.DataFrame  # (deal_id, rule, detail) of the deals over the budget


def plan(found: pd.DataFrame, user_id: str, told: set[tuple[str, str]], snoozed: set[str],
         left_today: int) -> Plan | None:  # fmt: skip
    """A person's messages now, from their candidates: what was already told or is snoozed left
    out; at most `left_today` messages (their budget less what they got today), the deals with
    the most value at risk first. When more deals wait than that, the last message is one line
    naming the rest (with a budget of one, the rest wait for the next days). None when there is
    nothing to send."""
    mine = found[found["user_id"] == user_id]
    keys = list(zip(mine["deal_id"], mine["rule"], strict=True))
    fresh = pd.Series([k not in told for k in keys], index=mine.index, dtype=bool)
    mine = mine[fresh & ~mine["deal_id"].isin(list(snoozed))]
    if mine.empty or left_today <= 0:
        return None
    order = mine.groupby("deal_id")["value_at_risk"].max().sort_values(ascending=False, kind="stable")  # fmt: skip
    deals = [mine[mine["deal_id"] == d] for d in order.index]
    if len(deals) <= left_today:
        return Plan(user_id, deals, mine.iloc[0:0])
    if left_today == 1:
        return Plan(user_id, deals[:1], mine.iloc[0:0])
    return Plan(user_id, deals[: left_today - 1], pd.concat(deals[left_today - 1 :]))


def quiet_now(now: datetime, tz: str | None, quiet: tuple[str, str]) -> bool:
    """Is it night for the person (between quiet[0] and quiet[1], their time)? An unknown zone
    counts as UTC."""
    local = now.astimezone(_zone(tz))
    start, end = (time.fromisoformat(q) for q in quiet)
    t = local.time()
    return (start <= t or t < end) if start > end else (start <= t < end)


def local_day(now: datetime, tz: str | None) -> str:
    return now.astimezone(_zone(tz)).date().isoformat()


def snooze_until(today: str, days: int) -> str:
    return (datetime.fromisoformat(today) + timedelta(days=days)).date().isoformat()


def _zone(tz: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(tz) if tz else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _name(deal: dict) -> str:
    account = deal.get("account")
    return short(account) if isinstance(account, str) and account else short(deal["deal_id"])


def nudge_message(nudge_id: int, deal: dict, rules: pd.DataFrame, currency: str | None = None,
                  snooze_days: int = 7) -> dict:  # fmt: skip
    """The direct message about one deal: what is new about it (each rule in words), its
    value, win probability and risk, the main reason, and the three buttons."""
    lines = "\n".join(f"• {inert(d)}" for d in rules["detail"])
    head = (f"*{_name(deal)}* · {short(deal.get('product') or 'no product')} · "
            f"{deal_id_mrkdwn(deal['deal_id'])}")  # fmt: skip
    facts = (f"value {money(deal.get('value'), currency)} · win {chance(deal['win_prob'])} · "
             f"risk {deal['risk']:.0f}/100")  # fmt: skip
    reasons = top_reasons(deal.get("drivers"), limit=1)
    why = f"\n_why:_ {inert(reason_text(reasons[0], currency))}" if reasons else ""
    text = _cut(f"{head}\n{facts}\n{lines}{why}", MAX_SECTION)
    value = str(nudge_id)
    button = lambda action, label, **kw: {  # noqa: E731
        "type": "button", "action_id": action, "value": value,
        "text": {"type": "plain_text", "text": label}, **kw,
    }  # fmt: skip
    fallback = f"One of your deals needs attention: {_name(deal)} ({plural(len(rules), 'reason')})"
    return {
        "text": _cut(fallback, 300),
        "blocks": [
            {"type": "section", "text": mrkdwn(text)},
            {"type": "actions", "block_id": f"nudge:{nudge_id}", "elements": [
                button(ACTION_NUDGE_SNOOZE, f"Snooze {plural(snooze_days, 'day')}"),
                button(ACTION_NUDGE_DONE, "Done", style="primary"),
                button(ACTION_NUDGE_NOT_USEFUL, "Not useful"),
            ]},
            {"type": "context", "elements": [mrkdwn(
                "From revbot: a few a day at most, none at night your time. Change how many, "
                "or stop them, in revbot's Home tab.")]},
        ],
    }  # fmt: skip


def rolled_message(rows: pd.DataFrame, scores: pd.DataFrame) -> dict:
    """The one line for the deals over a person's budget today."""
    info = scores.set_index("deal_id")
    deals = list(dict.fromkeys(rows["deal_id"]))
    named = []
    for d in deals[:ROLLED_SHOWN]:
        what = ", ".join(inert(x) for x in rows.loc[rows["deal_id"] == d, "rule"].map(_rule_words))
        account = info["account"].get(d) if d in info.index else None
        named.append(f"{_name({'deal_id': d, 'account': account})} ({what})")
    more = f", and {len(deals) - ROLLED_SHOWN} more" if len(deals) > ROLLED_SHOWN else ""
    text = _cut(f"{plural(len(deals), 'more deal')} of yours also need attention: "
                f"{'; '.join(named)}{more}. Your Home tab lists them all.", MAX_SECTION)  # fmt: skip
    return {"text": _cut(text, 300), "blocks": [{"type": "section", "text": mrkdwn(text)}]}


def _rule_words(rule: str) -> str:
    return {RISK_RULE: "risk up", "close_date_passed": "close date passed",
            "no_next_step": "no next step", "no_activity": "no activity",
            "stage_too_long": "long in its stage", "amount_missing": "no amount",
            "close_date_pushed": "close date pushed"}.get(rule, rule)  # fmt: skip


def handled_message(message: dict, note: str) -> dict:
    """The nudge with its buttons replaced by what the person chose."""
    blocks = [b for b in message.get("blocks", []) if isinstance(b, dict)]
    out = [{"type": "context", "elements": [mrkdwn(_cut(note, MAX_SECTION))]}
           if b.get("type") == "actions" else b for b in blocks]  # fmt: skip
    return {"text": message.get("text") or "revbot nudge", "blocks": out}


def not_useful_rates(history: pd.DataFrame) -> pd.DataFrame:
    """Per rule: nudges sent, answered, and "not useful" (count and share of those sent)."""
    if history.empty:
        return pd.DataFrame(columns=["rule", "sent", "done", "snoozed", "not_useful", "rate"])
    g = history.groupby("rule")
    out = pd.DataFrame({
        "sent": g.size(),
        "done": g["feedback"].apply(lambda f: int((f == "done").sum())),
        "snoozed": g["feedback"].apply(lambda f: int((f == "snooze").sum())),
        "not_useful": g["feedback"].apply(lambda f: int((f == "not_useful").sum())),
    })  # fmt: skip
    out["rate"] = out["not_useful"] / out["sent"]
    return out.reset_index().sort_values(["rate", "sent"], ascending=[False, False])


def rules_of(nudge: dict) -> list[str]:
    """The rules a saved nudge named."""
    try:
        rules = json.loads(nudge.get("rules") or "[]")
    except ValueError:
        return []
    return [r for r in rules if isinstance(r, str)]
