"""The features match a deal's rows by its number, not its id (`crm.prepare`, `features.
open_deals_at`): a hand-made Crm without numbers gets the same rows, activity of a deal the CRM
does not have is ignored, and a day's open deals are read as the history shows them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from scoring.features import deal_numbers, open_deals_at


def test_numbers_worked_out_by_hand_give_the_same_states(generated):
    crm = generated["crm"]
    bare = replace(crm, deals=crm.deals.drop(columns="deal_no"),
                   history=crm.history.drop(columns="deal_no"),
                   activity=crm.activity.drop(columns="deal_no"))  # fmt: skip
    for t in pd.date_range(crm.history["as_of"].min(), crm.data_end, periods=4):
        pd.testing.assert_frame_equal(open_deals_at(crm, t), open_deals_at(bare, t))
    numbered, by_hand = deal_numbers(crm), deal_numbers(bare)
    # the same deal gets the same number in each table, whichever way it was worked out
    for ours, theirs, frame in zip(numbered, by_hand, (crm.deals, crm.history, crm.activity), strict=True):  # fmt: skip
        ids = frame["deal_id"].to_numpy()
        for numbers in (ours, theirs):
            pairs = pd.DataFrame({"id": ids, "no": numbers}).drop_duplicates()
            assert pairs["id"].is_unique and (pairs["no"] >= 0).all()


def test_a_states_row_is_the_deals_last_on_or_before_the_day(generated):
    crm = generated["crm"]
    t = crm.data_end - pd.Timedelta(days=45)
    state = open_deals_at(crm, t)
    h = crm.history[crm.history["as_of"] <= t]
    last = h.groupby("deal_id").tail(1).set_index("deal_id")
    sample = state.index[:: max(1, len(state) // 200)]
    shown = last.reindex(sample)
    known = shown["as_of"].notna().to_numpy()
    assert known.any()
    for c in ("owner", "stage", "value"):
        assert (state.loc[sample, c].to_numpy()[known] == shown[c].to_numpy()[known]).all(), c
    assert (shown.loc[known, "status"] == "open").all()  # a deal closed by then is not open


def test_activity_of_a_deal_the_crm_does_not_have_is_ignored(generated):
    crm = generated["crm"]
    t = crm.data_end
    stranger = pd.DataFrame({"deal_id": ["NOT-A-DEAL"] * 3,
                             "activity_date": [t - pd.Timedelta(days=d) for d in (1, 8, 15)]})  # fmt: skip
    more = pd.concat([crm.activity.drop(columns="deal_no"), stranger], ignore_index=True)
    more = more.sort_values(["deal_id", "activity_date"]).reset_index(drop=True)
    changed = replace(crm, activity=more, deals=crm.deals.drop(columns="deal_no"))
    before, after = open_deals_at(crm, t), open_deals_at(changed, t)
    pd.testing.assert_frame_equal(before, after)
    assert "NOT-A-DEAL" not in after.index and np.isfinite(after["active_weeks_ever"]).any()
