"""A deal still open when the model is trained is labelled with the model's estimate for its
latest state: as the last export showed it, not as a later day without an export would make it
look (a day with no export looks like a day without activity)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring.features import features_at
from scoring.samples import maturity_days
from scoring.train import all_rows, fit_at, latest_day


def test_the_latest_state_is_the_last_export_on_or_before_the_day(generated):
    crm = generated["crm"]
    exports = np.sort(crm.history["as_of"].unique())
    assert len(exports) > 10
    end = crm.data_end
    assert latest_day(crm, end + pd.Timedelta(days=1)) == end
    assert latest_day(crm, end + pd.Timedelta(days=30)) == end
    a, b = pd.Timestamp(exports[-5]), pd.Timestamp(exports[-4])
    assert (b - a).days > 1
    assert latest_day(crm, a) == a
    assert latest_day(crm, a + (b - a) / 2) == a  # between exports: the one before
    first = pd.Timestamp(exports[0])
    assert latest_day(crm, first - pd.Timedelta(days=3)) == first - pd.Timedelta(days=3)


def test_training_a_few_days_after_the_last_export_changes_nothing(generated):
    """No export came after the data's end, so nothing is known on those days that was not
    known at its end: the model trained on any of them is the same model. The later day is one
    where a weekly snapshot falls between the two days' label maturity lines: the first pass
    fits the snapshots a maturity before the day, and counted from the later day one more would
    be in it (on a 10,000-deal world the model changed so, 5 days after the end)."""
    crm = generated["crm"]
    end = crm.data_end
    rows = all_rows(crm)
    rows = rows[rows["snapshot"] > end - pd.Timedelta(weeks=40)]  # small and quick
    snapshots = np.sort(rows["snapshot"].unique())

    def matured(d: int) -> int:
        day = end + pd.Timedelta(days=d)
        line = day - pd.Timedelta(days=maturity_days(crm, day))
        return int((snapshots <= np.datetime64(line)).sum())

    later = next(d for d in range(2, 60) if matured(d) != matured(1))
    models = [fit_at(crm, end + pd.Timedelta(days=d), rows, passes=2, step_passes=1)[0]
              for d in (1, later)]  # fmt: skip
    latest = features_at(crm, end)
    np.testing.assert_array_equal(models[0].predict(latest), models[1].predict(latest))
