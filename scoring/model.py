"""Win probability: LightGBM, calibrated on a later time slice, shrunk towards the base rate.

Pure (no file I/O; see `artifact` for saving). Why each step:
- LightGBM on point-in-time rows weighted 1/rows-per-deal (a deal open for many weeks must not
  count more than one that closed fast), early-stopped on the later slice.
- Calibration (Platt or isotonic) is fitted on the later slice, which the booster did not see; the
  method is chosen by cross-fitted log loss on that slice, so the choice is honest. Its level is
  then re-centred on the win rate of all training rows (`Calibrator.recentre`): a recent slice's
  rate swings (MavenTech: 0.60-0.68 from one slice to the next) more than the next weeks' rate.
- Blend with the base rate (over all training rows): p = w * calibrated + (1 - w) * base, w in
  [0, 1] chosen on the same cross-fitted predictions. Where the data carry no signal (MavenTech) w goes to 0 and the shipped
  model is the base rate, never worse than it; `skill` (log-loss gain over the base rate on the
  slice) says how much the model knows, and the messages say it in words.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from scoring.features import CATEGORICAL, FEATURES, NUMERIC

PARAMS = {
    "objective": "binary",
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
    "force_row_wise": True,
    "seed": 11,
    "num_threads": 2,
}
MAX_ROUNDS = 400
KINDS = ("platt", "isotonic")
EPS = 1e-6


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

    kind: str  # platt | isotonic
    a: float = 1.0
    b: float = 0.0
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()
    shift: float = 0.0  # log-odds added after calibration (see `recentre`)

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        if self.kind == "platt":
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
        """Rows as the float matrix LightGBM was trained on (categories as codes, unknown NaN)."""
        cols = [frame[c].to_numpy(dtype=float) for c in NUMERIC]
        for c in CATEGORICAL:
            codes = pd.Categorical(frame[c], categories=self.categories[c]).codes.astype(float)
            codes[codes < 0] = np.nan
            cols.append(codes)
        return np.column_stack(cols) if cols else np.empty((len(frame), 0))

    def raw(self, x: np.ndarray) -> np.ndarray:
        return self.booster.predict(x, raw_score=True)

    def from_raw(self, raw: np.ndarray) -> np.ndarray:
        return self.blend * self.calibrator(raw) + (1 - self.blend) * self.base_rate

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.from_raw(self.raw(self.matrix(frame)))

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """SHAP values in raw-score space (LightGBM's TreeSHAP): (n, features + 1), last = bias."""
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


def fit(train: pd.DataFrame, calib: pd.DataFrame, params: dict | None = None) -> WinModel:
    """Train on `train` rows, calibrate and blend on the later `calib` rows."""
    params = {**PARAMS, **(params or {})}
    stub = WinModel(None, Calibrator("platt"), 1.0, 0.5, vocabulary(train), 0.0)
    dtrain, dcal = _dataset(stub, train), _dataset(stub, calib)
    booster = lgb.train(
        params,
        dtrain,
        num_boost_round=MAX_ROUNDS,
        valid_sets=[dcal],
        callbacks=[lgb.early_stopping(30, verbose=False)],
    )
    stub.booster = booster
    raw = booster.predict(stub.matrix(calib), raw_score=True, num_iteration=booster.best_iteration)
    y, w = calib["label"].to_numpy(), calib["weight"].to_numpy()
    # the anchor is the win rate over all training rows: a recent slice's rate swings more
    # (MavenTech: 0.60-0.68 between slices) than the rate the next weeks will show
    both = pd.concat([train[["label", "weight"]], calib[["label", "weight"]]])
    base = float(np.average(both["label"], weights=both["weight"]))
    halves = _time_halves(calib)
    base_loss = log_loss(y, np.full_like(y, base), w)
    grid = []
    for kind in KINDS:
        p = _cross_fitted(kind, raw, y, w, halves)
        for blend in np.linspace(0, 1, 21):
            grid.append((log_loss(y, blend * p + (1 - blend) * base, w), float(blend), kind))
    loss, blend, kind = min(grid, key=lambda g: (g[0], g[1]))
    booster.model_from_string(booster.model_to_string(num_iteration=booster.best_iteration))
    return WinModel(
        booster=booster,
        calibrator=_final_calibrator(kind, raw, y, w, base),
        blend=blend,
        base_rate=base,
        categories=stub.categories,
        skill=float(1 - loss / base_loss) if base_loss > 0 else 0.0,
        info={"rounds": int(booster.best_iteration or booster.current_iteration())},
    )


def _final_calibrator(kind, raw, y, w, base) -> Calibrator:
    return Calibrator.fit(kind, raw, y, w).recentre(raw, w, base)


def _time_halves(rows: pd.DataFrame) -> np.ndarray:
    """Fold id (0/1) per row: earlier and later snapshot days of the slice."""
    days = rows["snapshot"].to_numpy().astype("datetime64[D]").astype(np.int64)
    return (days > np.median(days)).astype(int)


def _cross_fitted(kind, raw, y, w, folds) -> np.ndarray:
    out = np.empty_like(raw)
    for k in (0, 1):
        fit_on, apply_to = folds != k, folds == k
        if fit_on.sum() < 10 or len(np.unique(y[fit_on])) < 2:
            out[apply_to] = np.average(y, weights=w)
            continue
        out[apply_to] = Calibrator.fit(kind, raw[fit_on], y[fit_on], w[fit_on])(raw[apply_to])
    return out
