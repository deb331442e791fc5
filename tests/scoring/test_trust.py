"""Scores and reasons that hold on pipelines revbot was not tuned on: two known-truth worlds with
mechanics unlike the demo's (`dataset/worlds`), imported from their export files as a user would
import them, with no configuration.

The aims of issue 10 (expected-AUC gap to the truth <= 0.02, ECE against the true probabilities
< 0.02, the top reason names the cause for >= 80% of the deals whose cause shows, sum of value x p
within 5% of the truth's at an earlier cutoff) are measured at full size, three seeds each, by
`benchmarks/trust_bench.py` (figures in the README). These CI-sized worlds (4,000 deals, one
seed) carry more sampling noise, so the bounds here are looser; they still fail the model this
replaced (gap 0.05-0.12, ECE 0.03-0.12, causes named 40-55% on the held-out pipelines).
"""

from __future__ import annotations

import pytest

from dataset.worlds import inbound, stages
from tests.truth import check_cutoff, check_last_export, module_world

WORLDS = {"stages": (stages, 4000), "inbound": (inbound, 4000)}


@pytest.fixture(scope="module", params=list(WORLDS))
def checked(request, tmp_path_factory):
    module, deals = WORLDS[request.param]
    folder = tmp_path_factory.mktemp(request.param)
    world = module_world(request.param, module, module.Config(deals=deals, seed=1), folder / "crm")
    early = check_cutoff(world, folder, weeks_back=26)
    # the last export's database goes on from the cutoff's (imports are incremental)
    return check_last_export(world, folder, start=folder / "cutoff.db"), early


def test_probabilities_rank_and_match_the_truth_at_the_last_export(checked):
    last, _ = checked
    assert last["matched"] == last["open_deals"] > 500
    assert last["auc_gap"] <= 0.03, last["auc_gap"]
    assert last["ece_truth"] < 0.03, last["ece_truth"]  # measured 0.011 / 0.022 (seed 1)
    assert abs(last["mean_p"] - last["mean_truth"]) < 0.02  # measured 0.004 / 0.001
    assert last["confidence"] == "high"


def test_the_top_reason_names_the_cause(checked):
    last, _ = checked
    assert last["cause_named"] >= 0.7, last["cause_named_by_cause"]


def test_an_earlier_cutoff_ranks_real_outcomes_and_values_the_pipeline(checked):
    _, early = checked
    assert early["deals"] > 300
    assert early["auc_gap"] <= 0.035, early
    assert abs(early["value_gap"]) <= 0.1, early
