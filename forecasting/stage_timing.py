"""When a won deal closes, by what its stage says: the product/age curve, corrected per deal.

Pure. The time-to-win curve (`forecasting.timing`) knows a deal's product and age, not its stage,
and in a CRM whose deals move through stages the stage decides: on the stages worlds a deal in
Negotiation/Review closes 2-3 times sooner than the curve times it and one in the first stages
much later (`benchmarks/forecast_timing_by_stage.py`); the errors cancel only as far as each
day's stage mix allows, so the forecast's near weeks leaned high.

How: for each of `WITHIN_DAYS` (4 and 13 weeks), a LightGBM model of "won within h days of this
snapshot" on the snapshot rows whose h days had passed by the fit's day (every deal then open,
won, lost or still open: nothing selected by its outcome), started from the curve's own answer
(its log-odds of win probability x the curve's chance within h, as LightGBM's initial score), so
it learns only what the stage and the other features add and stays at the curve where they add
nothing. A deal's chance to close within h if won is that, divided by its win probability.

Only where the CRM was imported over time (`scoring.samples.export_days`): a single export
(MavenTech) has no stage history, and the model then only relearns the curve from windows that
ended h days ago (on MavenTech it timed 35-39% too much within 13 weeks, the curve 17%).
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from forecasting import inputs
from forecasting.timing import KaplanMeier
from forecasting.warped_draws import WITHIN_DAYS
from scoring import model as wm
from scoring.crm import Crm
from scoring.samples import export_days

MIN_ROWS, MIN_WINS = 200, 20  # a horizon's model needs this many rows and wins within it
EPS = 1e-5


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, float), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def curve_within(km: KaplanMeier, frame: pd.DataFrame) -> np.ndarray:
    """(rows, knots): the curve's chance that a won deal closes within each of WITHIN_DAYS, for
    rows of `scoring.features` (their age and product, as `forecasting.inputs.open_deals`)."""
    return km.chances_within(frame["age_days"].fillna(0.0).to_numpy(float),
                             frame["product"].fillna("?").to_numpy(dtype=object))  # fmt: skip


@dataclass
class StageTiming:
    """One booster per knot, with its rows' vocabulary (`WinModel.matrix`); None: too few rows
    or wins, the curve alone there."""

    boosters: list[tuple[lgb.Booster, wm.WinModel] | None]

    def within(self, features: pd.DataFrame, win_prob: np.ndarray, km: KaplanMeier) -> np.ndarray:
        """(deals, knots): each open deal's chance to close within each knot's days if won."""
        p = np.clip(np.asarray(win_prob, float), 0.0, 1.0)
        curve = curve_within(km, features)
        out = curve.copy()
        # the feature matrix once per vocabulary (usually one for both; 1 s at a million deals)
        matrices: list[tuple[dict, np.ndarray]] = []
        for k, fitted in enumerate(self.boosters):
            if fitted is None:
                continue
            booster, stub = fitted
            x = next((m for cats, m in matrices if cats == stub.categories), None)
            if x is None:
                x = stub.matrix(features)
                matrices.append((stub.categories, x))
            raw = booster.predict(x, raw_score=True)
            q = 1.0 / (1.0 + np.exp(-(_logit(p * curve[:, k]) + raw)))
            with np.errstate(divide="ignore", invalid="ignore"):
                out[:, k] = np.where(p > 0, np.clip(q / p, 0.0, 1.0), curve[:, k])
        return np.maximum.accumulate(out, axis=1)


def has_stage_history(crm: Crm) -> bool:
    """The CRM was imported over time: each deal's stage on past days is known."""
    return len(export_days(crm)) >= 2


def fit(crm: Crm, day: pd.Timestamp, rows: pd.DataFrame, model: wm.WinModel,
        km: KaplanMeier) -> StageTiming | None:  # fmt: skip
    """The models as they could have been fitted on `day`, from the snapshot `rows`
    (`scoring.train.all_rows`), the win model and the time-to-win curve of that day; None
    where the CRM has no stage history or no knot has enough to learn from."""
    if not has_stage_history(crm):
        return None
    day = pd.Timestamp(day)
    deals = crm.deals.set_index("deal_id")
    # each row's label parts, win probability and curve once: the 13-week rows are a subset of
    # the 4-week ones
    snap = rows["snapshot"].to_numpy()
    close = deals["closed_on"].reindex(rows.index).to_numpy()
    won = (deals["status"].reindex(rows.index) == "won").to_numpy()
    start_all: np.ndarray | None = None  # log-odds of p x the curve's chance, per row and knot
    boosters: list[tuple[lgb.Booster, wm.WinModel] | None] = []
    for k, h in enumerate(WITHIN_DAYS):
        m = snap <= np.datetime64(day - pd.Timedelta(days=h))
        y = won[m] & (close[m] > snap[m]) & (close[m] <= snap[m] + np.timedelta64(h, "D"))
        if m.sum() < MIN_ROWS or y.sum() < MIN_WINS:
            boosters.append(None)
            continue
        if start_all is None:
            start_all = _logit(model.predict(rows)[:, None] * curve_within(km, rows))
        r = rows[m].assign(label=y.astype(float), weight=1.0, known=True)
        stub, _, check = wm.split(r)
        start = start_all[m, k]
        held = r.index.isin(check.index)

        def data(mask: np.ndarray, stub=stub, r=r, start=start) -> lgb.Dataset:
            return lgb.Dataset(stub.matrix(r[mask]), label=r["label"].to_numpy()[mask],
                               init_score=start[mask], feature_name=list(wm.FEATURES),
                               categorical_feature=list(wm.CATEGORICAL), free_raw_data=False)  # fmt: skip

        params = {**wm.PARAMS, "objective": "binary"}
        if held.any():
            booster = lgb.train(params, data(~held), num_boost_round=wm.MAX_ROUNDS,
                                valid_sets=[data(held)],
                                callbacks=[lgb.early_stopping(wm.PATIENCE, verbose=False)])  # fmt: skip
            booster.model_from_string(booster.model_to_string(num_iteration=booster.best_iteration))
        else:
            booster = lgb.train(params, data(~held), num_boost_round=wm.PATIENCE)
        boosters.append((booster, stub))
    return StageTiming(boosters) if any(b is not None for b in boosters) else None


def fit_shipped(crm: Crm, rows: pd.DataFrame, model: wm.WinModel) -> StageTiming | None:
    """The models beside the shipped win model (`model`, fitted on the snapshot `rows`): as of
    the day after the data's end, with the data's own time-to-win curve."""
    km = inputs.fit_timing(crm, crm.data_end, "km")
    return fit(crm, crm.data_end + pd.Timedelta(days=1), rows, model, km)


def chances(fitted: StageTiming | None, crm: Crm, as_of, features: pd.DataFrame,
            win_prob: np.ndarray) -> np.ndarray | None:  # fmt: skip
    """The open deals' chances to close within each knot if won (`StageTiming.within`, against
    the curve of `as_of`); None where there are no models, no stage history or no deals."""
    if fitted is None or not has_stage_history(crm) or features.empty:
        return None
    return fitted.within(features, win_prob, inputs.fit_timing(crm, pd.Timestamp(as_of), "km"))
