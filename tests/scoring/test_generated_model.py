"""On generated data, where the true probabilities are known, the model must learn the signal."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from dataset.demo import true_probability
from scoring.evaluate import ece, expected_auc
from scoring.scorer import score


def _truth_at_end(generated) -> pd.Series:
    world, crm = generated["world"], generated["crm"]
    return true_probability(world, (crm.data_end.date() - world.config.start).days)


def test_probabilities_rank_and_match_the_truth_at_the_last_export(generated, generated_training):
    crm, model = generated["crm"], generated_training.model
    run = score(crm, model, generated_training.meta["references"], explain_top=0)
    truth = _truth_at_end(generated).reindex(run.scores.index)
    assert truth.notna().all()
    p, q = run.scores["win_prob"].to_numpy(), truth.to_numpy()
    assert expected_auc(q, q) - expected_auc(p, q) <= 0.02
    assert ece(q, p, np.ones(len(p))) < 0.02
    assert abs(p.mean() - q.mean()) < 0.02
    assert model.confidence == "high"


def _top_key(drivers: str) -> str | None:
    reasons = json.loads(drivers)
    return reasons[0]["key"] if reasons and reasons[0]["risk"] > 0 else None


def test_top_reason_names_the_generated_cause(generated, generated_training):
    world, crm = generated["world"], generated["crm"]
    training = generated_training
    run = score(crm, training.model, training.meta["references"], explain_top=100_000)
    day = (crm.data_end.date() - world.config.start).days
    cause = pd.Series(world.cause, index=world.deal_id)
    visible = pd.Series(
        np.where(world.cause == "stagnation", world.stall_seen_from <= day,
                 world.push_seen_from <= day), index=world.deal_id)  # fmt: skip
    expected = {"stagnation": "activity", "pushed": "pushes"}
    for name, key in expected.items():
        ids = [d for d in run.scores.index if cause[d] == name and visible[d]]
        assert len(ids) >= 30
        share = np.mean([_top_key(run.scores.at[d, "drivers"]) == key for d in ids])
        assert share >= 0.8, (name, share)
