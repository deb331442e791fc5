"""Model files with metadata, explanations equal to shap's, score runs kept in SQLite."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import shap

from dataset import database, score_runs
from scoring import artifact, scorer
from scoring.artifact import ModelMismatchError
from scoring.features import features_at


def test_save_load_round_trip(generated, generated_training, tmp_path):
    t = generated_training
    artifact.save(t.model, tmp_path, t.meta)
    loaded, meta = artifact.load(tmp_path)
    f = features_at(generated["crm"], generated["crm"].data_end)
    assert np.allclose(loaded.predict(f), t.model.predict(f))
    assert meta["trained_on"]["hash"] == t.meta["trained_on"]["hash"]
    assert {"lightgbm", "scikit-learn", "numpy", "pandas", "python"} <= set(meta["versions"])
    assert meta["features"] == list(t.meta["features_used"])
    assert "mean_over_cutoffs" in meta["evaluation"]
    assert (tmp_path / "win_model.txt").read_text().startswith("tree")


def test_mismatched_model_says_to_retrain(generated_training, tmp_path):
    t = generated_training
    with pytest.raises(ModelMismatchError, match="run `revbot train` first"):
        artifact.load(tmp_path / "none")
    artifact.save(t.model, tmp_path, t.meta)
    meta = json.loads((tmp_path / "win_model.json").read_text())
    meta["feature_version"] = 0
    (tmp_path / "win_model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelMismatchError, match="retrain with `revbot train`"):
        artifact.load(tmp_path)
    meta = {"categories": {"product": ["Nimbus Pro"]}}
    with pytest.raises(ModelMismatchError, match="trained on other data.*retrain"):
        artifact.check_fits_data(meta, ["GTX Pro", "MG Special"], "x")
    notes = artifact.check_fits_data(meta, ["Nimbus Pro", "New Thing"], "x")
    assert notes == ["products unknown to the model (scored as unknown): New Thing"]


def test_native_contributions_equal_shap(generated, generated_training):
    model = generated_training.model
    f = features_at(generated["crm"], generated["crm"].data_end).head(300)
    x = model.matrix(f)
    native = model.contributions(x)
    values = shap.TreeExplainer(model.booster).shap_values(x)
    values = values[1] if isinstance(values, list) else values
    assert np.abs(native[:, :-1] - values).max() < 1e-6
    # summed with the bias they give the raw score exactly
    assert np.allclose(native.sum(axis=1), model.raw(x))


def test_reasons_are_ordered_worded_and_actionable(generated, generated_training):
    t = generated_training
    crm = generated["crm"]
    run = scorer.score(crm, t.model, t.meta["references"], explain_top=10_000)
    f = run.features
    quiet = run.scores[(f["days_since_activity"] > 20).reindex(run.scores.index)].head(20)
    assert len(quiet) == 20
    for deal_id, row in quiet.iterrows():
        reasons, acts = json.loads(row["drivers"]), json.loads(row["actions"])
        risks = [r["risk"] for r in reasons]
        assert risks == sorted(risks, reverse=True) and len(reasons) <= 5
        top = reasons[0]
        assert top["key"] == "activity", reasons
        assert f"no activity for {f.at[deal_id, 'days_since_activity']:.0f} days" in top["text"]
        # its share of the value at risk (risk is saved to 0.1 point)
        assert abs(top["money"] - row["value"] * top["risk"] / 100) <= row["value"] * 5e-4 + 1
        assert any(a.startswith("Re-engage") for a in acts)


def test_score_runs_are_kept_and_compared(generated, generated_training, tmp_path):
    t = generated_training
    db = database.connect(tmp_path / "runs.db")
    crm = generated["crm"]
    ids = []
    for as_of in (crm.data_end - pd.Timedelta(days=7), crm.data_end):
        run = scorer.score(crm, t.model, t.meta["references"], as_of, explain_top=50)
        ids.append(score_runs.write_score_run(db, as_of=run.as_of, scores=run.scores, model_hash="h",
                                         confidence="low", base_rate=0.5))  # fmt: skip
    assert db["score_runs"].count == 2
    latest = score_runs.run_scores(db, ids[1])
    assert latest["rank"].tolist() == list(range(1, len(latest) + 1))
    assert latest["value_at_risk"].is_monotonic_decreasing
    assert latest["drivers"].notna().sum() == 50
    changes = score_runs.risk_changes(db, ids[1])
    both = changes.dropna(subset=["previous_risk"])
    assert len(both) > 100
    deal = both.iloc[0]["deal_id"]
    history = score_runs.deal_risk_history(db, deal)
    assert history["run_id"].tolist() == ids


def test_a_failed_run_leaves_nothing(generated, generated_training, tmp_path):
    t = generated_training
    db = database.connect(tmp_path / "runs.db")
    run = scorer.score(generated["crm"], t.model, t.meta["references"], explain_top=5)
    broken = run.scores.copy()
    broken.iloc[-1, broken.columns.get_loc("win_prob")] = np.nan  # NOT NULL fails on the last row
    with pytest.raises(Exception, match="NOT NULL"):
        score_runs.write_score_run(db, as_of=run.as_of, scores=broken, model_hash="h",
                              confidence="low", base_rate=0.5)  # fmt: skip
    assert db["score_runs"].count == 0 and db["score_columns"].count == 0
    assert db["deal_scores"].count == 0
