"""Wins timed by stage: the warped close-time draws honour each deal's chances to close within the
knots, the summed deals' chances are the draws', and the stage models learn what a stage says
on a generated stages world (known truth) and stay out of a CRM without stage history."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from dataset import database, deal_history
from dataset.ingest import ingest_files
from dataset.worlds import stages
from forecasting import inputs, stage_timing, stage_timing_file
from forecasting.backtest import default_cutoffs, horizon_periods
from forecasting.many_small import slipped_edges
from forecasting.montecarlo import simulate
from forecasting.timing import KaplanMeier
from forecasting.warped_draws import WITHIN_DAYS, WITHIN_STEPS, Warped, within_columns
from scoring.features import features_at, prepare
from scoring.train import all_rows, fit_at

STAGES_DEALS = 1500


def _curve(seed: int = 0, low: int = 5, high: int = 300) -> KaplanMeier:
    """Won deals closing after `low` to `high` days engaged (all closed: no censoring)."""
    rng = np.random.default_rng(seed)
    days = rng.integers(low, high, 2000)
    return KaplanMeier.fit(days, np.ones(len(days), bool), won=np.ones(len(days), bool))


def _draws(sampler, n_deals: int, rows: int = 4000) -> np.ndarray:
    """Days drawn for every deal at evenly spread uniforms (rows, deals)."""
    u = np.repeat(((np.arange(rows) + 0.5) / rows)[:, None], n_deals, axis=1)
    return sampler.dense_days(u.astype(np.float32))


def test_draws_close_within_each_knot_as_often_as_the_deal_was_given():
    km = _curve()
    ages = np.array([0.0, 30.0, 100.0, 0.0])
    within = np.array([[0.6, 0.9], [0.05, 0.2], [0.0, 0.5], [0.3, 0.3]])
    sampler = km.sampler(ages, np.array(["?"] * 4, dtype=object), within)
    assert isinstance(sampler, Warped)
    days = _draws(sampler, 4)
    for k, knot in enumerate(WITHIN_DAYS):
        share = (days < knot).mean(axis=0)
        np.testing.assert_allclose(share, within[:, k], atol=0.002)
    assert (days[:, 3] >= WITHIN_DAYS[1]).mean() == pytest.approx(0.7, abs=0.002)  # the rest later


def _edge_shares(days: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(deals, stretches): the share of each deal's draws in each stretch of days."""
    return np.stack([((days >= a) & (days < b)).mean(axis=0)
                     for a, b in zip(edges[:-1], edges[1:], strict=True)], axis=1)  # fmt: skip


def test_an_old_deal_with_little_curve_left_still_honours_its_chances():
    """Wins closing at an even pace (60 days on average): a deal open a year has 0.2% of the
    curve left, which the draw table holds in a few levels; its draws still close within the
    knots as often as it was given, and the summed deals' chances are its draws'."""
    rng = np.random.default_rng(8)
    days = np.minimum(rng.exponential(60.0, 20_000), 700).round()
    km = KaplanMeier.fit(days, np.ones(len(days), bool), won=np.ones(len(days), bool))
    ages = np.array([360.0, 380.0, 10.0])
    assert 0 < km.pooled[380] * 4096 < 16  # a handful of the table's levels
    within = np.array([[0.3, 0.9], [0.1, 0.4], [0.5, 0.8]])
    sampler = km.sampler(ages, np.array(["?"] * 3, dtype=object), within)
    drawn = _draws(sampler, 3)
    for k, knot in enumerate(WITHIN_DAYS):
        np.testing.assert_allclose((drawn < knot).mean(axis=0), within[:, k], atol=0.002)
    edges = np.array([0, 10, 28, 60, 91, 120, 365])
    cls, chances = sampler.atom_chances(edges)
    np.testing.assert_allclose(chances[cls], _edge_shares(drawn, edges), atol=0.002)


