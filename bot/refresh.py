"""The one writer: newest data in, model current, every open deal scored and checked against the
hygiene rules, every scope's forecast simulated, all saved as one score run.

Why one: the digest, `/deal`, `/forecast` and every CLI report then read the same saved run, so
the same question gets the same number everywhere, and nothing heavy runs inside a Slack request.
The scheduler, `revbot morning`, `revbot score`, `revbot digest` and the bot's warm-up all call
`Refresher.refresh`; `revbot train` calls `Refresher.train`. The CRM is loaded and prepared once
per refresh, and kept for a scope nobody forecast yet (`add_scope`). Keeping the model and the
forecast's shock current (train when due, backtest once) is `bot.model_upkeep`'s concern; only
this writer calls it, under its lock.
With `[dask]` configured (or `--dask`), the model upkeep and the scores are computed on that
Dask cluster (`scoring.distributed`, `scoring.dask_fit`), connected for one refresh; the reasons,
the hygiene rules, the forecasts and the one write stay here.
What a refresh says (`say`) is for the person waiting: each slow step as it starts and how long it
took, in plain words; the model's evaluation tables only with `verbose`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bot.config import SetupError
from bot.crm_step import CrmStep
from bot.digest import candidates
from bot.model_upkeep import ModelUpkeep, took
from bot.settings import Scope, Settings
from dataset import database, deal_history, retention, score_runs
from dataset.ingest import IngestError, ingest_files
from dataset.money import plural
from dataset.presets import BUILTIN, apply_overrides
from forecasting.periods import won_this_quarter
from scoring.cluster import Cluster

if TYPE_CHECKING:
    from forecasting.forecast import LiveForecast

log = logging.getLogger(__name__)
Say = Callable[[str], None]
EXPORT_SUFFIXES = (".csv", ".txt")
SCENARIOS = 10_000


@dataclass
class Refreshed:
    """What a refresh did: the run the readers now read, whether it is new, and the problems to
    report with the digest (which then goes out on the last good data, saying so)."""

    run_id: int
    new_run: bool
    problems: list[str] = field(default_factory=list)


@dataclass
class _Prepared:
    """What the last score run was made of, kept to simulate a scope asked for later."""

    run_id: int
    as_of: pd.Timestamp
    crm: object  # scoring.crm.Crm
    features: pd.DataFrame
    win: np.ndarray  # the run's win probabilities, aligned with `features`
    bands: object  # forecasting.bands.Bands: the shared shock and centre correction
    model: object  # scoring.model.WinModel
    refs: dict
    # each deal's chances to close within the stage models' knots if won, aligned with
    # `features` (`forecasting.stage_timing`); None: timed by the product/age curve alone
    within: np.ndarray | None = None


def newest_export(folder: Path) -> Path | None:
    """The most recently modified CSV export in a folder (None if there is none)."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in EXPORT_SUFFIXES]
    return max(files, key=lambda p: (p.stat().st_mtime, p.name)) if files else None


def owners_of(scope: Scope, teams: pd.DataFrame, scores: pd.DataFrame) -> list[str] | None:
    """The reps a scope covers (None for all): the team table's and those scored under it."""
    if scope.kind == "all":
        return None
    if scope.kind == "rep":
        return [scope.name]
    team_column, score_column = (
        ("regional_office", "region") if scope.kind == "region" else ("manager", "manager")
    )
    listed = set(teams.loc[teams[team_column] == scope.name, "sales_agent"])
    # the distinct names first: a set built from a million Arrow strings walks them in Python
    scored = set(scores.loc[scores[score_column] == scope.name, "owner"].unique())
    return sorted(listed | scored)


def scopes_to_forecast(
    settings: Settings, teams: pd.DataFrame, scores: pd.DataFrame
) -> list[Scope]:
    """Every scope a surface may ask for: the company, each region and manager's team, each
    channel's scope, each roster member's own and each target's."""
    scopes = [Scope("all")]
    for kind, team_column, score_column in (
        ("region", "regional_office", "region"),
        ("manager", "manager", "manager"),
    ):
        names = set(teams[team_column].dropna()) | set(scores[score_column].dropna().unique())
        scopes += [Scope(kind, n) for n in sorted(names)]
    scopes += [c.scope for c in settings.channels]
    for member in (settings.roster or {}).values():
        if member.role != "leader" and member.name:
            scopes.append(Scope("manager" if member.role == "manager" else "rep", member.name))
    scopes += [Scope.parse(t.scope) for t in settings.targets]  # each target's chance
    return list(dict.fromkeys(scopes))


