"""Forecast categories beside the model (issue 14): the roll-up adds up, a missing category is
mapped from the stage and counted, and the disagreements are the deals the issue names."""

from __future__ import annotations

import pandas as pd
import pytest

from bot.target_text import categories_text
from forecasting.categories import DOUBTED, FAVOURED, category, rollup

DEALS = pd.DataFrame(
    [  # deal_id, account, stage, forecast_category, value, win_prob
        ("A", "Acme", "Negotiation", "Commit", 100_000.0, 0.25),
        ("B", "Beta", "Negotiation", "commit", 50_000.0, 0.80),
        ("C", "Cato", "Proposal", "BestCase", 40_000.0, 0.50),
        ("D", "Dune", "Qualify", "Pipeline", 30_000.0, 0.75),
        ("E", None, "Qualify", "Pipeline", None, 0.10),
        ("F", "Fjord", "Negotiation", None, 20_000.0, 0.30),  # mapped: stage at 90% -> commit
        ("G", "Gale", "Qualify", None, 10_000.0, 0.90),  # mapped: stage at 20% -> pipeline
        ("H", "Hale", "Proposal", "Omitted", 5_000.0, 0.05),
    ],
    columns=["deal_id", "account", "stage", "forecast_category", "value", "win_prob"],
)
STAGES = {"Negotiation": 90.0, "Proposal": 70.0, "Qualify": 20.0}


def test_the_rollup_adds_up_to_the_quarter():
    r = rollup(DEALS, won=60_000, stage_probability=STAGES)
    by = {row["category"]: row for row in r.rows}
    assert [row["category"] for row in r.rows] == ["Commit", "Best Case", "Pipeline", "Omitted"]
    assert by["Commit"]["value"] == 170_000 and by["Commit"]["deals"] == 3
    assert by["Best Case"]["value"] == 40_000 and by["Pipeline"]["value"] == 40_000
    assert sum(row["deals"] for row in r.rows) == len(DEALS)
    assert sum(row["value"] for row in r.rows) == DEALS["value"].sum()
    assert r.total == 60_000 + DEALS["value"].sum() - 5_000  # omitted deals are not counted
    expected = (DEALS["value"].fillna(0) * DEALS["win_prob"]).sum()
    assert sum(row["expected"] for row in r.rows) == pytest.approx(expected)
    assert r.mapped == 2
    # commit under 40% and pipeline over 70%, by value; F and G are mapped: no one's call
    assert r.doubted["deal_id"].tolist() == ["A"] and r.favoured["deal_id"].tolist() == ["D"]
    assert (r.doubted["win_prob"] < DOUBTED).all() and (r.favoured["win_prob"] > FAVOURED).all()


def test_a_category_is_the_crms_else_its_stages():
    assert category("Best Case", 10) == ("Best Case", False)
    assert category("  ", 95) == ("Commit", True) and category(None, 60) == ("Best Case", True)
    assert category(None, None) == ("Pipeline", True)


def test_the_lines_say_what_the_rollup_holds():
    text = categories_text(rollup(DEALS, 60_000, STAGES), "2025-Q1", "quarter")
    assert text.startswith("*By forecast category* (deals closing in 2025-Q1): won $60k · commit "
                           "$170k (3 deals, model $71k)")  # fmt: skip
    assert "_2 deals without a category in the CRM, mapped from the stage._" in text
    assert "Commit deals the model gives under 40%: Acme $100k (win 25%)\n" in text
    assert text.endswith("Pipeline deals the model gives over 70%: Dune $30k (win 75%)")
    fewer = categories_text(rollup(DEALS[DEALS["deal_id"] != "C"], 0, STAGES), "2025-Q1", "quarter")
    assert "best case" not in fewer and "pipeline $40k (3 deals" in fewer  # no empty category


def test_a_quarter_without_open_deals_rolls_up_to_what_was_won():
    # a team with nothing left to close in the quarter: /forecast must still answer
    r = rollup(DEALS.iloc[:0], won=12_000, stage_probability=STAGES)
    assert r.total == 12_000 and r.mapped == 0
    assert all(row["deals"] == 0 for row in r.rows) and r.doubted.empty and r.favoured.empty
    assert "won $12k" in categories_text(r, "2025-Q1", "quarter")


def test_the_rollup_is_the_same_worked_out_per_row():
    # the categories are worked out once per distinct value: the same as deal by deal
    many = pd.concat([DEALS] * 50, ignore_index=True).sample(frac=1, random_state=3)
    r = rollup(many, 0, STAGES)
    pairs = [
        category(c, STAGES.get(s))
        for c, s in zip(many["forecast_category"], many["stage"], strict=True)
    ]
    for name in ("Commit", "Best Case", "Pipeline", "Omitted"):
        rows = [row for row in r.rows if row["category"] == name]
        assert rows[0]["deals"] == sum(c == name for c, _ in pairs)
    assert r.mapped == sum(m for _, m in pairs)
