"""Fit the win model's booster on a Dask cluster with `lightgbm.dask` (maintained by LightGBM):
`model.fit`'s job, data-parallel over the workers, returning an ordinary `WinModel`.

Same rows, split and parameters as `model.fit` (the same held-out fifth of the deals, cross
entropy on labels in [0, 1] with weights), with two differences, both measured:
- Early stopping. lightgbm.dask does not support it: each worker evaluates only its own part of
  a validation set and LightGBM does not aggregate the metric, so workers stop at different
  rounds and the others hang or fail on their sockets (LightGBM issues #3712, #6197, #6956; a fix,
  #7290, is not released). So the booster is fitted for MAX_ROUNDS, then the held-out deals'
  cross entropy after each round is computed on the workers (per-round sums of weighted losses,
  added up on the client) and the booster is cut where `lightgbm.early_stopping(PATIENCE)` would
  have stopped on that curve: the same rule, applied after the fact, on all the held-out rows.
  It costs the rounds after the stop (MAX_ROUNDS at most).
- A categorical column with no value in the training rows (the exports never had it: deal type,
  lead source) is passed as numeric. Declared categorical, distributed LightGBM 4.7 kills a
  worker ("Socket recv error ... code: 104"); with no value it is never split on either way.
The booster differs from one process's in its bins and bagging (each worker bins and samples its
own rows), so the model is close, not identical: `tests/scoring/test_dask.py` holds its held-out
log loss and AUC to the single-process model's within a stated tolerance.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import lightgbm as lgb
import numpy as np
import pandas as pd

from scoring import model as wm
from scoring.features import CATEGORICAL, FEATURES

if TYPE_CHECKING:  # Dask is imported only where a cluster is used
    from distributed import Client

# LightGBM's native parameter names in `model.PARAMS` and their scikit-learn names (the Dask
# estimators are scikit-learn estimators; a native alias would warn that it overrides the other)
SKLEARN_NAMES = {
    "learning_rate": "learning_rate",
    "num_leaves": "num_leaves",
    "min_data_in_leaf": "min_child_samples",
    "feature_fraction": "colsample_bytree",
    "bagging_fraction": "subsample",
    "bagging_freq": "subsample_freq",
    "lambda_l2": "reg_lambda",
    "seed": "random_state",
}
LOG_EPSILON = 1e-12  # LightGBM's cross-entropy metric clips probabilities at this


def estimator_params(params: dict) -> dict:
    """`model.PARAMS`-style parameters for `DaskLGBMRegressor` (threads: one worker's, set by
    lightgbm.dask)."""
    out = {SKLEARN_NAMES.get(k, k): v for k, v in params.items() if k != "num_threads"}
    return {**out, "n_estimators": wm.MAX_ROUNDS}


def stopping_round(curve: np.ndarray, patience: int = wm.PATIENCE) -> int:
    """The round `lightgbm.early_stopping(patience)` keeps for this validation loss curve (one
    value per round): the best so far (strictly lower), once `patience` rounds after it brought
    nothing better; the best of all if the rounds run out first. 1-based, like best_iteration."""
    best, best_at = np.inf, 0
    for i, loss in enumerate(curve):
        if loss < best:
            best, best_at = loss, i
        elif i - best_at >= patience:
            break
    return best_at + 1


def loss_by_round(
    booster: lgb.Booster, x: np.ndarray, y: np.ndarray, w: np.ndarray, chunk: int = 20_000
) -> tuple[np.ndarray, float]:
    """Per round, the weighted sum of cross entropies of rows (x, y, w) under the booster cut at
    that round, and the sum of weights: what LightGBM's cross-entropy metric divides."""
    rounds = booster.current_iteration()
    dump = booster.dump_model()["tree_info"]
    leaves = [
        np.array([booster.get_leaf_output(t, j) for j in range(dump[t]["num_leaves"])])
        for t in range(rounds)
    ]
    total = np.zeros(rounds)
    for start in range(0, len(x), chunk):
        at = booster.predict(x[start : start + chunk], pred_leaf=True).reshape(-1, rounds)
        outputs = np.column_stack([leaves[t][at[:, t]] for t in range(rounds)])
        p = 1.0 / (1.0 + np.exp(-np.cumsum(outputs, axis=1)))
        yy, ww = y[start : start + chunk, None], w[start : start + chunk, None]
        loss = -(yy * np.log(np.maximum(p, LOG_EPSILON))
                 + (1 - yy) * np.log(np.maximum(1 - p, LOG_EPSILON)))  # fmt: skip
        total += (ww * loss).sum(axis=0)
    return total, float(w.sum())


