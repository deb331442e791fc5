"""The latest score run and what answering questions about it needs, loaded once per run.

The digest, `/deal` and `/forecast` all read the same snapshot, so their numbers agree, and a
command answers in milliseconds: nothing is trained inside a Slack request, the CRM is prepared
once per run, and each scope's forecast is simulated once (fixed seed) and kept.
"""

from __future__ import annotations

import difflib
import json
import logging
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from bot import jobs, ledger
from bot.config import SetupError
from bot.digest import SCOPE_COLUMN, in_scope
from bot.settings import Scope, Settings
from dataset import database, deal_history, score_runs
from dataset.ids import salesforce_18
from dataset.ingest import IngestError, ingest_files
from dataset.presets import BUILTIN, apply_overrides
from forecasting.forecast import LiveForecast, forecast
from scoring.features import Crm, features_at, prepare
from scoring.model import WinModel
from scoring.risk import median_value, score_frame
from scoring.scorer import explain_deals

log = logging.getLogger(__name__)
SCENARIOS = 10_000


@dataclass
class Lookup:
    """What a `/deal` query found: one deal, several (an account's), or suggestions."""

    deal: dict | None = None
    several: pd.DataFrame | None = None
    closed: dict | None = None  # the deal exists but is won or lost
    suggestions: list[str] = field(default_factory=list)


@dataclass
class Snapshot:
    run: dict
    scores: pd.DataFrame  # the run's rows, by rank
    crm: Crm
    features: pd.DataFrame  # open deals on the run's as-of date, index deal_id
    model: WinModel
    refs: dict
    sigma: float
    _forecasts: dict[str, LiveForecast] = field(default_factory=dict)
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def run_id(self) -> int:
        return int(self.run["run_id"])

    def owners(self, scope: Scope) -> list[str] | None:
        """The reps a scope covers (None for all)."""
        if scope.kind == "all":
            return None
        if scope.kind == "rep":
            return [scope.name]
        column = "regional_office" if scope.kind == "region" else "manager"
        teams = self.crm.teams
        listed = set(teams.loc[teams[column] == scope.name, "sales_agent"])
        scored = set(self.scores.loc[self.scores[SCOPE_COLUMN[scope.kind]] == scope.name, "owner"])
        return sorted(listed | scored)

    def forecast(self, scope: Scope) -> LiveForecast:
        """The scope's forecast on this run, simulated once and kept."""
        key = str(scope)
        if key in self._forecasts:
            return self._forecasts[key]
        with self._lock:  # one lock per scope: a new scope's simulation blocks no other scope
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._forecasts:
                win = self.scores.set_index("deal_id")["win_prob"].reindex(self.features.index)
                self._forecasts[key] = forecast(
                    self.crm, pd.Timestamp(self.run["as_of"]), self.features,
                    win.fillna(self.model.base_rate).to_numpy(),
                    sigma=self.sigma, scenarios=SCENARIOS, seed=0, owners=self.owners(scope),
                )  # fmt: skip
            return self._forecasts[key]

    def quarter(self, scope: Scope) -> tuple[str, float, float, float]:
        """(name, P10, P50, P90) of the quarter under way, won so far included."""
        q = self.forecast(scope).table
        row = q[q["kind"] == "quarter"].iloc[0]
        return row["period"], float(row["p10"]), float(row["p50"]), float(row["p90"])

    def explain(self, deal: dict) -> tuple[list[dict], list[str]]:
        """A deal's reasons and actions: saved with the run for the top deals, else computed
        from its saved scores."""
        if isinstance(deal.get("drivers"), str):
            actions = deal.get("actions")
            return json.loads(deal["drivers"]), json.loads(
                actions if isinstance(actions, str) else "[]"
            )
        deal_id = deal["deal_id"]
        if deal_id not in self.features.index:
            return [], []
        f = self.features.loc[[deal_id]]
        p = self.scores.set_index("deal_id")["win_prob"].reindex(f.index).to_numpy()
        scores = score_frame(f, p, median_value(self.scores["value"]))
        reasons, actions = explain_deals(self.model, f, scores, self.refs)
        return [r.as_dict() for r in reasons[0]], actions[0]

    @cached_property
    def ids(self) -> dict[str, str]:
        """Deal ids by their lower-case form, built once per run for `/deal` in any case."""
        return {d.lower(): d for d in self.scores["deal_id"]}

    def names(self, kind: str) -> list[str]:
        """The regions or managers known to the CRM."""
        column = {"region": "regional_office", "manager": "manager"}[kind]
        known = set(self.crm.teams[column].dropna()) | set(self.scores[SCOPE_COLUMN[kind]].dropna())
        return sorted(known)

    def lookup(self, db, query: str, scope: Scope) -> Lookup:
        """A deal by id (any case; the caller checks access), else the open deals within `scope`
        of an account whose name contains the query, else the closest ids and account names
        within `scope` (so a suggestion never names another team's deal)."""
        q = query.strip()
        # a Salesforce id as a report shows it (15 characters) is stored in its 18-character form
        for key in dict.fromkeys((q, salesforce_18(q))):
            if key.lower() in self.ids:
                return Lookup(deal=score_runs.run_deal(db, self.run_id, self.ids[key.lower()]))
            state = deal_history.deal_state(db, key)
            if state is not None:
                return Lookup(closed=state)
        mine = in_scope(self.scores, scope)
        matches = mine[mine["account"].fillna("").str.contains(q, case=False, regex=False)]
        if len(matches) == 1:
            return Lookup(deal=score_runs.run_deal(db, self.run_id, matches.iloc[0]["deal_id"]))
        if len(matches) > 1:
            return Lookup(several=matches)
        accounts = sorted(set(mine["account"].dropna()))
        close = difflib.get_close_matches(q, accounts, n=3, cutoff=0.6)
        close += difflib.get_close_matches(q.upper(), mine["deal_id"].tolist(), n=3, cutoff=0.6)
        return Lookup(suggestions=close[:5])


