"""Train the shipped win model and evaluate the method over past cutoffs. Pure: data in, data out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scoring import evaluate
from scoring import model as wm
from scoring.artifact import data_hash
from scoring.features import FEATURES, Crm


@dataclass
class Training:
    model: wm.WinModel
    meta: dict
    cutoffs: list[evaluate.CutoffResult]
    summary: pd.DataFrame


def references(rows: pd.DataFrame) -> dict[str, float]:
    """Typical values among deals that were won, quoted in explanations ("deals that win: ...")."""
    won = rows[rows["label"] == 1]
    w = won["weight"].to_numpy()

    def wmedian(values: pd.Series) -> float:
        v = values.to_numpy(dtype=float)
        ok = ~np.isnan(v)
        if not ok.any():
            return float("nan")
        order = np.argsort(v[ok])
        cum = np.cumsum(w[ok][order])
        return float(v[ok][order][np.searchsorted(cum, cum[-1] / 2)])

    return {
        "days_since_activity": wmedian(won["days_since_activity"]),
        "value": wmedian(won["value_used"]),
        "age_days": wmedian(won["age_days"]),
    }


def train(crm: Crm, n_cutoffs: int = 4, truth: pd.Series | None = None) -> Training:
    """Evaluate over `n_cutoffs` past cutoffs, then fit the model to ship on all mature data."""
    results = [
        evaluate.evaluate_cutoff(crm, c, truth) for c in evaluate.default_cutoffs(crm, n_cutoffs)
    ]
    rows = evaluate.shipping_rows(crm)
    fit_rows, cal_rows = evaluate.split_for_training(rows)
    model = wm.fit(fit_rows, cal_rows)
    summary = evaluate.summary_table(results)
    meta = {
        "trained_on": {
            "rows": len(rows),
            "deals": int(rows.index.nunique()),
            "snapshots": int(rows["snapshot"].nunique()),
            "first_snapshot": rows["snapshot"].min().date().isoformat(),
            "last_snapshot": rows["snapshot"].max().date().isoformat(),
            "data_end": crm.data_end.date().isoformat(),
            "win_rate": float(np.average(rows["label"], weights=rows["weight"])),
            "hash": data_hash(rows),
        },
        "references": references(rows),
        "evaluation": {
            "cutoffs": [r.cutoff.date().isoformat() for r in results],
            "mean_over_cutoffs": summary.round(4).to_dict(orient="index"),
        },
        "features_used": list(FEATURES),
    }
    return Training(model=model, meta=meta, cutoffs=results, summary=summary)
