"""Win probability: LightGBM on point-in-time snapshot rows, blended with the base rate.

Pure (no file I/O; see `artifact` for saving). Why each step:
- LightGBM with the cross-entropy objective, whose labels may lie between 0 and 1: a deal still
  open when the model is trained carries an estimated label (see `samples`), a closed one its
  outcome. Early stopping on a held-out fifth of the *deals* (all rows of a deal on one side), so
  a deal seen in training never scores its own rows.
- Every snapshot row weighs the same: the model is fitted to the deals open on a day, the
  population it scores (the deals still open are the slow ones; weighting each deal once would
  fit it to the closed deals instead, which over-represent the quick wins).
- Blend with the base rate: p = w * model + (1 - w) * base, w in [0, 1] chosen on past cutoffs
  (`train`); where the data carry no signal (MavenTech) w goes to 0 and the shipped model is the
  base rate, never worse than it. `skill` (log-loss gain over the base rate on those cutoffs)
  says how much the model knows, and the messages say it in words.
- `Calibrator` (Platt or isotonic) remains for models that need one; the default is the
  booster's own probability.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from scoring.crm import positions
from scoring.features import CATEGORICAL, FEATURES, NUMERIC

PARAMS = {
    "objective": "cross_entropy",
    "learning_rate": 0.05,
    "num_leaves": 7,
    "min_data_in_leaf": 40,
    "min_data_per_group": 40,
    "cat_smooth": 20,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 5.0,
    "verbose": -1,
    "deterministic": True,
    "extra_trees": True,  # random split points: measured smaller AUC gaps to the truth on both generated worlds
    "force_row_wise": True,
    "seed": 11,
    "num_threads": 2,
}
MAX_ROUNDS = 400
KINDS = ("platt", "isotonic")
EPS = 1e-6
HOLDOUT_SHARE = 0.2  # of the deals, for early stopping
PATIENCE = 30  # rounds without improvement on the held-out deals before stopping


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def log_loss(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> float:
    p = np.clip(p, EPS, 1 - EPS)
    losses = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    return float(np.average(losses, weights=w))


@dataclass(frozen=True)
class Calibrator:
    """Maps the booster's raw score (log-odds) to a probability."""

    kind: str = "identity"  # identity | platt | isotonic
    a: float = 1.0
    b: float = 0.0
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()
    shift: float = 0.0  # log-odds added after calibration (see `recentre`)

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        if self.kind == "identity":
            p = _sigmoid(raw)
        elif self.kind == "platt":
            p = _sigmoid(self.a * raw + self.b)
        else:
            p = np.interp(raw, self.x, self.y)
        return _sigmoid(_logit(p) + self.shift) if self.shift else p

    def recentre(self, raw: np.ndarray, w: np.ndarray, target: float) -> Calibrator:
        """Shift the calibrated log-odds so that their weighted mean is `target`: the shape of
        the calibration comes from the later slice, its level from all training rows."""
        base = _logit(replace(self, shift=0.0)(raw))
        lo, hi = -4.0, 4.0
        for _ in range(50):
            mid = (lo + hi) / 2
            if np.average(_sigmoid(base + mid), weights=w) < target:
                lo = mid
            else:
                hi = mid
        return replace(self, shift=float((lo + hi) / 2))

    @staticmethod
    def fit(kind: str, raw: np.ndarray, y: np.ndarray, w: np.ndarray) -> Calibrator:
        if kind == "platt":
            lr = LogisticRegression(C=1e6).fit(raw.reshape(-1, 1), y, sample_weight=w)
            return Calibrator("platt", a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.01, y_max=0.99)
        iso.fit(raw, y, sample_weight=w)
        return Calibrator(
            "isotonic",
            x=tuple(float(v) for v in iso.X_thresholds_),
            y=tuple(float(v) for v in iso.y_thresholds_),
        )