def test_a_stretch_the_curve_leaves_empty_after_its_first_closes_is_filled_evenly():
    """Wins within 20 days or after 100: between the knots at 4 and 13 weeks the curve has no
    close, its chance there constant at a value float32 cannot hold; the deal's chances still
    fill that stretch evenly in days, in the draws and the summed deals' chances alike."""
    rng = np.random.default_rng(9)
    days = np.r_[rng.integers(3, 20, 1234), rng.integers(100, 200, 2000)]
    km = KaplanMeier.fit(days, np.ones(len(days), bool), won=np.ones(len(days), bool))
    sampler = km.sampler(np.array([9.0]), np.array(["?"], dtype=object), np.array([[0.2, 0.8]]))
    c = sampler.curve_within[0]
    assert c[0] == c[1] and c[1] - np.float32(c[0]) > 1e-9  # float32 rounds it down
    drawn = _draws(sampler, 1)
    middle = drawn[(drawn >= WITHIN_DAYS[0]) & (drawn < WITHIN_DAYS[1])]
    assert len(middle) / len(drawn) == pytest.approx(0.6, abs=0.002)
    assert middle.mean() == pytest.approx(sum(WITHIN_DAYS) / 2, abs=0.5)
    edges = np.array([0, 28, 40, 60, 91, 365])
    cls, chances = sampler.atom_chances(edges)
    np.testing.assert_allclose(chances[cls], _edge_shares(drawn, edges), atol=0.002)


def test_the_curves_own_chances_leave_its_draws_as_they_were():
    km = _curve(1)
    ages, groups = np.array([0.0, 20.0, 60.0]), np.array(["?"] * 3, dtype=object)
    base = km.sampler(ages, groups)
    own = km.chances_within(ages, groups)
    warped = km.sampler(ages, groups, own)
    np.testing.assert_allclose(_draws(warped, 3), _draws(base, 3), atol=1.0)


def test_a_stretch_the_curve_leaves_empty_is_filled_evenly_in_days():
    km = _curve(2, low=40, high=120)  # no win before day 40
    sampler = km.sampler(np.zeros(1), np.array(["?"], dtype=object), np.array([[0.3, 0.8]]))
    days = _draws(sampler, 1)[:, 0]
    soon = days[days < WITHIN_DAYS[0]]
    assert len(soon) / len(days) == pytest.approx(0.3, abs=0.002)
    assert soon.mean() == pytest.approx(WITHIN_DAYS[0] / 2, abs=0.5)  # evenly over 0-28 days


@pytest.mark.parametrize("slip", [0, 12, -12])
def test_the_summed_deals_chances_are_the_draws_to_the_classes_resolution(slip):
    """At a shared slip of the close dates too (`many_small.slipped_edges`)."""
    km = _curve(3)
    rng = np.random.default_rng(4)
    n = 60
    ages = rng.integers(0, 150, n).astype(float)
    first = rng.random(n) * 0.6
    within = np.column_stack([first, first + rng.random(n) * (1 - first)])
    sampler = km.sampler(ages, np.array(["?"] * n, dtype=object), within)
    edges = np.array([0, 10, 28, 50, 91, 150, 365])
    cls, chances = sampler.atom_chances(slipped_edges(edges, slip))
    assert len(chances) <= n
    days = np.maximum(_draws(sampler, n) + slip, 0.0)
    drawn = np.stack([((days >= a) & (days < b)).mean(axis=0)
                      for a, b in zip(edges[:-1], edges[1:], strict=True)], axis=1)  # fmt: skip
    np.testing.assert_allclose(chances[cls], drawn, atol=1.0 / WITHIN_STEPS)


