"""Evaluation over time: train as of a cutoff, test on the weeks after it, with baselines.

Pure (plots are in `report`). At each cutoff c the model is trained exactly as it would have been
on day c (`train.fit_at`: snapshots before c, outcomes known by c, deals still open on c censored)
and tested on the snapshots of the 13 weeks from c, labelled with the outcomes known at the data's
end (rows of deals still open then have no label and are left out; a deal open far longer than
any took to close counts as not won, `samples.stale_after`, and its rows once it was stale are
left out: already decided). Cutoffs are placed, where the history allows, so that the test
window ends a label maturity (`samples.maturity_days`) before the data's end, where almost every
test deal has closed. Every snapshot row weighs the same: the test
population is the deals open on those days, as they were scored.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
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
from scoring.crm import Crm
from scoring.features import CATEGORICAL, NUMERIC
from scoring.samples import export_days, first_snapshot, label, maturity_days, stale_after

TEST_WEEKS = 13
SHIPPED = "shipped (blended)"
MIN_GAIN = 0.005  # the model must cut the base rate's log loss by 0.5% to be used at all


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


def expected_auc(p: np.ndarray, q: np.ndarray) -> float:
    """The AUC that scores `p` are expected to reach when each outcome is drawn with its true
    probability `q`: P(p_i > p_j | i won, j lost), ties counted half. With p = q it is the best
    AUC any score can expect; the gap between the two is how much ranking skill is missing."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    order = np.argsort(p, kind="stable")
    p, q = p[order], q[order]
    groups = np.r_[0, np.flatnonzero(np.diff(p)) + 1]
    pos = np.add.reduceat(q, groups)
    neg = np.add.reduceat(1 - q, groups)
    below = np.cumsum(neg) - neg
    pairs = (pos * (below + 0.5 * neg)).sum() - 0.5 * (q * (1 - q)).sum()
    total = q.sum() * (1 - q).sum() - (q * (1 - q)).sum()
    return float(pairs / total) if total > 0 else float("nan")


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
    with _columns_it_lacks():
        pipe.fit(x, train["label"], logisticregression__sample_weight=train["weight"])

    def predict(rows: pd.DataFrame) -> np.ndarray:
        with _columns_it_lacks():
            x = rows[[*NUMERIC, *CATEGORICAL]].astype({c: object for c in CATEGORICAL})
            return pipe.predict_proba(x)[:, 1]

    return predict


@contextlib.contextmanager
def _columns_it_lacks() -> Iterator[None]:
    """A column the CRM does not have (MavenTech: no stage history, sector, deal type or lead
    source) is skipped, as it should be; sklearn's warning about it only filled the admin's
    terminal, at every training."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipping features without any observed values")
        yield


def _logistic(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray | None:
    known = train[train["known"]]
    if len(known) < 50 or known["label"].nunique() < 2 or test.empty:
        return None
    return logistic_baseline(known)(test)


def default_cutoffs(crm: Crm, n: int = 4) -> list[pd.Timestamp]:
    """n cutoffs over the later data. Where the history is long enough, the last test window
    ends a label maturity before the data's end; otherwise (MavenTech) it ends at the end."""
    start = first_snapshot(crm) + pd.Timedelta(days=90)
    last = crm.data_end - pd.Timedelta(weeks=TEST_WEEKS)
    matured = last - pd.Timedelta(days=maturity_days(crm))
    if (matured - start).days >= 60:
        start, last = start + (matured - start) * 0.4, matured
    if last <= start:
        return []
    span = (last - start).days
    days = [(start + pd.Timedelta(days=int(span * f))).normalize() for f in np.linspace(0, 1, n)]
    return snap_to_exports(crm, days)


def snap_to_exports(crm: Crm, days: list[pd.Timestamp]) -> list[pd.Timestamp]:
    """Each day moved back to the latest export on or before it (where exports were imported
    over time): a model is trained, and deals are scored, on the day of an export, when what the
    CRM showed is known exactly; on a day between exports the activity would look days older."""
    exports = export_days(crm)
    if not len(exports):
        return days
    out = []
    for d in days:
        i = np.searchsorted(exports, np.datetime64(d), side="right") - 1
        snapped = pd.Timestamp(exports[max(i, 0)])
        if not out or snapped > out[-1]:
            out.append(snapped)
    return out