class Pipeline:
    """The bot's access to the data: one SQLite connection per thread, the snapshot of the
    latest run, and the morning refresh (newest export in, rescored if anything changed)."""

    def __init__(self, db_path: Path, artifacts: Path, settings: Settings):
        self.db_path, self.artifacts, self.settings = Path(db_path), Path(artifacts), settings
        self._local = threading.local()
        self._snapshot: Snapshot | None = None
        self._load_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._model_lock = threading.Lock()  # one training at a time writes the artifacts
        self._export_seen: tuple | None = None  # (path, mtime, size) of the last export read

    def db(self):
        conn = getattr(self._local, "db", None)
        if conn is None:
            conn = self._local.db = database.connect(self.db_path)
            # the bot's own tables, made now rather than at a first claim that could wait
            # behind an import holding the write lock
            ledger.ensure_tables(conn)
        return conn

    def snapshot(self, say=None) -> Snapshot | None:
        """The latest run's snapshot (None before the first run), reloaded when a newer run is
        saved, by this process or another."""
        run = score_runs.latest_run(self.db())
        if run is None:
            return None
        current = self._snapshot
        if current is not None and current.run_id == run["run_id"]:
            return current
        with self._load_lock:
            if self._snapshot is None or self._snapshot.run_id != run["run_id"]:
                self._snapshot = self._load(run, say or log.info)
            return self._snapshot

    def _load(self, run: dict, say) -> Snapshot:
        db = self.db()
        with self._model_lock:
            model, meta = jobs.ensure_model(db, self.artifacts, say=say)
        crm = prepare(deal_history.load_crm(db))
        settings = jobs.forecast_settings(crm, self.artifacts, say=say)
        scores = score_runs.run_scores(db, run["run_id"])
        log.info("snapshot of score run #%s loaded (%s open deals)", run["run_id"], len(scores))
        return Snapshot(
            run=run,
            scores=scores,
            crm=crm,
            features=features_at(crm, pd.Timestamp(run["as_of"])),
            model=model,
            refs=meta["references"],
            sigma=settings["sigma"],
        )

    def _unread(self, export: Path) -> bool:
        """Is this export new since the last refresh? Each channel's job refreshes; only the
        first needs to read and hash the file."""
        stat = export.stat()
        seen, self._export_seen = self._export_seen, (export, stat.st_mtime_ns, stat.st_size)
        return seen != self._export_seen

    def refresh(self, presets=None, say=None) -> list[str]:
        """Ingest the newest export and rescore if anything changed. Returns problems to report
        (the digest then goes out on the last good data, saying so)."""
        problems: list[str] = []
        say = say or log.info
        with self._refresh_lock:
            db = self.db()
            folder = self.settings.exports_folder
            newest = jobs.newest_export(folder) if folder is not None else None
            if folder is not None and newest is None:
                problems.append(f"no CRM export found in {folder}")
            elif newest is not None and self._unread(newest):
                try:
                    presets = apply_overrides(BUILTIN, presets or {})
                    result = ingest_files(
                        db, [newest], presets=presets, limits=self.settings.import_limits
                    )[0]
                    say(result.summary())
                    if result.rows_set_aside:
                        problems.append(
                            f"{result.rows_set_aside} rows of {result.path.name} were set "
                            "aside (`revbot quarantine` lists them)"
                        )
                except IngestError as exc:  # refused with a reason: no traceback to log
                    self._export_seen = None  # report it to every channel, retry next time
                    log.error("today's CRM export %s was refused: %s", newest.name, exc)
                    problems.append(f"today's CRM export could not be loaded: {exc}")
                except Exception as exc:  # a bad export must not stop the digest
                    self._export_seen = None
                    log.exception("ingesting the newest export failed")
                    problems.append(f"today's CRM export could not be loaded: {exc}")
            if deal_history.latest_as_of(db) is None:
                raise SetupError("no CRM data imported yet: run `revbot ingest` or `revbot demo`")
            if not jobs.run_is_current(db):
                with self._model_lock:
                    loaded = jobs.ensure_model(db, self.artifacts, say=say)
                jobs.score_now(db, self.artifacts, loaded=loaded, say=say)
        return problems
