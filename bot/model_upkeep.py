"""Keep the win model and the forecast's shock current: train the model when there is none or it
is due (`stale_because`), backtest the forecast once to fit its shared shock, save both with
their reports, and tell the person waiting what is happening.

Why apart from the refresh: the refresh is the pipeline (ingest, score, simulate, save a run);
this is the upkeep of the two things it scores and simulates with, the slow part (tens of
seconds on the demo, minutes on a large CRM) and the part with most to say.
Why only the writer calls it: it writes the model and the shock every saved run is made with, so
it runs under the writer's lock (`Refresher.train`, `Refresher.backtest` and the refresh), never
from a reader (one writer: see `bot.refresh`).
What it says: plain sentences for the person who runs the main job (the step, each slow part as
it starts, how long it took, what the result means for them); the evaluation tables and their
internal names only when asked (`revbot train`, or `verbose`). The pure cores it calls
(`scoring.train`, `forecasting.backtest`) print nothing: they report progress through a callback.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from dataset import database, import_log
from dataset.money import chance
from forecasting.bands import Bands
from scoring.cluster import Cluster

Say = Callable[[str], None]
FORECAST_CONFIG = "forecast.json"
TRAIN_TABLE = (
    "How each method scored the deals open in the 13 weeks after {n} past dates (mean over "
    "them; auc: how often a deal that was won ranked above one that was lost, higher is better; "
    "log_loss, brier, ece: errors, lower is better):"
)
BACKTEST_TABLE = (
    "The forecast from {n} past dates against the revenue actually won after each (coverage: "
    "share of actuals inside P10-P90, aim 80%; p50_mape / p50_median_ape: the P50's mean / median "
    "error):"
)


def took(start: float) -> str:
    """The time since `start` (a `time.monotonic()`) as people read it: 0.4 s, 23 s, 3 min 5 s."""
    seconds = time.monotonic() - start
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def _indented(say: Say) -> Say:
    return lambda line: say(f"  {line}")


def ranking_text(training) -> str:
    """What the trained model's test on past weeks means (its AUC, without the name)."""
    from scoring.evaluate import SHIPPED

    summary, model, n = training.summary, training.model, len(training.cutoffs)
    if SHIPPED not in summary.index or pd.isna(summary.loc[SHIPPED, "auc"]):
        return "there is too little history yet to test it on past weeks"
    tested = f"tested on the weeks after {'1 past date' if n == 1 else f'{n} past dates'}"
    if model.booster is None or model.blend == 0:  # the base rate alone is shipped
        return (
            f"{tested}, its scores were no better than the average win chance, so every deal "
            f"gets that average ({chance(model.base_rate)}) for now"
        )
    return (
        f"{tested}, it ranked a deal that went on to be won above one that was lost "
        f"{summary.loc[SHIPPED, 'auc']:.0%} of the time (a coin flip: 50%)"
    )


def coverage_text(rows: pd.DataFrame) -> str:
    """How the forecast did from past dates, for its longest horizon, in words."""
    weeks = int(rows["weeks"].max()) if len(rows) else 0
    ours = rows[(rows["method"] == "ours") & (rows["weeks"] == weeks)]
    if ours.empty:
        return "there is too little history yet to test it"
    held, n = int(ours["covered"].sum()), len(ours)
    text = (
        f"from {n} past dates, its P10-P90 range for the next {weeks} weeks held the revenue "
        f"actually won {held} times out of {n}"
    )
    error = ours["p50_abs_pct_error"].median()
    if pd.notna(error):
        text += f", and its P50 missed by {error:.0%} (median)"
    return text