def _parts(client: Client, arrays: list[np.ndarray], parts: int) -> list:
    """Each array as a Dask array of `parts` row blocks scattered over the workers."""
    import dask
    import dask.array as da

    out = []
    for a in arrays:
        chunks = np.array_split(a, parts)
        futures = client.scatter(chunks)
        out.append(da.concatenate([
            da.from_delayed(dask.delayed(f), shape=c.shape, dtype=c.dtype)
            for f, c in zip(futures, chunks, strict=True)
        ]))  # fmt: skip
    return out


def _check_parts(booster: lgb.Booster, part: tuple[np.ndarray, ...]) -> tuple[np.ndarray, float]:
    """On a worker: `loss_by_round` of one block of held-out rows (x, y, w)."""
    return loss_by_round(booster, *part)


def _not_n_jobs(record: logging.LogRecord) -> bool:
    """lightgbm.dask warns at every fit that n_jobs is ignored (each worker's threads are its
    own): true, expected, and nothing for the person waiting to act on."""
    return "Parameter n_jobs will be ignored" not in record.getMessage()


def _log_to_logging() -> None:
    """LightGBM's Python messages ("Finding random open ports for workers", each fit) go to
    `logging` (its info at debug level) rather than to standard output, where a command's
    output is the person's. Process-wide, as LightGBM's `register_logger` is."""
    import lightgbm

    logger = logging.getLogger("lightgbm")
    if _not_n_jobs not in logger.filters:
        logger.addFilter(_not_n_jobs)
    lightgbm.register_logger(logger, info_method_name="debug")


def fit(client: Client, rows: pd.DataFrame, params: dict | None = None) -> wm.WinModel:
    """`model.fit` on the cluster of `client` (see the module docstring)."""
    from lightgbm.dask import DaskLGBMRegressor

    _log_to_logging()

    params = {**wm.PARAMS, **(params or {})}
    stub, train, check = wm.split(rows)
    x = stub.matrix(train)
    empty = set(np.array(FEATURES)[np.isnan(x).all(axis=0)]) if len(x) else set()
    workers = len(client.scheduler_info(n_workers=-1)["workers"])
    parts = max(1, min(workers, len(train)))
    data = _parts(client, [x, train["label"].to_numpy(), train["weight"].to_numpy()], parts)
    estimator = DaskLGBMRegressor(client=client, **estimator_params(params))
    with client.as_current():  # lightgbm.dask waits on its parts with the default client
        estimator.fit(*data[:2], sample_weight=data[2], feature_name=list(FEATURES),
                      categorical_feature=[c for c in CATEGORICAL if c not in empty])  # fmt: skip
    booster = estimator.booster_
    best = booster.current_iteration()
    if len(check):
        best = stopping_round(held_out_curve(client, booster, stub, check, workers))
    model = wm.fitted(booster, best, rows, stub)
    model.info["fitted_on"] = f"dask ({workers} workers)"
    return model


def held_out_curve(
    client: Client, booster: lgb.Booster, stub: wm.WinModel, check: pd.DataFrame, workers: int
) -> np.ndarray:
    """The held-out rows' cross entropy after each round, computed in blocks on the workers."""
    x, y, w = stub.matrix(check), check["label"].to_numpy(), check["weight"].to_numpy()
    at = [i for i in np.array_split(np.arange(len(x)), workers) if len(i)]
    blocks = [(x[i], y[i], w[i]) for i in at]
    [booster_f] = client.scatter([booster], broadcast=True)
    sums = client.gather(
        client.map(_check_parts, [booster_f] * len(blocks), client.scatter(blocks))
    )
    return sum(s for s, _ in sums) / sum(n for _, n in sums)


def fitter(client: Client) -> Callable[[pd.DataFrame], wm.WinModel]:
    """The `fit` that `train.train` and `train.fit_at` take, fitting on this cluster."""
    return lambda rows, params=None: fit(client, rows, params)
