"""What a channel's digest says, decided from score runs: pure, no Slack and no SQL.

A channel sees its scope's deals, at or above its minimum risk, minus those a manager snoozed or
acknowledged there (alert fatigue is why such bots get muted), ranked by value at risk. "What's
new" compares with the run of the channel's last digest: deals newly at risk, risk jumps, close
dates pushed, deals lost (and won) since.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bot.settings import Scope
from scoring.crm import positions

AT_RISK = 60  # risk from which a deal counts as "at risk" in the news (or the channel's minimum)
JUMP = 10  # risk points that make a "risk jumped" item
ACK_REOPEN = 10  # an acknowledged deal comes back once its risk rises this much above the ack

SCOPE_COLUMN = {"region": "region", "manager": "manager", "rep": "owner"}
# what a digest reads of the run it compares with (`news`, `build`)
COMPARED = ("deal_id", "risk", "expected_close", "owner", "manager", "region")


def top_reasons(drivers: str | None, limit: int = 2) -> list[dict]:
    """The saved reasons that add the most risk: the first, and the next ones that add at least
    a point (so a line names its main contributors, with its own numbers, not only the one
    that many deals share, such as their size)."""
    if not isinstance(drivers, str) or not drivers:
        return []

    def risk(d: dict) -> float:
        return d.get("risk", -d["points"])

    adding = sorted((d for d in json.loads(drivers) if risk(d) > 0), key=lambda d: -risk(d))
    return adding[:1] + [d for d in adding[1:limit] if risk(d) >= 1]


# Deals that agree on all of these are shown once, with the others' ids: the same deal entered
# twice (MavenTech has 461 open rows that differ only by id), or a manager would read the same
# line over and over.
SAME_DEAL = ("owner", "product", "account", "stage", "value", "expected_close", "win_prob", "risk",
             "drivers")  # fmt: skip


def twin_sets(frame: pd.DataFrame) -> np.ndarray:
    """Each row's set of identical deals (alike in every `SAME_DEAL` column), as a number per
    row; grouped by value, not row by row (a million rows in a second, where joining each row's
    values as text took a minute)."""
    cols = [c for c in SAME_DEAL if c in frame]
    if frame.empty or not cols:
        return np.arange(len(frame))
    return frame.groupby(cols, sort=False, dropna=False).ngroup().to_numpy()


def first_of_sets(sets: np.ndarray, ids: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Which rows come first in their set (`sets`: each row's set number, in row order), and
    the ids of the others by set number (sets of more than one row only). Only those others'
    ids are taken out of `ids` (a million Arrow strings made Python objects: a tenth of a s)."""
    later = pd.Series(sets).duplicated().to_numpy()
    others = pd.Series(ids[later].to_numpy()).groupby(sets[later], sort=False).agg(tuple)
    return ~later, others


def collapse_duplicates(frame: pd.DataFrame, top: int | None = None) -> pd.DataFrame:
    """The rows with the first of each group of identical deals kept (order kept), and its
    `same_as`: the ids of the others (an empty tuple for a deal with no twin). `top`: only the
    first `top` of the kept rows (their twins are still looked for among all the rows)."""
    if frame.empty:
        return frame.assign(same_as=[])
    sets = twin_sets(frame)
    first, others = first_of_sets(sets, frame["deal_id"])
    kept = frame if first.all() else frame[first]  # no copy when there are no twins
    kept = kept if top is None else kept.head(top)
    return kept.assign(same_as=[others.get(s, ()) for s in sets[first][: len(kept)]])


def in_scope(frame: pd.DataFrame, scope: Scope) -> pd.DataFrame:
    """The rows of a scores frame (owner, manager and region columns) that a scope covers."""
    if scope.kind == "all":
        return frame
    return frame[frame[SCOPE_COLUMN[scope.kind]] == scope.name]


LOOK_AHEAD = 50  # deals past a digest's top that may take a listed place (snoozed, twins)


def candidates(scores: pd.DataFrame, scope: Scope, min_risk: float, top: int) -> pd.DataFrame:
    """The rows (by rank) a digest of `top` deals may list: in scope, at or above the minimum
    risk, with room for those snoozed, acknowledged or collapsed as twins. The refresh gives
    them all their reasons."""
    mine = in_scope(scores, scope)
    return mine[mine["risk"] >= min_risk].head(top + LOOK_AHEAD)


@dataclass(frozen=True)
class Glance:
    deals: int
    pipeline_value: float
    expected_value: float
    quarter: str | None = None  # the quarter under way, with its forecast (won so far included)
    p10: float | None = None
    p50: float | None = None
    p90: float | None = None


@dataclass
class News:
    newly_at_risk: pd.DataFrame  # scores rows
    jumped: pd.DataFrame  # scores rows with previous_risk
    pushed: pd.DataFrame  # scores rows with previous_close
    lost: pd.DataFrame  # deal_id, account, value, close_date
    won: pd.DataFrame
    # deleted or merged in the CRM (status deleted | merged, merged_into): no longer scored
    removed: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["deal_id"]))

    def __len__(self) -> int:
        return sum(len(f) for f in (self.newly_at_risk, self.jumped, self.pushed, self.lost, self.won, self.removed))  # fmt: skip


def nothing_new() -> News:
    """The news of a digest on the same data as the last one."""
    empty = pd.DataFrame(columns=["deal_id"])
    return News(empty, empty, empty, empty, empty)


