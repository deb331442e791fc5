"""MavenTech carries almost no signal: the shipped model must not be worse than the base rate.
Read from the model's saved report after the MavenTech digest trained it (as an admin reads it)."""

from __future__ import annotations

import json

import pytest

from scoring import artifact
from scoring.evaluate import SHIPPED
from scoring.scorer import confidence_text


@pytest.fixture(scope="module")
def saved(maventech_digest):
    assert maventech_digest["code"] == 0, maventech_digest["out"]
    folder = maventech_digest["artifacts"]
    meta = json.loads((folder / artifact.META_FILE).read_text(encoding="utf-8"))
    return artifact.load(folder)[0], meta


def test_report_over_four_cutoffs(saved):
    _, meta = saved
    evaluation = meta["evaluation"]
    assert len(evaluation["per_cutoff"]) >= 4
    table = evaluation["mean_over_cutoffs"]
    shipped, base = table[SHIPPED], table["base rate"]
    assert shipped["log_loss"] <= base["log_loss"]
    assert shipped["ece"] < 0.03
    # honest AUC: a time-split AUC much above 0.6 on this data would signal leakage
    assert 0.45 < shipped["auc"] < 0.62
    for r in evaluation["per_cutoff"]:
        assert r["test_rows"] > 1000 and r["train_rows"] > 1000


def test_messages_say_how_little_the_model_knows(saved):
    model, _ = saved
    assert model.confidence in ("low", "medium")
    text = confidence_text(model)
    assert text.startswith("model confidence: ")
