"""Score every open deal on a day: win probability, risk, value at risk, and reasons for the top.

Pure. Probability and risk are computed for all open deals; reasons and actions for the
`explain_top` deals with the most value at risk (SHAP contributions cost far more than scores:
see modeling-notes) and for any other deal the refresh names (`explain_more`), all saved with the
run: a reader never computes a reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dataset.money import chance
from scoring.crm import Crm
from scoring.explain import points_for
from scoring.features import features_at
from scoring.model import WinModel
from scoring.reasons import Reason, explain_frame
from scoring.risk import score_frame

CONFIDENCE_TEXT = {
    "low": "model confidence: low (on past weeks its scores did little better than the average "
    "open deal's win chance of {base})",
    "medium": "model confidence: medium (on past weeks it beat the average open deal's win "
    "chance of {base} modestly)",
    "high": "model confidence: high (on past weeks it clearly beat the average open deal's win "
    "chance of {base})",
}
CONTEXT = ("owner", "manager", "region", "product", "account", "stage", "expected_close",
           "value_known", "forecast_category")  # fmt: skip


def confidence_text(model: WinModel) -> str:
    return CONFIDENCE_TEXT[model.confidence].format(base=chance(model.base_rate))


@dataclass
class ScoreRun:
    as_of: pd.Timestamp
    scores: pd.DataFrame  # index deal_id
    features: pd.DataFrame
    confidence: str


def reasons_json(reasons: list[Reason]) -> str:
    return json.dumps([r.as_dict() for r in reasons])


def explain_deals(
    model: WinModel, features: pd.DataFrame, scores: pd.DataFrame, refs: dict
) -> tuple[list[list[Reason]], list[list[str]]]:
    """Reasons and actions of some deals: their feature rows and their score rows (same index)."""
    if features.empty:
        return [], []
    extra = [c for c in scores.columns if c not in features.columns]
    frame = features.join(scores[extra])
    return explain_frame(frame, points_for(model, features), refs)


def score(
    crm: Crm,
    model: WinModel,
    refs: dict,
    as_of: pd.Timestamp | None = None,
    explain_top: int = 1000,
) -> ScoreRun:
    as_of = pd.Timestamp(as_of) if as_of is not None else crm.data_end
    f = features_at(crm, as_of)
    return ranked(f, score_frame(f, predict(model, f)), model, refs, as_of, explain_top)


def predict(model: WinModel, f: pd.DataFrame) -> np.ndarray:
    """Win probabilities of feature rows (none for no rows)."""
    return model.predict(f) if len(f) else np.array([])


def ranked(
    f: pd.DataFrame,
    s: pd.DataFrame,
    model: WinModel,
    refs: dict,
    as_of: pd.Timestamp,
    explain_top: int,
) -> ScoreRun:
    """The run from the open deals' features and scores (`risk.score_frame`, same index and
    order): context columns, ranked by value at risk, reasons for the `explain_top` first. Why
    apart: scores computed elsewhere (on a Dask cluster, `scoring.distributed`) are ranked and
    explained here, by the same code."""
    for c in CONTEXT:
        s[c] = f[c]
    s = s.sort_values("value_at_risk", ascending=False, kind="stable")
    s["rank"] = np.arange(1, len(s) + 1)
    top = s.index[:explain_top]
    reasons, actions = explain_deals(model, f.loc[top], s.loc[top], refs)
    s["drivers"] = None
    s["actions"] = None
    s.loc[top, "drivers"] = [reasons_json(r) for r in reasons]
    s.loc[top, "actions"] = [json.dumps(a) for a in actions]
    return ScoreRun(as_of=as_of, scores=s, features=f, confidence=model.confidence)


def explain_more(run: ScoreRun, model: WinModel, refs: dict, deal_ids) -> int:
    """Give reasons to more deals of a run (those a team's digest lists below the explained
    top); returns how many were added."""
    wanted = pd.Index(pd.unique(pd.Index(deal_ids)))
    wanted = wanted[wanted.isin(run.scores.index)]
    missing = wanted[run.scores.loc[wanted, "drivers"].isna().to_numpy()]
    if len(missing) == 0:
        return 0
    reasons, actions = explain_deals(
        model, run.features.loc[missing], run.scores.loc[missing], refs
    )
    run.scores.loc[missing, "drivers"] = [reasons_json(r) for r in reasons]
    run.scores.loc[missing, "actions"] = [json.dumps(a) for a in actions]
    return len(missing)
