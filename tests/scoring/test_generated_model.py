"""On generated data, where the true probabilities are known, the model must learn the signal."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from scoring.evaluate import ece, metrics
from scoring.scorer import score
from tests.conftest import point_in_time_truth

SHIPPED = "shipped (calibrated, blended)"


def test_auc_close_to_the_truth_and_calibrated(generated, generated_training):
    world = generated["world"]
    aucs, truth_aucs = [], []
    for r in generated_training.cutoffs:
        y, w = r.test["label"].to_numpy(), r.test["weight"].to_numpy()
        truth = point_in_time_truth(world, r.test)
        assert not np.isnan(truth).any()
        aucs.append(r.by_method[SHIPPED]["auc"])
        truth_aucs.append(metrics(y, truth, w)["auc"])
    assert np.mean(aucs) >= np.mean(truth_aucs) - 0.02, (aucs, truth_aucs)
    pooled = pd.concat([r.test for r in generated_training.cutoffs])
    pooled_ece = ece(pooled["label"].to_numpy(), pooled[f"p_{SHIPPED}"].to_numpy(),
                     pooled["weight"].to_numpy())  # fmt: skip
    assert pooled_ece < 0.02
    assert generated_training.model.confidence == "high"


def _top_risk_key(drivers: str) -> str | None:
    negative = [d for d in json.loads(drivers) if d["points"] < 0]
    return min(negative, key=lambda d: d["points"])["key"] if negative else None


def test_top_driver_names_the_generated_cause(generated, generated_training):
    world, crm = generated["world"], generated["crm"]
    training = generated_training
    run = score(crm, training.model, training.meta["references"], explain_top=100_000)
    day = (crm.data_end.date() - world.config.start).days
    cause = pd.Series(world.cause, index=world.deal_id)
    visible = pd.Series(
        np.where(world.cause == "stagnation", world.stall_seen_from <= day,
                 world.push_seen_from <= day), index=world.deal_id)  # fmt: skip
    expected = {"stagnation": "activity", "pushed": "pushes"}
    for name, driver in expected.items():
        ids = [d for d in run.scores.index if cause[d] == name and visible[d]]
        assert len(ids) >= 30
        top = [_top_risk_key(run.scores.at[d, "drivers"]) for d in ids]
        share = np.mean([t == driver for t in top])
        assert share >= 0.8, (name, share)
