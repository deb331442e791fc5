"""Point-in-time features: nothing that happened after the snapshot day may change them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dataset import database, deal_history
from dataset.ingest import ingest_files
from scoring.features import FEATURES, features_at, prepare
from scoring.samples import label, outcomes, snapshot_dates, snapshot_rows
from scoring.train import fit_at


def _shuffle_after(tables: dict, cutoff: pd.Timestamp, seed: int = 0) -> dict:
    """Permute the outcomes, close dates and values of everything that happened on or after
    `cutoff`, in the latest states, the history rows and the activity dates."""
    rng = np.random.default_rng(seed)
    out = {k: v.copy() for k, v in tables.items()}
    d = out["deals"]
    late = d["close_date"] >= cutoff
    for col in ("status", "stage", "value", "account"):
        d.loc[late, col] = rng.permutation(d.loc[late, col].to_numpy())
    d.loc[late, "close_date"] = d.loc[late, "close_date"] + pd.to_timedelta(
        rng.integers(0, 60, int(late.sum())), unit="D"
    )
    h = out["history"]
    later = h["as_of"] >= cutoff
    for col in ("status", "stage", "value", "account", "close_date", "probability",
                "forecast_category", "has_next_step", "stage_changed", "push_count"):  # fmt: skip
        if col in h:
            h.loc[later, col] = rng.permutation(h.loc[later, col].to_numpy())
    a = out["activity"]
    a_late = a["activity_date"] >= cutoff
    a.loc[a_late, "activity_date"] = a.loc[a_late, "activity_date"] + pd.Timedelta(days=3)
    return out


# what the risk score and the reasons judge a deal by, besides the model's inputs: how long won
# deals took, stayed in a stage and closed after their expected date, as known on the day
REFERENCES = ["typical_cycle", "typical_stage_days", "typical_late_days", "longest_cycle"]


def _features(tables: dict, days) -> pd.DataFrame:
    crm = prepare(tables)
    return pd.concat([features_at(crm, t).assign(snapshot=t) for t in days])[
        [*FEATURES, *REFERENCES, "snapshot"]
    ]


def test_shuffling_what_came_after_the_cutoff_leaves_features_unchanged(
    generated, maventech, tmp_path
):
    db = database.connect(tmp_path / "m.db")
    ingest_files(db, [maventech])
    for tables in (deal_history.load_crm(generated["db"]), deal_history.load_crm(db)):
        crm = prepare(tables)
        cutoff = crm.data_end - pd.Timedelta(days=120)
        days = snapshot_dates(crm, cutoff - pd.Timedelta(days=90), cutoff - pd.Timedelta(days=1))
        assert len(days) >= 8
        before = _features(tables, days)
        after = _features(_shuffle_after(tables, cutoff), days)
        assert len(before) > 500
        pd.testing.assert_frame_equal(before.sort_index(), after.sort_index())


def test_the_shuffle_does_change_later_features(generated):
    """The test above can fail: the same shuffle changes features on later days."""
    tables = deal_history.load_crm(generated["db"])
    crm = prepare(tables)
    cutoff = crm.data_end - pd.Timedelta(days=120)
    day = [snapshot_dates(crm, cutoff + pd.Timedelta(days=30), crm.data_end)[0]]
    before, after = _features(tables, day), _features(_shuffle_after(tables, cutoff), day)
    assert not before.equals(after.reindex(before.index))


def test_open_deals_without_later_exports_hide_account_and_amount(maventech, tmp_path):
    """MavenTech ships one final export: on earlier days a deal's account and amount, filled in
    at close, are unknown; the deal counts as open until it closed."""
    db = database.connect(tmp_path / "m.db")
    ingest_files(db, [maventech])
    crm = prepare(deal_history.load_crm(db))
    t = pd.Timestamp("2017-06-01")
    f = features_at(crm, t)
    d = crm.deals.set_index("deal_id").loc[f.index]
    assert ((d["engage_date"] <= t) & ~((d["status"] != "open") & (d["close_date"] <= t))).all()
    assert f["account"].isna().all() and not f["value_known"].any()
    assert (f["rep_win_rate"].between(0, 1)).all()


def test_a_model_trained_on_a_day_is_unchanged_by_what_came_after(generated):
    """The whole training (samples, labels of deals still open, the censored estimates) as of
    a cutoff sees nothing later: shuffling the later data gives the same model."""
    tables = deal_history.load_crm(generated["db"])
    crm = prepare(tables)
    # ten months before the end: a booster on 59,000 rows (36,000 of deals still open), and
    # most of the history after the cutoff to shuffle (five months before it took three times
    # as long to train, 16 s of a worker)
    cutoff = snapshot_dates(crm, crm.data_end - pd.Timedelta(days=300), crm.data_end)[0]
    # one pass of each kind (matured, re-labelled open deals, step labels): every stage of the
    # shipped training, fewer repeats
    model, rows = fit_at(crm, cutoff, passes=2, step_passes=1)
    shuffled = prepare(_shuffle_after(tables, cutoff + pd.Timedelta(days=1)))
    model2, rows2 = fit_at(shuffled, cutoff, passes=2, step_passes=1)
    f = features_at(crm, cutoff)
    assert model.booster is not None  # a model, not the base rate alone
    assert (~rows["known"]).sum() > 100  # deals still open on the cutoff are in, censored
    assert np.allclose(model.predict(f), model2.predict(features_at(shuffled, cutoff)))


def test_deals_still_open_are_censored_not_dropped(generated):
    crm = generated["crm"]
    day = snapshot_dates(crm, crm.data_end - pd.Timedelta(days=60), crm.data_end)[0]
    # the snapshots of the half-year before the day (all of them would only take longer)
    rows = snapshot_rows(crm, snapshot_dates(crm, day - pd.Timedelta(days=182), day))
    known = label(rows, crm, day)
    estimate = pd.Series(0.123, index=features_at(crm, day).index)
    everything = label(rows, crm, day, estimate)
    still_open = everything[~everything["known"]]
    assert len(everything) > len(known) and len(still_open) == len(everything) - len(known)
    assert (still_open["label"] == 0.123).all()
    assert set(still_open.index) <= set(estimate.index)
    assert (everything["snapshot"] < day).all() and (everything["weight"] == 1).all()


def test_a_loss_back_dated_in_a_later_export_was_open_on_the_earlier_exports(generated):
    """Pipeline clean-ups close old deals as lost with a close date in the past. On the days of
    the exports that still showed such a deal open, it was open: its features are there and its
    outcome is not yet known (using the back-dated close date would leak the loss backwards)."""
    tables = {k: v.copy() for k, v in deal_history.load_crm(generated["db"]).items()}
    h, deals = tables["history"], tables["deals"]
    engaged = deals.set_index("deal_id")["engage_date"]
    lost = set(deals.loc[deals["status"].eq("lost"), "deal_id"])
    last_open = (
        h[h["deal_id"].isin(lost) & h["status"].eq("open")].groupby("deal_id")["as_of"].max()
    )
    # lost deals seen open in an export more than a day after they were engaged
    last_open = last_open[last_open > engaged.reindex(last_open.index) + pd.Timedelta(days=1)]
    assert len(last_open) >= 20
    last_open = last_open.iloc[:20]
    # back-date each loss to the day after the deal was engaged, in the deal and in its history
    back = engaged.reindex(last_open.index) + pd.Timedelta(days=1)
    deals["close_date"] = deals["deal_id"].map(back).fillna(deals["close_date"])
    rows = h["deal_id"].isin(back.index) & h["status"].eq("lost")
    h.loc[rows, "close_date"] = h.loc[rows, "deal_id"].map(back)
    crm = prepare(tables)
    closed_on = crm.deals.set_index("deal_id")["closed_on"]
    for deal_id, day in last_open.items():
        day = pd.Timestamp(day)
        assert deal_id in features_at(crm, day).index, deal_id
        assert deal_id not in outcomes(crm, day).index, deal_id
        assert closed_on[deal_id] > day