def test_the_simulation_times_won_deals_by_their_given_chances():
    km = _curve(5)
    n = 200
    rng = np.random.default_rng(6)
    deals = pd.DataFrame({"value": rng.integers(1, 50, n) * 1000.0, "win_prob": rng.random(n),
                          "age": rng.integers(0, 100, n).astype(float), "timing_group": "?"})  # fmt: skip
    within = np.column_stack([rng.random(n) * 0.5, 0.5 + rng.random(n) * 0.5])
    deals[within_columns()] = within
    periods = horizon_periods((4, 13))
    fc = simulate(deals, km, periods, scenarios=20_000, seed=1)
    expected = [(deals["value"] * deals["win_prob"] * within[:, k]).sum() for k in range(2)]
    np.testing.assert_allclose(fc.table["mean"].to_numpy(), expected, rtol=0.01)
    plain = simulate(deals.drop(columns=within_columns()), km, periods, scenarios=20_000, seed=1)
    assert abs(plain.table["mean"].iloc[0] - expected[0]) > 0.05 * expected[0]  # they matter


@pytest.fixture(scope="module")
def stages_world(tmp_path_factory):
    """A generated stages world (Salesforce-style weekly exports, outcomes known past its end),
    imported as a user would; and the same world's last export alone."""
    world = stages.generate(stages.Config(seed=3, deals=STAGES_DEALS))
    folder = tmp_path_factory.mktemp("stages-world")
    stages.write(world, folder)
    exports = sorted((folder / "exports").iterdir())
    db = database.connect(folder / "all.db")
    ingest_files(db, exports)
    once = database.connect(folder / "last.db")
    ingest_files(once, exports[-1:])
    return (world, prepare(deal_history.load_crm(db)), prepare(deal_history.load_crm(once)))


def test_the_stage_models_time_the_wins_closer_to_the_truth_than_the_curve(stages_world):
    world, crm, _ = stages_world
    truth = stages.outcomes(world).set_index("deal_id")
    rows = all_rows(crm)
    timed = {"stage": np.zeros(2), "curve": np.zeros(2), "closed": np.zeros(2)}
    late, early = [], []
    for c in default_cutoffs(crm, 8, lead_weeks=4)[-3:]:
        model, _ = fit_at(crm, c, rows, passes=1, step_passes=0)  # a rough one is enough here
        f = features_at(crm, c)
        p = model.predict(f)
        km = inputs.fit_timing(crm, c, "km")
        fitted = stage_timing.fit(crm, c, rows[rows["snapshot"] < c], model, km)
        assert fitted is not None
        within, curve = fitted.within(f, p, km), stage_timing.curve_within(km, f)
        assert (np.diff(within, axis=1) >= 0).all() and ((within >= 0) & (within <= 1)).all()
        t = truth.reindex(f.index)
        won = t["won"].fillna(False).to_numpy(bool)
        days = (t["closed_on"] - c).dt.days.to_numpy()
        value = t["value"].to_numpy(float)
        for k, knot in enumerate(WITHIN_DAYS):
            timed["stage"][k] += (value * within[:, k])[won].sum()
            timed["curve"][k] += (value * curve[:, k])[won].sum()
            timed["closed"][k] += value[won & (days <= knot)].sum()
        late += within[(f["stage"] == "Negotiation/Review").to_numpy(), 0].tolist()
        early += within[(f["stage"] == "Prospecting").to_numpy(), 0].tolist()
    error = {k: np.abs(timed[k] / timed["closed"] - 1) for k in ("stage", "curve")}
    assert (error["stage"] < error["curve"]).all(), (error, timed)
    assert np.mean(late) > 3 * np.mean(early)  # the stage is what it learnt


def test_a_crm_without_stage_history_keeps_the_curve(stages_world):
    _, _, once = stages_world
    assert not stage_timing.has_stage_history(once)
    day = once.data_end
    model, _ = fit_at(once, day)
    km = inputs.fit_timing(once, day, "km")
    assert stage_timing.fit(once, day, all_rows(once, day), model, km) is None


