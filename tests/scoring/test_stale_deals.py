"""Deals open far longer than any deal took to close never will (MavenTech's old "Engaging"
deals): counted as not won from the day they turned stale, they label the model's training
rows, so the model no longer scores a deal open a year at the pipeline's mean chance."""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring.crm import Crm
from scoring.evaluate import window_rows
from scoring.samples import STALE_AFTER, outcomes, stale_after, step_labels

DAY = pd.Timestamp("2024-06-01")


def _crm(open_ages: list[int], extra: pd.DataFrame | None = None) -> Crm:
    """200 deals closed after 10-100 days (even ones won), engaged in 2023, deals still open on
    DAY at `open_ages` days, and `extra` deals."""
    rng = np.random.default_rng(4)
    took = np.r_[rng.integers(10, 100, 199), 100]
    engage = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 300, 200), unit="D")
    closed = pd.DataFrame({"deal_id": [f"c{i}" for i in range(200)], "engage_date": engage,
                           "closed_on": engage + pd.to_timedelta(took, unit="D"),
                           "status": np.where(np.arange(200) % 2 == 0, "won", "lost")})  # fmt: skip
    still = pd.DataFrame({"deal_id": [f"o{a}" for a in open_ages],
                          "engage_date": DAY - pd.to_timedelta(open_ages, unit="D"),
                          "closed_on": pd.NaT, "status": "open"})  # fmt: skip
    deals = pd.concat([closed, still, extra], ignore_index=True)
    return Crm(deals, *[pd.DataFrame()] * 5, data_end=DAY)


def test_a_deal_open_far_longer_than_any_close_counts_as_not_won():
    crm = _crm([30, 140, 160, 400])
    limit = stale_after(crm, DAY)
    assert limit == int(np.ceil(STALE_AFTER * 101))  # the longest close took 100 days
    got = outcomes(crm, DAY)
    assert got["o400"] == 0.0 and got["o160"] == 0.0  # past the limit: known, not won
    assert "o140" not in got.index and "o30" not in got.index  # still waiting for an outcome
    closed = crm.deals[crm.deals["deal_id"].str.startswith("c")]
    assert (got[closed["deal_id"]] == closed["status"].eq("won").astype(float).to_numpy()).all()
    # the 400-day deal is stale from the day it has been open as long as that day's limit
    engaged = DAY - pd.Timedelta(days=400)
    days = pd.date_range(engaged, DAY)
    first = next(d for d in days if stale_after(crm, d) is not None)
    assert (first - engaged).days == stale_after(crm, first)
    assert outcomes(crm, first)["o400"] == 0.0
    assert "o400" not in outcomes(crm, first - pd.Timedelta(days=1)).index


def test_a_deal_stale_on_a_day_and_won_later_is_not_won_on_that_day():
    """What a model trained on a day learns must not know the future: on that day the deal was
    stale (open 183 days, the longest close 100); once won, at 232 days, it is a win."""
    late = pd.DataFrame({"deal_id": ["late"], "engage_date": [pd.Timestamp("2023-10-01")],
                         "closed_on": [pd.Timestamp("2024-05-20")], "status": ["won"]})  # fmt: skip
    crm = _crm([30], late)
    day = pd.Timestamp("2024-04-01")
    assert stale_after(crm, day) == 152
    assert outcomes(crm, day)["late"] == 0.0
    assert outcomes(crm, DAY)["late"] == 1.0 and stale_after(crm, DAY) is None


def test_nothing_is_stale_where_no_deal_was_seen_open_that_long():
    crm = _crm([30, 140])
    assert stale_after(crm, DAY) is None
    assert set(outcomes(crm, DAY).index) == {f"c{i}" for i in range(200)}


def test_a_training_row_whose_deal_turns_stale_within_its_horizon_is_labelled_not_won():
    crm = _crm([30, 400])
    limit = stale_after(crm, DAY)
    stale_on = DAY - pd.Timedelta(days=400 - limit)
    snaps = [stale_on - pd.Timedelta(weeks=2), stale_on - pd.Timedelta(weeks=1), stale_on,
             stale_on + pd.Timedelta(weeks=1)]  # fmt: skip
    rows = pd.DataFrame({"snapshot": snaps}, index=pd.Index(["o400"] * 4, name="deal_id"))
    out = step_labels(rows, crm, DAY, 2, np.full(4, 0.6), pd.Series({"o400": 0.6}))
    # two snapshots before it turned stale the horizon reaches its stale day: a known 0
    assert out["label"].tolist()[:3] == [0.0, 0.0, 0.0] and out["known"].all()
    assert len(out) == 4


def test_the_evaluation_leaves_out_rows_of_deals_already_stale_on_their_day():
    """Their outcome was known when they were scored; a deal that went stale after its row was
    scored is a real miss, labelled not won."""
    crm = _crm([30, 160, 400])
    cutoff = DAY - pd.Timedelta(days=70)
    assert stale_after(crm, cutoff) == 152
    rows = pd.DataFrame(
        {"snapshot": [cutoff] * 3 + [DAY - pd.Timedelta(days=21)], "age_days": [50, 90, 330, 9]},
        index=pd.Index(["c0", "o160", "o400", "o30"], name="deal_id"),
    )
    out = window_rows(crm, rows, cutoff)
    assert out.index.tolist() == ["c0", "o160"]  # o30: still open, no outcome yet
    assert out["label"].tolist() == [1.0, 0.0]