def window_rows(crm: Crm, rows: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Snapshot rows of the 13 weeks from `cutoff`, labelled with the outcomes known at the end
    (rows of deals still open then are left out), but for rows of deals already stale on their
    day (`samples.stale_after`, as known on the cutoff): their outcome was known when they were
    scored, and counting them would credit the model with skill at what anyone can see (on
    MavenTech 6-31% of a cutoff's rows; AUC 0.82 with them, 0.75 without)."""
    end = cutoff + pd.Timedelta(weeks=TEST_WEEKS)
    window = rows[(rows["snapshot"] >= cutoff) & (rows["snapshot"] < end)]
    limit = stale_after(crm, cutoff)
    if limit is not None:
        window = window[~(window["age_days"] >= limit)]
    return label(window, crm, crm.data_end + pd.Timedelta(days=1))


@dataclass
class CutoffResult:
    cutoff: pd.Timestamp
    train_rows: int
    train_deals: int
    test_rows: int
    test_deals: int
    by_method: dict[str, dict[str, float]]
    model: wm.WinModel  # trained as of the cutoff (blend 1: the booster alone)
    test: pd.DataFrame  # test rows with each method's prediction in columns p_<method>
    blend: float = 1.0  # the shipped method's weight of the model here (chosen on other cutoffs)


def evaluate_cutoff(crm: Crm, cutoff: pd.Timestamp, rows: pd.DataFrame, fit_at) -> CutoffResult:
    """Train as of `cutoff` with `fit_at(crm, cutoff, rows)` and test on the weeks after it."""
    model, train = fit_at(crm, cutoff, rows)
    test = window_rows(crm, rows, cutoff).copy()
    preds = {
        "base rate": np.full(len(test), model.base_rate),
        "CRM stage probability": test["stage_probability"].to_numpy() / 100.0,
        "logistic regression": _logistic(train, test),
        "LightGBM": model.predict(test),
    }
    y, w = test["label"].to_numpy(), test["weight"].to_numpy()
    by_method = {}
    for name, p in preds.items():
        if p is None or np.isnan(p).any():
            continue
        by_method[name] = metrics(y, p, w)
        test[f"p_{name}"] = p
    return CutoffResult(
        cutoff=cutoff,
        train_rows=len(train),
        train_deals=train.index.nunique(),
        test_rows=len(test),
        test_deals=test.index.nunique(),
        by_method=by_method,
        model=model,
        test=test,
    )


def blend_weight(results: list[CutoffResult]) -> float:
    """The weight w of the model in w * model + (1 - w) * base rate with the least log loss over
    these cutoffs' test rows (0 when there are none, or when it gains less than MIN_GAIN)."""
    tests = [r.test for r in results if len(r.test)]
    if not tests:
        return 0.0
    t = pd.concat(tests)
    y, w = t["label"].to_numpy(), t["weight"].to_numpy()
    p, base = t["p_LightGBM"].to_numpy(), t["p_base rate"].to_numpy()
    grid = [(wm.log_loss(y, b * p + (1 - b) * base, w), b) for b in np.linspace(0, 1, 21)]
    best, weight = min(grid)
    # a gain this small is noise from one set of weeks to the next: keep the base rate
    return float(weight) if best < grid[0][0] * (1 - MIN_GAIN) else 0.0


def add_shipped(results: list[CutoffResult]) -> None:
    """The shipped method at each cutoff: the blend chosen on the *other* cutoffs (on the one
    cutoff itself where there is only one), so its figures are out of sample."""
    for k, r in enumerate(results):
        others = [o for j, o in enumerate(results) if j != k] or [r]
        b = r.blend = blend_weight(others)
        p = b * r.test["p_LightGBM"].to_numpy() + (1 - b) * r.test["p_base rate"].to_numpy()
        r.test[f"p_{SHIPPED}"] = p
        r.by_method[SHIPPED] = metrics(r.test["label"].to_numpy(), p, r.test["weight"].to_numpy())


def open_deal_check(r: CutoffResult, method: str = SHIPPED) -> dict[str, float]:
    """The deals open on the cutoff day, as scored then, against what became of them (those
    still open at the data's end left out): expected wins and value-weighted pipeline (sum of
    value x p) next to the actual wins and won value. A deal stale by then (`samples.stale_after`)
    counts as not won."""
    day = r.test[r.test["snapshot"] == r.test["snapshot"].min()] if len(r.test) else r.test
    if day.empty or f"p_{method}" not in day:
        return {}
    p, y, v = day[f"p_{method}"], day["label"], day["value_used"].fillna(0)
    return {
        "deals": len(day),
        "expected_wins": float(p.sum()),
        "wins": float(y.sum()),
        "expected_value": float((v * p).sum()),
        "won_value": float((v * y).sum()),
    }


def truth_check(p: np.ndarray, q: np.ndarray, value: np.ndarray) -> dict[str, float]:
    """Probabilities `p` against known true probabilities `q` (generated data) of the same
    deals: expected AUCs and their gap, ECE against the truth (10 bins), means, and the value
    weighted pipeline (sum of value x p) against the truth's."""
    p, q, v = (np.asarray(a, float) for a in (p, q, value))
    v = np.nan_to_num(v)
    truth_value = float((v * q).sum())
    return {
        "deals": len(p),
        "auc_model": expected_auc(p, q),
        "auc_truth": expected_auc(q, q),
        "auc_gap": expected_auc(q, q) - expected_auc(p, q),
        "ece_truth": ece(q, p, np.ones(len(p))),
        "mean_p": float(p.mean()),
        "mean_truth": float(q.mean()),
        "value_gap": float((v * p).sum() / truth_value - 1) if truth_value else float("nan"),
    }


def summary_table(results: list[CutoffResult]) -> pd.DataFrame:
    """Mean of each metric over the cutoffs, one row per method."""
    frames = [
        pd.DataFrame(r.by_method).T.assign(cutoff=r.cutoff.date().isoformat()) for r in results
    ]
    if not frames:
        return pd.DataFrame(columns=["auc", "log_loss", "brier", "ece"])
    allc = pd.concat(frames)
    return allc.groupby(level=0, sort=False)[["auc", "log_loss", "brier", "ece"]].mean()
