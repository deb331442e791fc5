"""Score every open deal on a day: win probability, risk, value at risk, and drivers for the top.

Pure. Probability and risk are computed for all open deals; SHAP drivers and actions for the
`explain_top` deals with the most value at risk (explanations cost far more than scores: see
modeling-notes), and on demand for any other deal through `explain_deal`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scoring.explain import explain_rows
from scoring.features import Crm, features_at
from scoring.model import WinModel
from scoring.risk import score_frame

CONFIDENCE_TEXT = {
    "low": "model confidence: low (scores differ little from the team's base win rate of {base:.0%})",
    "medium": "model confidence: medium (the model beats the base win rate of {base:.0%} modestly)",
    "high": "model confidence: high (the model clearly beats the base win rate of {base:.0%})",
}


def confidence_text(model: WinModel) -> str:
    return CONFIDENCE_TEXT[model.confidence].format(base=model.base_rate)


@dataclass
class ScoreRun:
    as_of: pd.Timestamp
    scores: pd.DataFrame  # index deal_id
    features: pd.DataFrame
    confidence: str


def score(
    crm: Crm,
    model: WinModel,
    refs: dict,
    as_of: pd.Timestamp | None = None,
    explain_top: int = 1000,
) -> ScoreRun:
    as_of = pd.Timestamp(as_of) if as_of is not None else crm.data_end
    f = features_at(crm, as_of)
    p = model.predict(f) if len(f) else np.array([])
    s = score_frame(f, p)
    for c in ("owner", "manager", "region", "product", "account", "stage", "expected_close"):
        s[c] = f[c]
    s = s.sort_values("value_at_risk", ascending=False, kind="stable")
    s["rank"] = np.arange(1, len(s) + 1)
    top = s.index[:explain_top]
    drivers, actions = explain_rows(model, f.loc[top], refs)
    s["drivers"] = None
    s["actions"] = None
    s.loc[top, "drivers"] = [
        json.dumps([{"key": d.key, "text": d.text, "points": round(d.points, 1)} for d in ds])
        for ds in drivers
    ]
    s.loc[top, "actions"] = [json.dumps(a) for a in actions]
    return ScoreRun(as_of=as_of, scores=s, features=f, confidence=model.confidence)


def explain_deal(run: ScoreRun, model: WinModel, refs: dict, deal_id: str):
    """Drivers and actions of one deal of a run, computed on demand."""
    drivers, actions = explain_rows(model, run.features.loc[[deal_id]], refs)
    return drivers[0], actions[0]