@dataclass
class WinModel:
    """Booster + calibrator + blend with the base rate, and the vocabulary of its categories."""

    booster: lgb.Booster
    calibrator: Calibrator
    blend: float
    base_rate: float
    categories: dict[str, list[str]]
    skill: float  # 1 - logloss(model) / logloss(base rate) on the calibration slice
    info: dict = field(default_factory=dict)

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows as the float matrix LightGBM was trained on (categories as codes, unknown NaN).
        Column-major: each feature is written once into its column, where stacking columns
        into rows transposed them (0.78 s of a million deals' 31 features, against 0.20 s), and
        LightGBM reads a whole matrix of either layout without a copy and predicts the same from
        both (a slice of rows is neither layout: it reads a copy of it)."""
        x = np.empty((len(frame), len(NUMERIC) + len(CATEGORICAL)), order="F")
        for i, c in enumerate(NUMERIC):
            x[:, i] = frame[c].to_numpy(dtype=float)
        for i, c in enumerate(CATEGORICAL, start=len(NUMERIC)):
            # a value the model never saw (a new product, a new rep) is unknown: NaN, not an
            # error (pandas is deprecating Categorical's silent NaN for such values)
            codes = positions(frame[c], self.categories[c])
            x[:, i] = np.where(codes < 0, np.nan, codes)
        return x

    def raw(self, x: np.ndarray) -> np.ndarray:
        if self.booster is None:  # too little history for a model: the base rate alone
            return np.zeros(len(x))
        return self.booster.predict(x, raw_score=True)

    def from_raw(self, raw: np.ndarray) -> np.ndarray:
        return self.blend * self.calibrator(raw) + (1 - self.blend) * self.base_rate

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.from_raw(self.raw(self.matrix(frame)))

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """SHAP values in raw-score space (LightGBM's TreeSHAP): (n, features + 1), last = bias."""
        if self.booster is None:
            return np.zeros((len(x), len(FEATURES) + 1))
        return self.booster.predict(x, pred_contrib=True)

    @property
    def confidence(self) -> str:
        if self.blend < 0.05 or self.skill < 0.01:
            return "low"
        return "medium" if self.skill < 0.08 else "high"


def vocabulary(frame: pd.DataFrame) -> dict[str, list[str]]:
    return {c: sorted(frame[c].dropna().astype(str).unique().tolist()) for c in CATEGORICAL}


def _dataset(model_stub: WinModel, rows: pd.DataFrame) -> lgb.Dataset:
    return lgb.Dataset(
        model_stub.matrix(rows),
        label=rows["label"].to_numpy(),
        weight=rows["weight"].to_numpy(),
        feature_name=list(FEATURES),
        categorical_feature=list(CATEGORICAL),
        free_raw_data=False,
    )


def holdout_deals(rows: pd.DataFrame, share: float = HOLDOUT_SHARE, seed: int = 11) -> np.ndarray:
    """Mask of the rows whose deal is held out (a fixed share of the deals, by a hash-free
    draw from `seed`, so the same rows give the same split)."""
    deals = np.sort(rows.index.unique().to_numpy().astype(str))
    rng = np.random.default_rng(seed)
    held = set(deals[rng.random(len(deals)) < share])
    return rows.index.astype(str).isin(held)


def split(rows: pd.DataFrame) -> tuple[WinModel, pd.DataFrame, pd.DataFrame]:
    """(a stub with the rows' vocabulary, the rows to fit on, the rows to stop on): a held-out
    share of the deals, of which the rows with a real outcome (estimated labels are smooth in
    the features and never stop improving). No held-out rows where the split leaves nothing to
    fit on. Shared by the fit here and the one on a Dask cluster (`scoring.dask_fit`)."""
    stub = WinModel(None, Calibrator(), 1.0, 0.5, vocabulary(rows), 0.0)
    held = holdout_deals(rows)
    if held.all() or not held.any() or rows.loc[~held, "label"].nunique() < 2:
        held = np.zeros(len(rows), dtype=bool)
    check = rows[held & rows.get("known", pd.Series(True, index=rows.index)).to_numpy()]
    return stub, rows[~held], check


def fitted(booster: lgb.Booster, best: int, rows: pd.DataFrame, stub: WinModel) -> WinModel:
    """The model of `booster` cut to its first `best` rounds, with the base rate of `rows`."""
    booster.model_from_string(booster.model_to_string(num_iteration=best))
    base = float(np.average(rows["label"], weights=rows["weight"]))
    return WinModel(
        booster=booster,
        calibrator=Calibrator(),
        blend=1.0,
        base_rate=base,
        categories=stub.categories,
        skill=0.0,
        info={"rounds": int(best)},
    )


def fit(rows: pd.DataFrame, params: dict | None = None) -> WinModel:
    """Fit the booster on `rows` (features, `label` in [0, 1], `weight`), early-stopped on a
    held-out share of the deals. The blend with the base rate is set by the caller."""
    params = {**PARAMS, **(params or {})}
    stub, train, check = split(rows)
    dtrain = _dataset(stub, train)
    valid = [_dataset(stub, check)] if len(check) else []
    booster = lgb.train(
        params,
        dtrain,
        num_boost_round=MAX_ROUNDS,
        valid_sets=valid,
        callbacks=[lgb.early_stopping(PATIENCE, verbose=False)] if valid else [],
    )
    return fitted(booster, booster.best_iteration or booster.current_iteration(), rows, stub)