def test_the_stage_models_are_saved_and_loaded_as_they_were(stages_world, tmp_path):
    _, crm, _ = stages_world
    rows = all_rows(crm)
    day = default_cutoffs(crm, 8, lead_weeks=4)[-1]
    model, _ = fit_at(crm, day, rows, passes=1, step_passes=0)
    km = inputs.fit_timing(crm, day, "km")
    fitted = stage_timing.fit(crm, day, rows[rows["snapshot"] < day], model, km)
    f = features_at(crm, day)
    p = model.predict(f)
    stage_timing_file.save(fitted, tmp_path)
    loaded = stage_timing_file.load(tmp_path)
    np.testing.assert_allclose(loaded.within(f, p, km), fitted.within(f, p, km), rtol=1e-9)
    meta = json.loads((tmp_path / stage_timing_file.FILE).read_text())
    meta["knots"] = [14, 91]  # made for other knots: not used
    (tmp_path / stage_timing_file.FILE).write_text(json.dumps(meta))
    assert stage_timing_file.load(tmp_path) is None
    stage_timing_file.save(None, tmp_path)  # a CRM without stage history: the old ones go
    assert not list(tmp_path.iterdir())


def test_the_main_job_times_the_demos_wins_by_stage(main_job):
    """The demo is imported over time (stage history): the training saves the stage models and
    the forecast test says it timed wins by stage."""
    assert main_job["code"] == 0, main_job["out"]
    art = main_job["artifacts"]
    assert stage_timing_file.load(art) is not None
    test = (art / "forecast_test.md").read_text()
    staged = re.search(r"corrected by the deal's stage \(the exports' stage history\) at (\d+) of "
                       r"the (\d+)[.;]", test)  # fmt: skip
    assert staged and 0 < int(staged[1]) <= int(staged[2]), test[:600]


def test_a_curve_that_closes_every_win_before_the_last_knot_still_honours_the_chances():
    """Every win the curve saw closed within 60 days, the stage says 30% within 13 weeks: the
    rest comes after 13 weeks (spread over as many days again), in the draws and in the summed
    deals' chances alike; a simulation summing thousands of such deals stays finite."""
    km = _curve(7, low=5, high=60)
    n = 3
    sampler = km.sampler(np.zeros(n), np.array(["?"] * n, dtype=object),
                         np.array([[0.1, 0.3], [0.0, 0.0], [0.5, 0.5]]))  # fmt: skip
    assert (sampler.curve_within[:, 1] == 1.0).all()  # the curve: all closed by 91 days
    days = _draws(sampler, n)
    np.testing.assert_allclose((days < WITHIN_DAYS[1]).mean(axis=0), [0.3, 0.0, 0.5], atol=0.002)
    later = days[:, 0][days[:, 0] >= WITHIN_DAYS[1]]
    assert later.max() <= 2 * WITHIN_DAYS[1] and later.mean() == pytest.approx(1.5 * 91, abs=1)
    edges = np.array([0, 28, 60, 91, 120, 182, 365])
    cls, chances = sampler.atom_chances(edges)
    drawn = np.stack([((days >= a) & (days < b)).mean(axis=0)
                      for a, b in zip(edges[:-1], edges[1:], strict=True)], axis=1)  # fmt: skip
    np.testing.assert_allclose(chances[cls], drawn, atol=1.0 / WITHIN_STEPS)
    many = 25_000  # past the deals drawn one by one: most are summed by class
    deals = pd.DataFrame({"value": 1000.0, "win_prob": 0.5, "age": 0.0, "timing_group": "?"},
                         index=range(many))  # fmt: skip
    deals[within_columns()] = [0.1, 0.3]
    fc = simulate(deals, km, horizon_periods((4, 13, 26)), scenarios=2000, seed=2)
    expected = [many * 1000 * 0.5 * x for x in (0.1, 0.3, 1.0)]
    np.testing.assert_allclose(fc.table["mean"].to_numpy(), expected, rtol=0.02)
