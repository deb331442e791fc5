"""The passes of a training bin the same rows once (`model.Binned`): a fit on relabelled rows
with the kept datasets is the fresh fit's booster to the bit, and a fit on other rows is never
given the kept datasets."""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring import model as wm
from scoring.features import CATEGORICAL, NUMERIC

RNG = np.random.default_rng(3)


def _rows(n_deals: int = 300, per_deal: int = 4, seed: int = 0) -> pd.DataFrame:
    """Snapshot-like rows: a few per deal, numeric features with gaps, categories, soft labels
    for the deals still open (`known` False) and outcomes for the others."""
    rng = np.random.default_rng(seed)
    n = n_deals * per_deal
    frame = pd.DataFrame({c: rng.normal(size=n) for c in NUMERIC})
    frame.loc[rng.random(n) < 0.1, NUMERIC[0]] = np.nan
    for c in CATEGORICAL:
        frame[c] = rng.choice(["a", "b", "c", None], size=n)
    signal = frame[NUMERIC[1]].to_numpy() + (frame[CATEGORICAL[0]] == "a").to_numpy()
    known = rng.random(n) < 0.7
    outcome = (rng.random(n) < 1 / (1 + np.exp(-signal))).astype(float)
    frame["label"] = np.where(known, outcome, rng.uniform(0.2, 0.8, n))
    frame["weight"] = 1.0
    frame["known"] = known
    frame.index = pd.Index(np.repeat([f"D{i}" for i in range(n_deals)], per_deal), name="deal_id")
    return frame


def _relabelled(rows: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The same rows with other estimates for the deals still open, as the next pass gives."""
    rng = np.random.default_rng(seed)
    out = rows.copy()
    out.loc[~out["known"], "label"] = rng.uniform(0.1, 0.9, int((~out["known"]).sum()))
    out["weight"] = rng.uniform(0.5, 1.5, len(out))
    return out


def _same_booster(a: wm.WinModel, b: wm.WinModel) -> bool:
    return a.booster.model_to_string() == b.booster.model_to_string()


def test_relabelled_rows_give_the_fresh_fits_booster():
    rows = _rows()
    binned = wm.Binned()
    first = wm.fit(rows, binned=binned)
    assert _same_booster(first, wm.fit(rows))
    kept = binned.datasets
    for seed in (1, 2):
        again = _relabelled(rows, seed)
        reused = wm.fit(again, binned=binned)
        assert binned.datasets is kept  # not binned again
        assert _same_booster(reused, wm.fit(again))
        x = again.iloc[:200]
        assert np.array_equal(reused.predict(x), wm.fit(again).predict(x))


def test_other_rows_are_binned_anew():
    rows, other = _rows(seed=0), _rows(seed=5)
    binned = wm.Binned()
    wm.fit(rows, binned=binned)
    kept = binned.datasets
    fitted = wm.fit(other, binned=binned)
    assert binned.datasets is not kept
    assert _same_booster(fitted, wm.fit(other))
    # one changed cell is other rows too
    changed = rows.copy()
    changed.iloc[7, changed.columns.get_loc(NUMERIC[2])] += 1.0
    kept = binned.datasets
    assert _same_booster(wm.fit(changed, binned=binned), wm.fit(changed))
    assert binned.datasets is not kept


def test_other_parameters_are_binned_anew():
    rows = _rows()
    binned = wm.Binned()
    wm.fit(rows, binned=binned)
    kept = binned.datasets
    assert _same_booster(
        wm.fit(rows, {"max_bin": 15}, binned=binned), wm.fit(rows, {"max_bin": 15})
    )
    assert binned.datasets is not kept