def scopes_text(scopes: list[Scope]) -> str:
    """What a list of scopes covers, counted: "the company, 3 regions, 6 teams, 2 reps"."""
    kinds = [s.kind for s in scopes]
    parts = ["the company"] if "all" in kinds else []
    for kind, one, many in (("region", "region", "regions"), ("manager", "team", "teams"),
                            ("rep", "rep", "reps")):  # fmt: skip
        n = kinds.count(kind)
        if n:
            parts.append(f"{n} {one if n == 1 else many}")
    return ", ".join(parts)


class Refresher:
    """The only code that ingests, trains, scores or simulates. One refresh at a time."""

    def __init__(
        self,
        db_path: Path,
        artifacts: Path,
        settings: Settings,
        presets: dict | None = None,
        verbose: bool = False,
    ):
        """`verbose`: when a refresh (re)trains the model or backtests the forecast, say their
        evaluation tables too (`train` and `backtest`, asked for, always do)."""
        self.db_path, self.artifacts, self.settings = Path(db_path), Path(artifacts), settings
        self.presets = apply_overrides(BUILTIN, presets or {})
        self.upkeep = ModelUpkeep(self.artifacts, self.db_path, settings.retrain_days, verbose)
        self._lock = threading.RLock()
        self._conns = database.PerThread(db_path)
        self.crm = CrmStep(settings, presets)  # the CRM read directly, when [crm] says which
        self._export_seen: tuple | None = None  # (path, mtime, size) of the last export read
        self._prepared: _Prepared | None = None

    def db(self):
        return self._conns.get()

    def close(self) -> None:
        self._conns.close()

    # -- the refresh ------------------------------------------------------------------------

    def refresh(
        self,
        say: Say = log.info,
        *,
        as_of: date | None = None,
        explain_top: int | None = None,
        force: bool = False,
    ) -> Refreshed:
        """Sync the CRM (if `[crm]` names one), ingest the newest export (if an exports folder
        is configured) and, if anything is new
        (or `as_of` or `force` asks), score and forecast a new run. Raises SetupError when
        there is no data at all."""
        with self._lock:
            db = self.db()
            problems = self.crm.run(db, say) + self._ingest_newest(say)
            if deal_history.latest_as_of(db) is None:
                raise SetupError(
                    "no CRM data imported yet: run `revbot sync`, `revbot ingest` or `revbot demo`"
                )
            latest = score_runs.latest_run(db)
            fingerprint = database.fingerprint(db)
            if (
                latest is not None
                and not force
                and as_of is None
                and latest.get("data_fingerprint") == fingerprint
            ):
                return Refreshed(int(latest["run_id"]), False, problems)
            run_id = self._score(say, as_of, explain_top, fingerprint)
            return Refreshed(run_id, True, problems)

    def _ingest_newest(self, say: Say) -> list[str]:
        folder = self.settings.exports_folder
        if folder is None:
            return []
        newest = newest_export(folder) if folder.is_dir() else None
        if newest is None:
            return [f"no CRM export found in {folder}"]
        stat = newest.stat()
        seen = (newest, stat.st_mtime_ns, stat.st_size)
        if seen == self._export_seen:  # each channel's job refreshes; one reads the file
            return []
        self._export_seen = seen
        try:
            result = ingest_files(
                self.db(), [newest], presets=self.presets, limits=self.settings.import_limits
            )[0]
        except IngestError as exc:  # refused with a reason: no traceback to log
            self._export_seen = None  # report it to every channel, retry next time
            log.error("today's CRM export %s was refused: %s", newest.name, exc)
            return [f"today's CRM export could not be loaded: {exc}"]
        except Exception as exc:  # a bad export must not stop the digest
            self._export_seen = None
            log.exception("ingesting the newest export failed")
            return [f"today's CRM export could not be loaded: {exc}"]
        say(result.summary())
        if result.rows_set_aside:
            return [
                f"{result.rows_set_aside} rows of {result.path.name} were set aside "
                "(`revbot quarantine` lists them)"
            ]
        return []

    def _score(self, say: Say, as_of, explain_top, fingerprint: str) -> int:
        from scoring import artifact, hygiene, scorer
        from scoring.features import prepare

        db = self.db()
        # once per refresh (training, scoring, forecasts); the writer keeps the columnar copy
        crm = prepare(deal_history.load_crm(db, keep=True))
        with self._cluster(say) as cluster:
            model, meta = self.upkeep.current_model(db, crm, say, cluster)
            bands = self.upkeep.bands(crm, say)
            notes = artifact.check_fits_data(
                meta, crm.deals["product"].dropna().unique().tolist(), fingerprint
            )
            top = explain_top if explain_top is not None else self.settings.explain_top
            start = time.monotonic()
            say("scoring the open deals and writing their reasons…")
            if cluster is None:
                run = scorer.score(crm, model, meta["references"], as_of, top)
            else:  # features, probability and risk on the workers; reasons here
                from scoring import distributed

                run = distributed.score(cluster.client, crm, model, meta["references"], as_of, top)
        extra = self._scope_tops(run.scores)
        scorer.explain_more(run, model, meta["references"], extra)
        # the hygiene rules on the same deals as of the same day, saved with the run
        found = hygiene.evaluate(crm, run.features, run.as_of, self.settings.hygiene)
        trained = meta["trained_on"]
        run_id = score_runs.write_score_run(
            db,
            as_of=run.as_of,
            scores=run.scores,
            model_hash=trained["hash"],
            confidence=scorer.confidence_text(model),
            base_rate=model.base_rate,
            notes="\n".join(notes),
            data_fingerprint=fingerprint,
            model_data_end=trained["data_end"],
            hygiene=found,
        )
        gone = retention.prune(db, self.settings.retention, self._keep(db, run_id))
        if gone:
            say(f"retention: the per-deal rows of {plural(len(gone), 'older run')} removed "
                f"(#{gone[0]}-#{gone[-1]}; [retention] in revbot.toml)")  # fmt: skip
        for note in notes:
            say(f"note: {note}")
        say(
            f"score run #{run_id}: {len(run.scores):,} open deals as of "
            f"{pd.Timestamp(run.as_of).date()}, scored in {took(start)}; "
            f"{scorer.confidence_text(model)}"
        )
        say(f"deals breaking a hygiene rule: {hygiene.summary(found)}; `revbot hygiene` lists them")
        win = run.scores["win_prob"].reindex(run.features.index).to_numpy()
        self._prepared = _Prepared(run_id, pd.Timestamp(run.as_of), crm, run.features, win, bands,
                                   model, meta["references"],
                                   self._within(crm, run.as_of, run.features, win))  # fmt: skip
        scopes = scopes_to_forecast(self.settings, crm.teams, run.scores)
        start = time.monotonic()
        say(f"forecasting {plural(len(scopes), 'scope')} ({scopes_text(scopes)})…")
        self._simulate_together(self._prepared, scopes, run.scores)
        say(
            f"forecast of {plural(len(scopes), 'scope')} saved with run #{run_id}, in {took(start)}"
        )
        return run_id

    @contextmanager
    def _cluster(self, say: Say) -> Iterator[Cluster | None]:
        """The Dask cluster of `[dask]` (or `--dask`), connected for one refresh or training;
        None: here. A ClusterError says why it cannot be used."""
        if self.settings.dask is None:
            yield None
            return
        from scoring.cluster import connect

        with connect(self.settings.dask.address, self.settings.dask.connect_timeout) as cluster:
            say(f"connected to {cluster}")
            yield cluster

    @staticmethod
    def _keep(db, run_id: int) -> set[int]:
        """Runs whose detail a digest still compares with: each channel's last posted digest's,
        and the run before this one made of other data."""
        keep = set()
        if "digest_runs" in db.table_names():
            rows = db.execute("SELECT MAX(run_id) FROM digest_runs WHERE status = 'posted' "
                              "GROUP BY channel_id")  # fmt: skip
            keep |= {int(r) for (r,) in rows if r is not None}
        other = score_runs.previous_other_data(db, run_id)
        if other is not None:
            keep.add(int(other["run_id"]))
        return keep

    def _scope_tops(self, scores: pd.DataFrame) -> list[str]:
        """The deals each channel's digest lists, which must all have their reasons (a team's
        digest reaches further down the company's ranking than the explained top)."""
        ids: list[str] = []
        for c in self.settings.channels:
            ids += candidates(scores, c.scope, c.min_risk, c.top).index.tolist()
        return ids

    # -- forecasts ---------------------------------------------------------------------------

    def _simulate_together(self, prepared: _Prepared, scopes: list[Scope],
                           scores: pd.DataFrame) -> None:  # fmt: skip
        """Every scope's forecast from one simulation (`forecast.forecast_scopes`), saved."""
        from forecasting.forecast import forecast_scopes

        crm = prepared.crm
        owners = {str(s): owners_of(s, crm.teams, scores) for s in scopes}
        fcs = forecast_scopes(crm, prepared.as_of, prepared.features, prepared.win, owners,
                              bands=prepared.bands, scenarios=SCENARIOS, seed=0,
                              within=prepared.within)  # fmt: skip
        for scope in scopes:
            self._save_forecast(prepared, scope, fcs[str(scope)], owners[str(scope)])

    def _simulate(self, prepared: _Prepared, scope: Scope, scores: pd.DataFrame) -> None:
        from forecasting.forecast import forecast

        crm = prepared.crm
        owners = owners_of(scope, crm.teams, scores)
        fc = forecast(crm, prepared.as_of, prepared.features, prepared.win, bands=prepared.bands,
                      scenarios=SCENARIOS, seed=0, owners=owners, within=prepared.within)  # fmt: skip
        self._save_forecast(prepared, scope, fc, owners)

    def _save_forecast(self, prepared: _Prepared, scope: Scope, fc: LiveForecast,
                       owners: list[str] | None) -> None:  # fmt: skip
        """A scope's forecast saved with the run, with its wins so far by day and its targets."""
        won = won_this_quarter(prepared.crm.deals, prepared.as_of)
        if owners is not None:  # the quarter's wins, then the scope's: not all deals per scope
            won = won[won["owner"].isin(owners)]
        # one entry a day, not a deal: the chart draws the running total by day, and a
        # million-deal quarter's 240,000 wins were 5.7 MB for every first /forecast to parse
        by_day = won["value"].fillna(0).groupby(won["close_date"].dt.normalize()).sum()
        won_list = [[d.date().isoformat(), float(v)] for d, v in by_day.items()]
        targets = {t.quarter: t.amount for t in self.settings.targets if t.scope == str(scope)}
        score_runs.save_forecast(self.db(), prepared.run_id, str(scope), fc, won_list, targets,
                                 prepared.bands.to_config())  # fmt: skip

    def add_scope(self, run_id: int, scope: Scope) -> None:
        """Simulate a scope nobody forecast with run `run_id` yet, once, and save it with the run
        (a roster changed since the run). Only the latest run can be extended."""
        with self._lock:
            db = self.db()
            if score_runs.run_forecast(db, run_id, str(scope)) is not None:
                return
            latest = score_runs.latest_run(db)
            if latest is None or int(latest["run_id"]) != run_id:
                raise LookupError(f"run #{run_id} is not the latest: its forecasts are as saved")
            prepared = self._prepared
            if prepared is None or prepared.run_id != run_id:
                prepared = self._reload(run_id)
            scores = score_runs.run_scores(db, run_id).set_index("deal_id")
            self._simulate(prepared, scope, scores)

    def add_reasons(self, run_id: int, deal_ids) -> None:
        """Give reasons to deals of the latest run that have none (a digest listing deals below
        the explained top), once, saved with the run."""
        from scoring.risk import median_value, score_frame
        from scoring.scorer import explain_deals, reasons_json

        with self._lock:
            db = self.db()
            latest = score_runs.latest_run(db)
            if latest is None or int(latest["run_id"]) != run_id:
                raise LookupError(f"run #{run_id} is not the latest: its reasons are as saved")
            scores = score_runs.run_scores(db, run_id).set_index("deal_id")
            wanted = scores.reindex(pd.Index(list(deal_ids)))
            missing = wanted.index[wanted["drivers"].isna() & wanted["rank"].notna()]
            if len(missing) == 0:
                return
            prepared = self._prepared
            if prepared is None or prepared.run_id != run_id:
                prepared = self._reload(run_id)
            missing = missing[missing.isin(prepared.features.index)]
            f = prepared.features.loc[missing]
            # the run's own numbers, and its median open value to judge a deal's size by
            parts = score_frame(f, scores.loc[missing, "win_prob"].to_numpy(),
                                median_value(scores["value"]))  # fmt: skip
            reasons, actions = explain_deals(prepared.model, f, parts, prepared.refs)
            score_runs.save_reasons(db, run_id, {
                d: (reasons_json(r), json.dumps(a))
                for d, r, a in zip(missing, reasons, actions, strict=True)
            })  # fmt: skip

    def _reload(self, run_id: int) -> _Prepared:
        """The inputs of a run made by another process (or before a restart)."""
        from forecasting.bands import Bands
        from scoring import artifact
        from scoring.features import features_at, prepare

        db = self.db()
        crm = prepare(deal_history.load_crm(db))
        run = score_runs.run_of(db, run_id)
        features = features_at(crm, pd.Timestamp(run["as_of"]))
        scores = score_runs.run_scores(db, run_id).set_index("deal_id")
        model, meta = artifact.load(self.artifacts)
        # a deal open now that the run did not score (none, unless the data changed) counts at
        # the base rate
        win = scores["win_prob"].reindex(features.index).fillna(model.base_rate).to_numpy()
        # the bands the run's forecasts were drawn with, as saved with them: never a backtest
        # here (a `revbot train` elsewhere since the run would have made this request wait for
        # one, and given this scope other bands than the run's others). The win and stage
        # models are the saved ones, the newer after such a training.
        company = score_runs.run_forecast(db, run_id, str(Scope("all")))
        saved = company.get("bands") if company is not None else None
        bands = Bands.from_config(saved) if saved else self.upkeep.saved_bands()
        self._prepared = _Prepared(run_id, pd.Timestamp(run["as_of"]), crm, features, win, bands,
                                   model, meta["references"],
                                   self._within(crm, run["as_of"], features, win))  # fmt: skip
        return self._prepared

    def _within(self, crm, as_of, features: pd.DataFrame, win: np.ndarray) -> np.ndarray | None:
        """The open deals' chances to close within the stage models' knots if won, from the
        saved stage models (`ModelUpkeep.stage_timing`); None without them."""
        from forecasting import stage_timing

        return stage_timing.chances(self.upkeep.stage_timing(), crm, as_of, features, win)

    # -- the model and the forecast's shock, when asked for (`revbot train`) --------------------

    def train(self, n_cutoffs: int = 4, truth: Path | None = None, crm=None, say: Say = print):
        """Evaluate, train, save the model and its report, saying the evaluation table; returns
        (model, meta)."""
        from scoring.features import prepare

        with self._lock, self._cluster(say) as cluster:
            crm = crm if crm is not None else prepare(deal_history.load_crm(self.db()))
            return self.upkeep.train(self.db(), crm, say, n_cutoffs=n_cutoffs, truth=truth,
                                     detail=True, cluster=cluster)  # fmt: skip

    def backtest(self, crm=None, say: Say = print) -> dict:
        """Backtest the forecast on past cutoffs, pick the shared shock and save it, saying the
        backtest's table."""
        from scoring.features import prepare

        with self._lock:
            crm = crm if crm is not None else prepare(deal_history.load_crm(self.db()))
            return self.upkeep.backtest(crm, say, detail=True)
