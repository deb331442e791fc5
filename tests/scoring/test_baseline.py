"""The evaluation's logistic baseline on a CRM that lacks some columns (as MavenTech lacks stage
history, sector, deal type and lead source): fitted without a word on the admin's terminal."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from scoring.evaluate import logistic_baseline
from scoring.features import CATEGORICAL, NUMERIC


def test_columns_the_crm_lacks_are_skipped_quietly():
    rng = np.random.default_rng(0)
    n = 400
    rows = pd.DataFrame({c: rng.normal(size=n) for c in NUMERIC})
    for c in CATEGORICAL:
        rows[c] = rng.choice(["a", "b"], n)
    rows[CATEGORICAL[0]] = np.nan  # a column this CRM does not have
    rows[NUMERIC[0]] = np.nan
    rows["label"] = (rows[NUMERIC[1]] + rng.normal(size=n) > 0).astype(float)
    rows["weight"] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        predict = logistic_baseline(rows)
        p = predict(rows)
    assert ((p > 0) & (p < 1)).all()
    assert p[rows["label"] == 1].mean() > p[rows["label"] == 0].mean() + 0.1
