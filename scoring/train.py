"""Train the shipped win model and evaluate the method over past cutoffs. Pure: data in, data out.

`fit_at(crm, day)` is the one way a model is trained, for the shipped model and for every
backtest: as it could have been trained on that day. In passes (see `samples` for why):
1. fit on the snapshots old enough for almost all their deals to have closed (a label maturity
   before the day, `samples.maturity_days`), with their outcomes;
2. label every snapshot before the day: closed deals with their outcome, deals still open with
   the last model's estimate for their latest state; fit again on all of them; repeat.
The estimates settle in a few passes (measured on three generated worlds: the mean probability
of the open deals moves by less than half a point after the third), each anchored by the deals
that did close from states like theirs. Weighting recent outcomes by how unlikely they were to be
known so soon (inverse probability of censoring) was tried instead and fails where quick closes
are mostly losses (a stage-by-stage pipeline): a win takes time, so it cannot stand in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import numpy as np
import pandas as pd

from scoring import evaluate
from scoring import model as wm
from scoring.artifact import data_hash
from scoring.crm import Crm
from scoring.features import FEATURES, features_at
from scoring.samples import (
    export_days,
    first_snapshot,
    label,
    maturity_days,
    snapshot_dates,
    snapshot_rows,
    step_labels,
)

Fit = Callable[[pd.DataFrame], wm.WinModel]
MIN_ROWS = 200  # fewer labelled rows than this: the base rate alone
PASSES = 3  # fits: one on matured outcomes, then each re-labels the deals still open
STEPS = 4  # snapshots ahead (weeks, with weekly exports) that a step label looks
STEP_PASSES = 3  # then fits on labels one horizon ahead


@dataclass
class Training:
    model: wm.WinModel
    meta: dict
    cutoffs: list[evaluate.CutoffResult]
    summary: pd.DataFrame
    rows: pd.DataFrame  # the shipped model's training rows (labelled)


def all_rows(crm: Crm, end: pd.Timestamp | None = None) -> pd.DataFrame:
    """Snapshot rows of every snapshot day up to `end` (default: the data's end)."""
    end = pd.Timestamp(end) if end is not None else crm.data_end
    return snapshot_rows(crm, snapshot_dates(crm, first_snapshot(crm), end))


def _base_only(rows: pd.DataFrame) -> wm.WinModel:
    base = float(np.average(rows["label"], weights=rows["weight"])) if len(rows) else 0.5
    return wm.WinModel(None, wm.Calibrator(), 0.0, base, wm.vocabulary(rows), 0.0)


def fit_at(
    crm: Crm,
    day: pd.Timestamp,
    rows: pd.DataFrame | None = None,
    passes: int = PASSES,
    step_passes: int = STEP_PASSES,
    fit: Fit | None = None,
) -> tuple[wm.WinModel, pd.DataFrame]:
    """The model as it could have been trained on `day`, and its labelled training rows.
    `rows`: snapshot rows built once (those on or after `day` are not used). Fewer `passes` and
    `step_passes` give a rougher model sooner (the forecast backtest needs only its level).
    `fit`: how a booster is fitted to labelled rows (default `model.fit`; or on a Dask cluster,
    `scoring.dask_fit`). A day after the data's end is the day after it: nothing is known on
    later days (the label maturity line counted from a later day took in one more snapshot
    than from the day after the end, and the model changed with no new data)."""
    fit = fit or wm.fit
    day = min(pd.Timestamp(day), crm.data_end + pd.Timedelta(days=1))
    rows = all_rows(crm, day) if rows is None else rows
    rows = rows[rows["snapshot"] < day]
    matured = day - pd.Timedelta(days=maturity_days(crm, day))
    first = label(rows[rows["snapshot"] <= matured], crm, day)
    if len(first) < MIN_ROWS or first["label"].nunique() < 2:
        first = label(rows, crm, day)
    if len(first) < MIN_ROWS or first["label"].nunique() < 2:
        return _base_only(first), first
    model, labelled = fit(first), first
    latest = features_at(crm, latest_day(crm, day))
    for _ in range(passes - 1):
        estimate = pd.Series(model.predict(latest), index=latest.index)
        labelled = label(rows, crm, day, estimate)
        model = fit(labelled)
    for _ in range(step_passes):
        estimate = pd.Series(model.predict(latest), index=latest.index)
        labelled = step_labels(rows, crm, day, STEPS, model.predict(rows), estimate)
        model = fit(labelled)
    return model, labelled


def latest_day(crm: Crm, day: pd.Timestamp) -> pd.Timestamp:
    """The day whose features are a deal's latest state when training on `day`: the last export
    on or before it (`day` itself before the first), never past the data's end. Why: the
    shipped model is trained on the day after the last export, and a day with no export looks
    like a day without activity; the deals still open were labelled with that gloomier
    estimate, and on the inbound worlds the open deals' mean probability sat 2-3.5 points under
    the truth (ECE 0.023-0.036; 0.014-0.024 with this)."""
    day = pd.Timestamp(day)
    exports = export_days(crm)
    before = exports[exports <= np.datetime64(day)]
    return min(pd.Timestamp(before[-1]) if len(before) else day, crm.data_end)


def against_truth(
    crm: Crm, results: list[evaluate.CutoffResult], model: wm.WinModel, truth: pd.DataFrame
) -> list[dict]:
    """Each cutoff's model (as shipped then) and the shipped model against known true
    probabilities (`truth`: export_day, deal_id, p_true; generated data only), on the deals open
    on the cutoff day and on the data's last day."""
    truth = truth.assign(export_day=pd.to_datetime(truth["export_day"]))
    days = np.sort(truth["export_day"].unique())
    out = []
    # a cutoff's model is the booster alone (blend 1): give it the blend the shipped method had
    # there, so that its own predict blends, as the shipped model's does
    cases = [
        (r.cutoff, replace(r.model, blend=r.blend) if r.model.booster else r.model, "cutoff")
        for r in results
    ]
    cases.append((crm.data_end, model, "last export (shipped model)"))
    for day, m, what in cases:
        before = days[days <= np.datetime64(day)]
        if not len(before):
            continue
        f = features_at(crm, day)
        q = truth[truth["export_day"] == before[-1]].set_index("deal_id")["p_true"]
        q = q.reindex(f.index)
        known = q.notna().to_numpy()
        if known.sum() < 10:
            continue
        p = m.predict(f)
        figures = evaluate.truth_check(
            p[known], q.to_numpy()[known], f["value_used"].to_numpy()[known]
        )
        out.append({"day": pd.Timestamp(day).date().isoformat(), "what": what, **figures})
    return out


def train(
    crm: Crm,
    n_cutoffs: int = 4,
    truth: pd.DataFrame | None = None,
    progress: Callable[[str], None] | None = None,
    fit: Fit | None = None,
    rows: pd.DataFrame | None = None,
) -> Training:
    """Evaluate over `n_cutoffs` past cutoffs, choose the blend with the base rate there, then
    fit the model to ship on everything up to the data's end. `truth` (generated data: the true
    probabilities by export day) adds the figures against it to the report. `progress` is told,
    in plain words, as each slow step starts (a cutoff, the final fit): one line each. `fit`
    fits each booster (see `fit_at`); `rows`: the snapshot rows of `all_rows(crm)`, if built
    elsewhere (on a Dask cluster)."""
    tell = progress or (lambda _: None)
    rows = all_rows(crm) if rows is None else rows
    fit_then = partial(fit_at, fit=fit)
    cutoffs = evaluate.default_cutoffs(crm, n_cutoffs)
    results = []
    for i, c in enumerate(cutoffs, 1):
        tell(f"testing it on past date {i} of {len(cutoffs)} ({c.date()})…")
        results.append(evaluate.evaluate_cutoff(crm, c, rows, fit_then))
    results = [r for r in results if r.test_rows]
    evaluate.add_shipped(results)
    tell("fitting it on all the history…")
    model, labelled = fit_then(crm, crm.data_end + pd.Timedelta(days=1), rows)
    summary = evaluate.summary_table(results)
    if model.booster is not None:
        model.blend = evaluate.blend_weight(results)
        if evaluate.SHIPPED in summary.index:
            ours, base = summary.loc[evaluate.SHIPPED], summary.loc["base rate"]
            model.skill = float(1 - ours["log_loss"] / base["log_loss"])
    checks = against_truth(crm, results, model, truth) if truth is not None else []
    meta = {
        "trained_on": {
            "rows": len(labelled),
            "deals": int(labelled.index.nunique()),
            "snapshots": int(labelled["snapshot"].nunique()),
            "first_snapshot": _day(labelled["snapshot"].min()),
            "last_snapshot": _day(labelled["snapshot"].max()),
            "data_end": crm.data_end.date().isoformat(),
            # how much pipeline history there was to learn from (a first CRM sync backfills it)
            "history_start": _day(crm.history["as_of"].min()) if len(crm.history) else None,
            "still_open": int((~labelled["known"]).sum()) if len(labelled) else 0,
            "win_rate": float(np.average(labelled["label"], weights=labelled["weight"]))
            if len(labelled)
            else float("nan"),
            "hash": data_hash(labelled) if len(labelled) else "",
        },
        "references": references(labelled),
        "evaluation": {
            "cutoffs": [r.cutoff.date().isoformat() for r in results],
            "per_cutoff": [
                {
                    "cutoff": r.cutoff.date().isoformat(),
                    "train_rows": r.train_rows,
                    "train_deals": int(r.train_deals),
                    "test_rows": r.test_rows,
                    "test_deals": int(r.test_deals),
                }
                for r in results
            ],  # fmt: skip
            "mean_over_cutoffs": summary.round(4).to_dict(orient="index"),
            "against_truth": checks,
        },
        "features_used": list(FEATURES),
    }
    return Training(model=model, meta=meta, cutoffs=results, summary=summary, rows=labelled)


def _day(t) -> str | None:
    return pd.Timestamp(t).date().isoformat() if pd.notna(t) else None


def references(rows: pd.DataFrame) -> dict[str, float]:
    """Typical values among deals that were won, quoted in explanations ("deals that win: ...").
    Each won deal counts once (its rows share a weight of one). A quantile is a value seen, with
    at least that share of the weight at or below it (not interpolated), so that "90% of won
    deals had activity within N days" is true of the 90th percentile."""
    won = rows[(rows["label"] == 1) & rows.get("known", True)]
    if won.empty:
        return {
            "days_since_activity": float("nan"),
            "days_since_activity_p90": float("nan"),
            "value": float("nan"),
            "age_days": float("nan"),
        }
    w = 1.0 / won.groupby(level=0)["label"].transform("size").to_numpy()

    def wquantile(values: pd.Series, q: float) -> float:
        v = values.to_numpy(dtype=float)
        ok = ~np.isnan(v)
        if not ok.any():
            return float("nan")
        order = np.argsort(v[ok])
        cum = np.cumsum(w[ok][order])
        return float(v[ok][order][np.searchsorted(cum, q * cum[-1])])

    return {
        "days_since_activity": wquantile(won["days_since_activity"], 0.5),
        "days_since_activity_p90": wquantile(won["days_since_activity"], 0.9),
        "value": wquantile(won["value_used"], 0.5),
        "age_days": wquantile(won["age_days"], 0.5),
    }
