"""The forecast's timing and new deals' win rate are learnt from all of a Crm's deals whatever
the scope, so they are kept with the Crm by day (a refresh forecasts ten scopes): a scope's
forecast is the same whether or not another scope's came first, and a narrowed Crm keeps none."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from dataset import deal_history
from forecasting import inputs
from forecasting.forecast import forecast
from scoring.features import features_at, prepare


def test_a_scope_s_forecast_does_not_depend_on_what_was_forecast_before(generated):
    crm = prepare(deal_history.load_crm(generated["db"]))  # a Crm of this test's own
    t = crm.data_end
    f = features_at(crm, t)
    win = np.linspace(0.05, 0.9, len(f))
    owners = sorted(crm.deals["owner"].dropna().unique())[:3]
    forecast(crm, t, f, win, sigma=0.3, scenarios=500)  # the company first
    assert inputs.fit_timing(crm, t) is inputs.fit_timing(crm, t)
    assert inputs.fit_timing(crm, t, "exp") is not inputs.fit_timing(crm, t)
    earlier = t - pd.Timedelta(days=30)
    assert inputs.new_deal_win_rate(crm, earlier) != inputs.new_deal_win_rate(crm, t)
    after = forecast(crm, t, f, win, sigma=0.3, scenarios=500, owners=owners)
    fresh = prepare(deal_history.load_crm(generated["db"]))
    alone = forecast(fresh, t, f, win, sigma=0.3, scenarios=500, owners=owners)
    pd.testing.assert_frame_equal(after.table, alone.table, check_exact=True)
    assert after.grids == alone.grids
    narrowed = replace(crm, deals=crm.deals.iloc[:10])
    assert not narrowed.memo
