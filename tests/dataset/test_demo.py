"""The demo generator: deterministic, MavenTech-shaped, and carrying learnable signal."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from dataset.demo import DemoConfig, generate, snapshot, write_demo

SMALL = DemoConfig(deals=3000, weekly_exports=False, daily_exports=1)


def _digest(folder) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*.csv")):
        h.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    return h.hexdigest()


def test_same_seed_same_files(tmp_path):
    write_demo(tmp_path / "a", SMALL)
    write_demo(tmp_path / "b", SMALL)
    write_demo(
        tmp_path / "c", DemoConfig(deals=3000, seed=8, weekly_exports=False, daily_exports=1)
    )
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")


def test_maventech_columns(tmp_path):
    write_demo(tmp_path, SMALL)
    header = (tmp_path / "sales_pipeline.csv").read_text().splitlines()[0]
    assert header == (
        "opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,"
        "close_value,last_activity"
    )
    assert (
        (tmp_path / "sales_teams.csv").read_text().startswith("sales_agent,manager,regional_office")
    )


def test_signal_stagnation_and_pushes_hurt_reps_differ_big_deals_take_longer():
    world = generate(DemoConfig(deals=20000))
    won = world.won
    rate = {c: won[world.cause == c].mean() for c in ("none", "stagnation", "pushed")}
    assert rate["stagnation"] < rate["none"] - 0.25 and rate["pushed"] < rate["none"] - 0.15
    by_rep = pd.Series(won).groupby(world.owner).mean()
    assert by_rep.max() - by_rep.min() > 0.2
    cycle = pd.Series(world.close - world.engage)[world.cause == "none"]
    price = dict(zip(world.products["product"], world.products["sales_price"], strict=True))
    medians = cycle.groupby(world.product[world.cause == "none"]).median()
    ordered = medians.loc[sorted(medians.index, key=price.get)].to_numpy()
    assert np.all(np.diff(ordered) > 0)


def test_stagnation_and_pushes_are_visible_in_the_exports():
    world = generate(DemoConfig(deals=5000))
    day = (world.config.end - world.config.start).days
    snap = snapshot(world, day).set_index("opportunity_id")
    cause = pd.Series(world.cause, index=world.deal_id)
    engaging = snap[snap["deal_stage"] == "Engaging"]
    age = (pd.Timestamp(world.config.end) - pd.to_datetime(engaging["engage_date"])).dt.days
    idle = (pd.Timestamp(world.config.end) - pd.to_datetime(engaging["last_activity"])).dt.days
    old = age > 21
    assert idle[old & (cause[engaging.index] == "stagnation")].min() > 4
    assert idle[old & (cause[engaging.index] == "none")].max() <= 4
    planned = pd.Series(world.planned_close, index=world.deal_id)[engaging.index]
    expected = (pd.to_datetime(engaging["close_date"]) - pd.Timestamp(world.config.start)).dt.days
    pushed = expected > planned
    assert (cause[engaging.index][old & pushed] == "pushed").all()
    assert pushed[old & (cause[engaging.index] == "pushed")].all()
