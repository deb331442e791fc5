"""Evaluation over time: train before a cutoff, test after it, several cutoffs, with baselines.

Pure (plots are in `report`). Features are strictly point-in-time (`features`). Labels are the
deals' eventual outcomes, as in the reference study of modeling-notes.md; a snapshot row whose deal
had not closed by the data's end has no label and is left out. At each cutoff c:
- training rows: snapshots before c; the last 25% of their days calibrate (see `model`);
- test rows: snapshots in [c, c + 13 weeks).
Near the end of the data only the deals that closed fast have a label, and they are not like the
others, so cutoffs are placed, where the history allows, so that the test window ends a label
maturity (`features.maturity_days`) before the data's end; and the shipped model leaves out the
snapshots of that last stretch. Metrics are weighted 1/rows-per-deal, like the training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from scoring import model as wm
from scoring.features import (
    CATEGORICAL,
    NUMERIC,
    Crm,
    maturity_days,
    snapshot_dates,
    training_rows,
)

TEST_WEEKS = 13
CALIBRATION_SHARE = 0.25
WARMUP_DAYS = 28  # snapshots start this long after the first engagement


def ece(y: np.ndarray, p: np.ndarray, w: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over equal-width probability bins (weighted)."""
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total, err = w.sum(), 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            err += (
                w[m].sum()
                / total
                * abs(np.average(p[m], weights=w[m]) - np.average(y[m], weights=w[m]))
            )
    return float(err)


def metrics(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> dict[str, float]:
    auc = roc_auc_score(y, p, sample_weight=w) if len(np.unique(y)) == 2 else float("nan")
    return {
        "auc": float(auc),
        "log_loss": wm.log_loss(y, p, w),
        "brier": float(np.average((p - y) ** 2, weights=w)),
        "ece": ece(y, p, w),
    }


def reliability(y: np.ndarray, p: np.ndarray, w: np.ndarray, bins: int = 10) -> pd.DataFrame:
    idx = np.minimum((p * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        m = idx == b
        if m.any():
            rows.append(
                {
                    "bin": b,
                    "predicted": float(np.average(p[m], weights=w[m])),
                    "observed": float(np.average(y[m], weights=w[m])),
                    "weight": float(w[m].sum()),
                }
            )
    return pd.DataFrame(rows)


def logistic_baseline(train: pd.DataFrame):
    """One-hot categoricals + standardised numerics (missing imputed), plain logistic regression."""
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True),
                                  StandardScaler()), list(NUMERIC)),
            ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="?"),
                                  OneHotEncoder(handle_unknown="ignore")), list(CATEGORICAL)),
        ]
    )  # fmt: skip
    pipe = make_pipeline(pre, LogisticRegression(max_iter=2000, C=1.0))
    x = train[[*NUMERIC, *CATEGORICAL]].astype({c: object for c in CATEGORICAL})
    pipe.fit(x, train["label"], logisticregression__sample_weight=train["weight"])
    return lambda rows: pipe.predict_proba(
        rows[[*NUMERIC, *CATEGORICAL]].astype({c: object for c in CATEGORICAL})
    )[:, 1]


def default_cutoffs(crm: Crm, n: int = 4) -> list[pd.Timestamp]:
    """n cutoffs over the later data. Where the history is long enough, the last test window
    ends a label maturity before the data's end; otherwise (MavenTech) it ends at the end."""
    start = first_snapshot(crm) + pd.Timedelta(days=90)
    last = crm.data_end - pd.Timedelta(weeks=TEST_WEEKS)
    matured = last - pd.Timedelta(days=maturity_days(crm))
    if (matured - start).days >= 60:
        start, last = start + (matured - start) * 0.4, matured
    span = (last - start).days
    return [(start + pd.Timedelta(days=int(span * f))).normalize() for f in np.linspace(0, 1, n)]


def split_for_training(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(booster rows, calibration rows): the latest share of snapshot days calibrates."""
    days = np.sort(rows["snapshot"].unique())
    first = days[min(len(days) - 1, max(1, int(len(days) * (1 - CALIBRATION_SHARE))))]
    return rows[rows["snapshot"] < first], rows[rows["snapshot"] >= first]


def first_snapshot(crm: Crm) -> pd.Timestamp:
    closed = crm.deals.loc[crm.deals["status"].isin(["won", "lost"]), "close_date"]
    return pd.Timestamp(closed.min()) + pd.Timedelta(days=WARMUP_DAYS)


def shipping_rows(crm: Crm) -> pd.DataFrame:
    """Rows for the model deployed at the data's end: every snapshot up to a label maturity
    before the end (where that leaves at least 30% of them), labels as known at the end."""
    mature_until = crm.data_end - pd.Timedelta(days=maturity_days(crm))
    days = snapshot_dates(crm, first_snapshot(crm), crm.data_end)
    kept = [d for d in days if d <= mature_until]
    return training_rows(crm, kept if len(kept) >= 0.3 * len(days) else days)


def rows_for_cutoff(crm: Crm, cutoff: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    train_days = snapshot_dates(crm, first_snapshot(crm), cutoff - pd.Timedelta(days=1))
    test_days = snapshot_dates(crm, cutoff, cutoff + pd.Timedelta(weeks=TEST_WEEKS, days=-1))
    return training_rows(crm, train_days), training_rows(crm, test_days)


@dataclass
class CutoffResult:
    cutoff: pd.Timestamp
    train_rows: int
    train_deals: int
    test_rows: int
    test_deals: int
    by_method: dict[str, dict[str, float]]
    shipped: wm.WinModel
    test: pd.DataFrame  # test rows with each method's prediction in columns p_<method>


def evaluate_cutoff(crm: Crm, cutoff: pd.Timestamp, truth: pd.Series | None = None) -> CutoffResult:
    train, test = rows_for_cutoff(crm, cutoff)
    fit_rows, cal_rows = split_for_training(train)
    model = wm.fit(fit_rows, cal_rows)
    base = float(np.average(train["label"], weights=train["weight"]))
    preds = {
        "base rate": np.full(len(test), base),
        "product rate (smoothed)": test["product_win_rate"].to_numpy(),
        "rep rate (smoothed)": test["rep_win_rate"].to_numpy(),
        "logistic regression": logistic_baseline(train)(test),
        "LightGBM (uncalibrated)": wm._sigmoid(model.raw(model.matrix(test))),
        "shipped (calibrated, blended)": model.predict(test),
    }
    if truth is not None:
        preds["true probability (generator)"] = truth.reindex(test.index).to_numpy()
    y, w = test["label"].to_numpy(), test["weight"].to_numpy()
    test = test.copy()
    by_method = {}
    for name, p in preds.items():
        by_method[name] = metrics(y, p, w)
        test[f"p_{name}"] = p
    return CutoffResult(
        cutoff=cutoff,
        train_rows=len(train),
        train_deals=train.index.nunique(),
        test_rows=len(test),
        test_deals=test.index.nunique(),
        by_method=by_method,
        shipped=model,
        test=test,
    )


def summary_table(results: list[CutoffResult]) -> pd.DataFrame:
    """Mean of each metric over the cutoffs, one row per method."""
    frames = [
        pd.DataFrame(r.by_method).T.assign(cutoff=r.cutoff.date().isoformat()) for r in results
    ]
    allc = pd.concat(frames)
    return allc.groupby(level=0, sort=False)[["auc", "log_loss", "brier", "ece"]].mean()