@dataclass
class Digest:
    scope: Scope
    as_of: str
    run_id: int
    confidence: str
    glance: Glance
    deals: pd.DataFrame  # the deals listed, with previous_risk (NaN when not in the last digest)
    news: News | None  # None on a channel's first digest
    at_risk: int  # deals at or above the minimum risk in scope
    hidden: int  # of those, snoozed or acknowledged here
    min_risk: float = 0
    notes: list[str] = field(default_factory=list)
    odds: object | None = None  # forecasting.targets.Odds of the quarter's target, if one is set
    movement: str | None = None  # the Monday digest: what moved in the quarter since last week
    track: str | None = None  # the forecast's track record, once a forecast quarter has closed


def handled(scores: pd.DataFrame, marks: pd.DataFrame, as_of: str) -> pd.Index:
    """Deal ids kept out of the digest: snoozed until after `as_of`, or acknowledged and not
    risen by ACK_REOPEN points since."""
    if marks.empty:
        return pd.Index([])
    m = marks.set_index("deal_id")
    risk = scores.set_index("deal_id")["risk"].reindex(m.index)
    snoozed = (m["kind"] == "snooze") & (m["until"].fillna("") > as_of)
    acked = (m["kind"] == "ack") & (risk < m["risk"] + ACK_REOPEN)
    return m.index[snoozed | acked]


def news(scores: pd.DataFrame, previous: pd.DataFrame, closed: pd.DataFrame, level: float) -> News:
    """Changes since the previous run, within the same scope. `previous`: that run's scores;
    `closed`: the latest state of deals no longer open."""
    # each deal's row in the previous run by position (mapping a million ids through a pandas
    # index went through Python: 1.7 s of a company's digest)
    at = positions(scores["deal_id"], previous["deal_id"])
    now = scores.assign(
        previous_risk=pd.Series(previous["risk"].array, dtype=float).array.take(
            at, allow_fill=True
        ),
        previous_close=previous["expected_close"].array.take(at, allow_fill=True),
    )
    was_below = now["previous_risk"].isna() | (now["previous_risk"] < level)
    newly = now[(now["risk"] >= level) & was_below]
    jumped = now[(now["risk"] - now["previous_risk"] >= JUMP) & ~now.index.isin(newly.index)]
    pushed = now[
        now["previous_close"].notna()
        & now["expected_close"].notna()
        & (pd.to_datetime(now["expected_close"]) > pd.to_datetime(now["previous_close"]))
    ]
    gone = closed[_among(closed["deal_id"], previous["deal_id"])
                  & ~_among(closed["deal_id"], scores["deal_id"])]  # fmt: skip
    return News(
        newly_at_risk=newly,
        jumped=jumped,
        pushed=pushed,
        lost=gone[gone["status"] == "lost"],
        won=gone[gone["status"] == "won"],
        removed=gone[gone["status"].isin(["deleted", "merged"])],
    )


def _among(few: pd.Series, many: pd.Series) -> np.ndarray:
    """Which of `few` (unique ids) are among `many`: the few hashed, the many looked up (the
    other way round hashed a million ids per call)."""
    at = positions(many, few)
    found = np.zeros(len(few), dtype=bool)
    found[at[at >= 0]] = True
    return found


def left_since(previous: pd.Series, now: pd.Series) -> list:
    """The ids of `previous` not in `now`: the only deals that can have closed since."""
    return previous[positions(previous, now) < 0].tolist()


def build(
    *,
    run: dict,
    scores: pd.DataFrame,
    scope: Scope,
    top: int,
    min_risk: float,
    marks: pd.DataFrame,
    previous: pd.DataFrame | None,
    closed: pd.DataFrame,
    quarter: tuple[str, float, float, float] | None = None,
) -> Digest:
    """The digest of one channel. `scores`: the run's rows (by rank); `previous`: the rows of the
    run behind the channel's last digest (None if there was none); `quarter`: (name, P10, P50,
    P90) of the scope's forecast for the quarter under way."""
    mine = in_scope(scores, scope)
    value = mine["value"].fillna(0)
    glance = Glance(
        deals=len(mine),
        pipeline_value=float(value.sum()),
        expected_value=float((value * mine["win_prob"]).sum()),
        **(dict(zip(("quarter", "p10", "p50", "p90"), quarter, strict=True)) if quarter else {}),
    )
    at_risk = mine[mine["risk"] >= min_risk]
    hide = handled(at_risk, marks, run["as_of"])
    listed = collapse_duplicates(at_risk[~at_risk["deal_id"].isin(hide)], top)
    recent = None
    if previous is not None:
        recent = news(mine, in_scope(previous, scope), closed, max(min_risk, AT_RISK))
        listed = listed.assign(previous_risk=listed["deal_id"].map(previous.set_index("deal_id")["risk"]))  # fmt: skip
    else:
        listed = listed.assign(previous_risk=float("nan"))
    return Digest(
        scope=scope,
        as_of=run["as_of"],
        run_id=int(run["run_id"]),
        confidence=run["confidence"] or "",
        glance=glance,
        deals=listed,
        news=recent,
        at_risk=len(at_risk),
        hidden=int(at_risk["deal_id"].isin(hide).sum()),
        min_risk=min_risk,
    )
