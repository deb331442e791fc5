"""MavenTech carries almost no signal: the shipped model must not be worse than the base rate."""

from __future__ import annotations

import pytest

from dataset import store
from dataset.ingest import ingest_files
from scoring.evaluate import SHIPPED
from scoring.features import prepare
from scoring.train import train


@pytest.fixture(scope="module")
def maventech_training(maventech, tmp_path_factory):
    db = store.connect(tmp_path_factory.mktemp("m") / "m.db")
    ingest_files(db, [maventech])
    return train(prepare(store.load_crm(db)))


def test_report_over_four_cutoffs(maventech_training):
    t = maventech_training
    assert len(t.cutoffs) >= 4
    shipped, base = t.summary.loc[SHIPPED], t.summary.loc["base rate"]
    assert shipped["log_loss"] <= base["log_loss"]
    assert shipped["ece"] < 0.03
    # honest AUC: a time-split AUC much above 0.6 on this data would signal leakage
    assert 0.45 < shipped["auc"] < 0.62
    for r in t.cutoffs:
        assert r.test_rows > 1000 and r.train_rows > 1000


def test_messages_say_how_little_the_model_knows(maventech_training):
    from scoring.scorer import confidence_text

    assert maventech_training.model.confidence in ("low", "medium")
    text = confidence_text(maventech_training.model)
    assert text.startswith("model confidence: ")