class ModelUpkeep:
    """The win model and the forecast's shared shock in `artifacts`, kept current for the
    writer. `verbose`: the tables too, also when the main job trains or backtests."""

    def __init__(self, artifacts: Path, source: Path, retrain_days: int, verbose: bool = False):
        self.artifacts, self.source = Path(artifacts), Path(source)
        self.retrain_days, self.verbose = retrain_days, verbose

    def current_model(self, db, crm, say: Say, cluster: Cluster | None = None):
        """The saved model, retrained first when there is none, it does not fit this code, it
        was trained on data older than `retrain_days`, or the data's shape changed (products
        it never saw, columns the exports gained or lost)."""
        from scoring import artifact
        from scoring.artifact import ModelMismatchError

        try:
            model, meta = artifact.load(self.artifacts)
        except ModelMismatchError:
            saved = (self.artifacts / artifact.META_FILE).exists()
            why = "the saved one is from another version of revbot" if saved else "none yet"
            return self.train(db, crm, say, why=why, cluster=cluster)
        why = stale_because(meta, crm, self.retrain_days, import_log.exported_fields(db))
        if why:
            return self.train(db, crm, say, why=why, again=True, cluster=cluster)
        return model, meta

    def train(self, db, crm, say: Say, *, n_cutoffs: int = 4, truth: Path | None = None,
              why: str | None = None, again: bool = False, detail: bool = False,
              cluster: Cluster | None = None):  # fmt: skip
        """Evaluate, train, save the model and its report; returns (model, meta). `why` it is
        (re)trained, said first; `detail` (or `verbose`): the evaluation table after. With a
        `cluster`, the training rows are built and every booster fitted on it (lightgbm.dask)."""
        from scoring import artifact, report
        from scoring.train import train

        start = time.monotonic()
        closed = int(crm.deals["status"].isin(["won", "lost"]).sum())
        reason = f" ({why})" if why else ""
        say(f"{'retraining' if again else 'training'} the win model{reason} on the history of "
            f"{closed:,} closed deals…")  # fmt: skip
        known = pd.read_csv(truth) if truth is not None else None
        if cluster is None:
            training = train(crm, n_cutoffs, known, progress=_indented(say))
        else:
            from scoring import dask_fit, distributed

            _indented(say)(f"building the training rows on {cluster}…")
            rows = distributed.all_rows(cluster.client, crm)
            training = train(crm, n_cutoffs, known, progress=_indented(say),
                             fit=dask_fit.fitter(cluster.client), rows=rows)  # fmt: skip
        meta = {
            **training.meta,
            "database": {"fingerprint": database.fingerprint(db)},
            "exported_fields": sorted(import_log.exported_fields(db)),
        }
        artifact.save(training.model, self.artifacts, meta)
        self._fit_stage_timing(crm, training)
        path = report.write(training, self.artifacts, source=str(self.source))
        history = report.history_text(training.meta["trained_on"])
        say(f"win model trained in {took(start)} on {history}: {ranking_text(training)}; "
            f"report: {path}")  # fmt: skip
        if detail or self.verbose:
            say(TRAIN_TABLE.format(n=len(training.cutoffs)))
            say(training.summary.round(4).to_string())
            for c in training.meta["evaluation"]["against_truth"]:
                say(f"{c['day']} {c['what']}: {c['deals']:,} open deals, expected-AUC gap to the "
                    f"truth {c['auc_gap']:.3f}, ECE vs truth {c['ece_truth']:.3f}, value x p "
                    f"{c['value_gap']:+.1%}")  # fmt: skip
            say(f"model and report written to {self.artifacts}/ ({path.name}, reliability.png)")
        return artifact.load(self.artifacts)

    def _fit_stage_timing(self, crm, training) -> None:
        """The forecast's stage models (`forecasting.stage_timing`), fitted on the win model's
        snapshot rows and saved beside it; none (and any old ones removed) where the CRM has no
        stage history."""
        from forecasting import stage_timing, stage_timing_file

        fitted = stage_timing.fit_shipped(crm, training.rows, training.model)
        stage_timing_file.save(fitted, self.artifacts)  # the forecast test says they are used

    def stage_timing(self):
        """The saved stage models, or None (`forecasting.stage_timing_file`)."""
        from forecasting import stage_timing_file

        return stage_timing_file.load(self.artifacts)

    def bands(self, crm, say: Say) -> Bands:
        """The forecast's shared shock and centre correction, backtested once and saved (a
        config saved before the correction existed, `sigma` alone, loads as no correction)."""
        from forecasting import stage_timing_file

        path = self.artifacts / FORECAST_CONFIG
        if path.exists():
            config = json.loads(path.read_text(encoding="utf-8"))
            # sized on backtests run with the stage models there or not, as they are now: a
            # training that added or dropped them makes the backtest run again (once)
            if config.get("stage_models", False) == stage_timing_file.saved(self.artifacts):
                return Bands.from_config(config)
            return Bands.from_config(self.backtest(crm, say, why="the wins are now timed "
                                                   "differently"))  # fmt: skip
        return Bands.from_config(self.backtest(crm, say, first=True))

    def saved_bands(self) -> Bands:
        """The bands as last saved, without a backtest whatever the stage models now are (the
        defaults where none were saved): for a run made before its forecasts kept their own."""
        path = self.artifacts / FORECAST_CONFIG
        if not path.exists():
            return Bands()
        return Bands.from_config(json.loads(path.read_text(encoding="utf-8")))

    def backtest(self, crm, say: Say, *, first: bool = False, detail: bool = False,
                 why: str | None = None) -> dict:  # fmt: skip
        """Backtest the forecast on past cutoffs, fit its bands and save them. `first`:
        there was none yet (said so); `why` it runs again, said; `detail` (or `verbose`): the
        backtest's table after."""
        from forecasting import report as forecast_report
        from forecasting import stage_timing_file
        from forecasting.backtest import backtest

        start = time.monotonic()
        lead = "no forecast test yet: " if first else f"{why}: " if why else ""
        say(f"{lead}testing the forecast from past dates, to size its range…")
        bt = backtest(crm, progress=_indented(say))
        self.artifacts.mkdir(parents=True, exist_ok=True)
        path = forecast_report.write(bt, self.artifacts)
        config = {**bt.bands.to_config(), "data_end": crm.data_end.date().isoformat(),
                  "stage_models": stage_timing_file.saved(self.artifacts)}  # fmt: skip
        (self.artifacts / FORECAST_CONFIG).write_text(
            json.dumps(config, indent=2), encoding="utf-8"
        )
        say(f"forecast tested in {took(start)}: {coverage_text(bt.rows)}; report: {path}")
        if detail or self.verbose:
            say(BACKTEST_TABLE.format(n=bt.rows["cutoff"].nunique()))
            say(bt.summary.round(4).to_string(index=False))
            say(
                f"forecast backtest written to {path} (shared shock sigma {bt.sigma}, "
                f"{bt.bands.slip_text()})"
            )
        return config


def stale_because(meta: dict, crm, retrain_days: int, fields: Iterable[str]) -> str | None:
    """Why a loaded model should be retrained before scoring, or None."""
    trained_end = pd.Timestamp(meta["trained_on"]["data_end"])
    age = (crm.data_end - trained_end).days
    if retrain_days and age >= retrain_days:
        return f"trained on data to {trained_end.date()}, {age} days before the newest data"
    known = set(meta["categories"].get("product", []))
    new = {p for p in crm.deals["product"].dropna().unique() if isinstance(p, str)} - known
    if known and new:
        return f"products it never saw: {', '.join(sorted(new)[:3])}"
    before = meta.get("exported_fields")
    if before is not None and set(before) != set(fields):
        return "the exports' columns changed"
    return None
