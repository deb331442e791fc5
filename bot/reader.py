"""The saved runs as every surface reads them: the digest, `/deal`, `/forecast`, the buttons and
the CLI's reports.

Why a module of its own: readers never train, score or simulate (the refresh did, once, and saved
it all), and no listener writes SQL; so the same question gets the same number on every surface,
and an answer takes milliseconds. The only exception is a scope nobody forecast with the run (a
roster changed since): the composition root hands in the writer's `add_scope`, which simulates it
once and saves it with the run; every later reader reads it.
"""

from __future__ import annotations

import difflib
import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from bot import calls, ledger
from bot.digest import SCOPE_COLUMN, in_scope, twin_sets
from bot.near import one_typo
from bot.settings import Scope, Settings
from dataset import database, deal_columns, deal_history, run_flags, score_runs
from dataset.ids import salesforce_18
from forecasting.categories import Rollup, rollup
from forecasting.movement import Movement, movement
from forecasting.targets import Odds, odds
from forecasting.track_record import TrackRecord, closed_quarters, track_record
from scoring.hygiene import RULE_NAMES

# beyond this many ids or accounts, difflib's closest matches take too long: suggest only those
# one typo away (see bot.near), which are looked for first in any case
DIFFLIB_POOL = 5_000
# what a movement reads of each deal's state on a day (`_states`): placed, valued, compared
MOVED = ("owner", "product", "status", "close_date", "value")
CALL_COLUMNS = ["id", "quarter", "scope", "amount", "user_id", "caller", "as_of", "made_at"]


class NotForecast(LookupError):
    """The run has no forecast for a scope and nothing may simulate one here."""


@dataclass
class Lookup:
    """What a `/deal` query found: one deal, several (an account's), or suggestions."""

    deal: dict | None = None
    several: pd.DataFrame | None = None
    closed: dict | None = None  # the deal exists but is won or lost
    suggestions: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SavedForecast:
    """A scope's forecast as saved with its run: the table by period (won so far included), the
    deals won this quarter so far (for the chart), and how it was made."""

    scope: str
    as_of: pd.Timestamp
    table: pd.DataFrame
    won: pd.DataFrame  # close_date, value, status ("won")
    open_deals: int
    scenarios: int
    grids: dict[str, list[float]] = field(default_factory=dict)  # quarter -> percentiles 0-100
    new_per_week: float | None = None  # the new deals a week it drew (None: saved before kept)

    def quarter(self, name: str | None = None) -> pd.Series:
        """The row of a quarter (default: the one under way)."""
        q = self.table[self.table["kind"] == "quarter"]
        return (q if name is None else q[q["period"] == name]).iloc[0]


def _looked_up(keys: pd.Series, table: pd.Series) -> np.ndarray:
    """`keys.map(table)`, looking each distinct key up once (a million owners' names mapped one
    by one took 0.3 s a column)."""
    codes, distinct = pd.factorize(keys)
    found = table[~table.index.duplicated()].reindex(distinct).to_numpy()
    missing = np.nan if found.dtype.kind == "f" else None
    return np.append(found, missing)[codes]  # a missing key (code -1) takes the value appended


@dataclass
class SavedRun:
    """One score run as saved: its header, its deals by rank, the team table, and its forecasts
    read on demand (then kept: a run never changes)."""

    run: dict
    scores: pd.DataFrame
    teams: pd.DataFrame
    _reader: Reader
    _forecasts: dict[str, SavedForecast] = field(default_factory=dict)
    # what a request would otherwise work out again over every deal of the run (a run never
    # changes), by what it is and for which scope or quarter (`_keep`)
    _kept: dict[tuple, object] = field(default_factory=dict)

    @property
    def run_id(self) -> int:
        return int(self.run["run_id"])

    @property
    def as_of(self) -> str:
        return str(self.run["as_of"])

    @property
    def db(self):
        """This thread's connection to the run's database (to read what goes with the run)."""
        return self._reader.db()

    def forecast(self, scope: Scope) -> SavedForecast:
        key = str(scope)
        if key not in self._forecasts:
            self._forecasts[key] = self._reader.forecast(self.run_id, scope)
        return self._forecasts[key]

    def quarter(self, scope: Scope) -> tuple[str, float, float, float]:
        """(name, P10, P50, P90) of the quarter under way, won so far included."""
        row = self.forecast(scope).quarter()
        return row["period"], float(row["p10"]), float(row["p50"]), float(row["p90"])

    def odds(self, scope: Scope, quarter: str | None = None, target: float | None = None) -> Odds | None:  # fmt: skip
        """The chance of making a quarter's target (`target`, else the configured one), the gap
        at P50 and the pipeline coverage; None without a target or a saved grid."""
        fc = self.forecast(scope)
        row = fc.quarter(quarter)
        if target is None:
            configured = self._reader.settings.target(str(row["period"]), scope)
            target = configured.amount if configured else None
        if target is None:
            return None
        deals, basis = self.quarter_deals(scope, row)
        pipeline = float(deals["value"].fillna(0).sum())
        return odds(target, fc.grids.get(str(row["period"]), []), float(row["p50"]),
                    float(row["won_to_date"]), pipeline, basis)  # fmt: skip

    def quarter_deals(self, scope: Scope, row: pd.Series) -> tuple[pd.DataFrame, str]:
        """The open deals in scope expected to close in a quarter (its forecast row), and
        "quarter"; or every open deal in scope and "open" when the CRM gives open deals no
        close date at all (MavenTech)."""

        def rows() -> tuple[np.ndarray, str]:
            mine = self.rows_of(scope)
            close = self._close[mine]
            if len(mine) and np.isnat(close).all():
                return mine, "open"
            start, end = np.datetime64(pd.Timestamp(row["start"])), np.datetime64(pd.Timestamp(row["end"]))  # fmt: skip
            return mine[(close >= start) & (close <= end)], "quarter"

        kept, basis = self._keep(("quarter", str(scope), str(row["start"]), str(row["end"])), rows)
        return self.scores.iloc[kept], basis

    def rows_of(self, scope: Scope) -> np.ndarray:
        """The positions (in rank order) of the run's deals a scope covers, as `in_scope`."""

        def rows() -> np.ndarray:
            if scope.kind == "all":
                return np.arange(len(self.scores))
            column = self.scores[SCOPE_COLUMN[scope.kind]]
            return np.flatnonzero((column == scope.name).fillna(False).to_numpy(bool))

        return self._keep(("scope", str(scope)), rows)

    def _keep(self, key: tuple, make):
        """`make()`, worked out once per run for `key` and kept."""
        if key not in self._kept:
            self._kept[key] = make()
        return self._kept[key]

    def kept(self, key: tuple, make):
        """What a surface makes from this run alone (a chart), made once per run for `key`."""
        return self._keep(("surface", *key), make)

    @cached_property
    def twins(self) -> pd.Series:
        """Each deal's set of identical deals (`digest.twin_sets`, the digest's rule), index as
        `scores`, worked out once per run: the Home tab shows such a set once, as the digest
        does. Deals given their reasons later (a page below the run's explained top) keep the
        sets worked out before: a deal with reasons and its twin without are listed apart."""
        return pd.Series(twin_sets(self.scores), index=self.scores.index)

    @cached_property
    def _close(self) -> np.ndarray:
        """Each deal's expected close (NaT where it has none), parsed once per run."""
        close = pd.to_datetime(self.scores["expected_close"], errors="coerce")
        return close.to_numpy(dtype="datetime64[ns]")

    @cached_property
    def _accounts(self) -> tuple[np.ndarray, pd.Series]:
        """Each deal's account as a code into the run's distinct account names (-1: none), so
        that a search reads each name once, not once per deal."""
        codes, names = pd.factorize(self.scores["account"], use_na_sentinel=True)
        return codes, pd.Series(names)

    def movement(self, scope: Scope, since: pd.Timestamp, quarter: str | None = None) -> Movement:
        """What moved in a quarter's pipeline (this one by default) from `since` (or the first
        day of the history, if later: nothing is known before it) to the run's day, within a
        scope; values as the run values them (the product's list price where the CRM has no
        amount)."""
        row = self.forecast(scope).quarter(quarter)
        until, (since,) = pd.Timestamp(self.as_of), self._known_since([since])
        before, after = self._states(scope, [since, until])
        return movement(before, after, since, until, row["start"], row["end"])

    def movements(self, scope: Scope, quarter: str | None = None) -> tuple[Movement, Movement] | None:  # fmt: skip
        """What moved since last week and since the quarter began (from the day before it), or
        None when the history begins on the run's day (nothing to compare with). The pipeline
        of the run's day is read once for both."""
        row = self.forecast(scope).quarter(quarter)
        until = pd.Timestamp(self.as_of)
        start = min(pd.Timestamp(row["start"]), until) - pd.Timedelta(days=1)
        week, began = self._known_since([until - pd.Timedelta(days=7), start])
        if began >= until:
            return None
        then_week, then_began, now = self._states(scope, [week, began, until])
        return (movement(then_week, now, week, until, row["start"], row["end"]),
                movement(then_began, now, began, until, row["start"], row["end"]))  # fmt: skip

    def _known_since(self, days: list) -> list[pd.Timestamp]:
        """Each day, or the first day of the history if later (nothing is known before it)."""
        first = self._reader.db().execute("SELECT MIN(as_of) FROM deal_history").fetchone()[0]
        floor = pd.Timestamp(first or self.as_of)
        return [max(pd.Timestamp(d), floor) for d in days]

    def _states(self, scope: Scope, days: list[pd.Timestamp]) -> list[pd.DataFrame]:
        """Every deal's state at the end of each day, valued and placed as the run does, from one
        pass over the history for all the days."""
        db = self._reader.db()
        prices = dict(db.execute("SELECT product, sales_price FROM products").fetchall())
        removed = deal_history.removed_ids(db)
        team = self.teams.set_index("sales_agent") if len(self.teams) else None

        def placed(s: pd.DataFrame) -> pd.DataFrame:
            s = s[~s["deal_id"].isin(removed).to_numpy()].copy()
            listed = _looked_up(s["product"], pd.Series(prices, dtype=float))
            s["value"] = s["value"].where(s["value"].notna(), listed)
            if scope.kind in ("manager", "region"):  # the owner's team, for these scopes only
                column = {"manager": "manager", "region": "regional_office"}[scope.kind]
                s[scope.kind] = None if team is None else _looked_up(s["owner"], team[column])
            return in_scope(s, scope)

        return [placed(s) for s in deal_columns.states_on(db, days, MOVED)]

    def categories(self, scope: Scope, quarter: str | None = None) -> tuple[Rollup, str]:
        """The quarter by forecast category beside the model, and which deals it covers."""
        row = self.forecast(scope).quarter(quarter)

        def split() -> tuple[Rollup, str]:
            deals, basis = self.quarter_deals(scope, row)
            return rollup(deals, float(row["won_to_date"]), self._reader.stage_probabilities()), basis  # fmt: skip

        return self._keep(("categories", str(scope), str(row["period"])), split)

    @staticmethod
    def explain(deal: dict) -> tuple[list[dict], list[str]]:
        """A deal's saved reasons and actions (none for a deal the run did not explain)."""
        drivers, actions = deal.get("drivers"), deal.get("actions")
        if not isinstance(drivers, str):
            return [], []
        return json.loads(drivers), json.loads(actions if isinstance(actions, str) else "[]")

    @cached_property
    def ids(self) -> dict[str, int]:
        """Each deal's position by its id in lower case, built once per run for `/deal` in any
        case."""
        ids = self.scores["deal_id"].tolist()  # (iterating the column itself: 1.5 s a million)
        return {d.lower(): i for i, d in enumerate(ids)}

    def warm(self) -> SavedRun:
        """Work out now what the first `/deal` or `/forecast` would otherwise wait for."""
        _ = self.ids, self._accounts, self._close, self.rows_of(Scope("all")), self._longest_name
        return self

    def names(self, kind: str) -> list[str]:
        """The regions or managers known to the CRM."""

        def known() -> list[str]:
            column = {"region": "regional_office", "manager": "manager"}[kind]
            found = set(self.teams[column].dropna())
            return sorted(found | set(self.scores[SCOPE_COLUMN[kind]].dropna().unique()))

        return list(self._keep(("names", kind), known))

    def lookup(self, query: str, scope: Scope) -> Lookup:
        """A deal by id (any case; the caller checks access), else the open deals within `scope`
        of an account whose name contains the query, else the closest ids and account names
        within `scope` (so a suggestion never names another team's deal)."""
        q = query.strip()
        db = self._reader.db()
        # a Salesforce id as a report shows it (15 characters) is stored in its 18-character form
        for key in dict.fromkeys((q, salesforce_18(q))):
            if key.lower() in self.ids:
                found = self.scores["deal_id"].iat[self.ids[key.lower()]]
                return Lookup(deal=score_runs.run_deal(db, self.run_id, found))
            state = deal_history.deal_state(db, key)
            if state is not None:
                return Lookup(closed=state)
        mine = self.rows_of(scope)
        codes, accounts = self._accounts
        named = np.flatnonzero(accounts.str.contains(q, case=False, regex=False).to_numpy(bool))
        matches = self.scores.iloc[mine[np.isin(codes[mine], named)]]
        if len(matches) == 1:
            return Lookup(deal=score_runs.run_deal(db, self.run_id, matches.iloc[0]["deal_id"]))
        if len(matches) > 1:
            return Lookup(several=matches)
        return Lookup(suggestions=self._suggestions(q, scope, mine))

    def _suggestions(self, q: str, scope: Scope, mine: np.ndarray) -> list[str]:
        """The accounts and ids within a scope closest to a query that matched none: those one
        typo away, else difflib's closest (where there are few enough to compare one by one)."""
        codes, accounts = self._accounts
        present = self._present(scope)
        # a name one typo away is at most one character longer: a longer query (a pasted
        # paragraph) has none, and its one-typo variants would be gigabytes (4,000 characters:
        # 328,000 strings of 4,000, 1.3 GB)
        lower = self._lower_accounts
        typos = one_typo(q) if len(q) <= self._longest_name + 1 else set()
        near = np.array(sorted({lower[w] for w in typos if w in lower}), dtype=int)
        near = near[np.isin(near, present)]
        if len(near):
            close = sorted(accounts.iloc[near])[:3]
        elif len(present) <= DIFFLIB_POOL:
            close = difflib.get_close_matches(q, sorted(accounts.iloc[present]), n=3, cutoff=0.6)
        else:
            close = []
        ids = self.scores["deal_id"]
        column = None if scope.kind == "all" else self.scores[SCOPE_COLUMN[scope.kind]]
        near = sorted(self.ids[w] for w in typos if w in self.ids)  # by rank
        near = [ids.iat[i] for i in near if column is None or column.iat[i] == scope.name]
        if near:
            close += near[:3]
        elif len(mine) <= DIFFLIB_POOL:
            close += difflib.get_close_matches(q.upper(), ids.iloc[mine].tolist(), n=3, cutoff=0.6)
        return close[:5]

    def _present(self, scope: Scope) -> np.ndarray:
        """The codes of the accounts with an open deal in a scope, kept per scope."""

        def codes() -> np.ndarray:
            present = np.unique(self._accounts[0][self.rows_of(scope)])
            return present[present >= 0]

        return self._keep(("accounts", str(scope)), codes)

    @cached_property
    def _longest_name(self) -> int:
        """The longest account name or deal id of the run (what a typo can be one away from)."""
        return max(map(len, itertools.chain(self._lower_accounts, self.ids)), default=0)

    @cached_property
    def _lower_accounts(self) -> dict[str, int]:
        """Each account's code by its name in lower case (for suggestions in a big run)."""
        return {name.lower(): code for code, name in enumerate(self._accounts[1])}

    def deal(self, deal_id: str) -> dict | None:
        """The deal's row in this run (None if it was not open then)."""
        return score_runs.run_deal(self._reader.db(), self.run_id, deal_id)

    def flags(self, deal_id: str | None = None, rule: str | None = None) -> pd.DataFrame:
        """The hygiene rules this run's deals broke (see `Reader.flags`)."""
        return self._reader.flags(self.run_id, deal_id, rule)

    def hygiene_rules(self) -> pd.DataFrame:
        """Each hygiene rule's state with this run (see `Reader.hygiene_rules`)."""
        return self._reader.hygiene_rules(self.run_id)


class Reader:
    """Read access to the saved runs: one SQLite connection per thread, the latest run kept in
    memory until a newer one is saved (by this process or another)."""

    def __init__(
        self,
        db_path: Path,
        settings: Settings,
        add_scope: Callable[[int, Scope], None] | None = None,
        add_reasons: Callable[[int, list[str]], None] | None = None,
    ):
        self.db_path, self.settings, self._add_scope = Path(db_path), settings, add_scope
        self._add_reasons = add_reasons
        # the bot's own tables are made at the first connection rather than at a first claim
        # that could wait behind an import holding the write lock
        self._conns = database.PerThread(db_path, on_open=ledger.ensure_tables)
        self._latest: SavedRun | None = None
        self._lock = threading.Lock()

    def db(self):
        return self._conns.get()

    def close(self) -> None:
        self._conns.close()

    def latest(self) -> SavedRun | None:
        """The newest saved run (None before the first)."""
        run = score_runs.latest_run(self.db())
        if run is None:
            return None
        current = self._latest
        if current is not None and current.run_id == run["run_id"]:
            return current
        with self._lock:
            if self._latest is None or self._latest.run_id != run["run_id"]:
                self._latest = self._load(run).warm()
            return self._latest

    def run(self, run_id: int) -> SavedRun | None:
        latest = self.latest()
        if latest is not None and latest.run_id == run_id:
            return latest
        run = score_runs.run_of(self.db(), run_id)
        return None if run is None else self._load(run)

    def _load(self, run: dict) -> SavedRun:
        db = self.db()
        scores = score_runs.run_scores(db, run["run_id"])
        return SavedRun(run, scores, deal_history.teams(db), self)

    def forecast(self, run_id: int, scope: Scope) -> SavedForecast:
        """A scope's saved forecast; a scope not saved with the run is simulated once by the
        writer (when one was handed in) and saved."""
        db = self.db()
        saved = score_runs.run_forecast(db, run_id, str(scope))
        if saved is None and self._add_scope is not None:
            self._add_scope(run_id, scope)
            saved = score_runs.run_forecast(db, run_id, str(scope))
        if saved is None:
            raise NotForecast(f"run #{run_id} has no forecast for {scope.label}")
        won = pd.DataFrame(saved["won"], columns=["close_date", "value"])
        won["close_date"] = pd.to_datetime(won["close_date"])
        won["status"] = "won"
        return SavedForecast(
            scope=str(scope),
            as_of=pd.Timestamp(saved["as_of"]),
            table=pd.DataFrame(saved["table"]),
            won=won,
            open_deals=int(saved["open_deals"]),
            scenarios=int(saved["scenarios"]),
            grids=saved.get("grids") or {},  # a run saved before grids were kept has none
            new_per_week=saved.get("new_per_week"),
        )

    def ensure_reasons(self, saved: SavedRun, deal_ids: list[str]) -> None:
        """Deals of the latest run listed without saved reasons get them from the writer (once,
        saved with the run); `saved.scores` is brought up to date."""
        if not deal_ids or self._add_reasons is None:
            return
        self._add_reasons(saved.run_id, list(deal_ids))
        rows = {d: score_runs.run_deal(self.db(), saved.run_id, d) for d in deal_ids}
        index = saved.scores.index[saved.scores["deal_id"].isin(list(deal_ids))]
        for i in index:
            row = rows[saved.scores.at[i, "deal_id"]]
            saved.scores.at[i, "drivers"], saved.scores.at[i, "actions"] = (
                row["drivers"],
                row["actions"],
            )

    # -- what the digest and the buttons read beside the run -------------------------------

    def previous_run(self, run_id: int) -> dict | None:
        """The latest run before `run_id` made of other data: what "what changed" compares with
        (a run repeated on the same data changed nothing)."""
        return score_runs.previous_other_data(self.db(), run_id)

    def latest_header(self) -> dict | None:
        """The newest run's header row only (what a health check needs)."""
        return score_runs.latest_run(self.db())

    def run_header(self, run_id: int) -> dict | None:
        return score_runs.run_of(self.db(), run_id)

    def deal_in_run(self, run_id: int, deal_id: str) -> dict | None:
        return score_runs.run_deal(self.db(), run_id, deal_id)

    def run_scores(self, run_id: int, columns: tuple[str, ...] | None = None) -> pd.DataFrame:
        return score_runs.run_scores(self.db(), run_id, columns)

    def flags(self, run_id: int, deal_id: str | None = None, rule: str | None = None) -> pd.DataFrame:  # fmt: skip
        """The hygiene rules a run's deals broke, as the writer saved them: one row per deal and
        rule (deal_id, rule, detail, value, threshold) with the deal's owner, manager, region,
        account, stage, deal_value and value_at_risk in the run; of one deal or one rule if
        asked; each rule's deals furthest past its threshold first, then by value at risk."""
        return run_flags.run_flags(self.db(), run_id, deal_id, rule)

    def hygiene_rules(self, run_id: int) -> pd.DataFrame:
        """Each hygiene rule's state with a run, in the rules' order: rule, state (on, off or
        not available), threshold, flagged (deals), note (why not available, or the stages the
        stage rule could not check). Empty for a run saved before hygiene was evaluated."""
        rules = run_flags.run_rules(self.db(), run_id)
        order = rules["rule"].map({name: i for i, name in enumerate(RULE_NAMES)})
        return rules.iloc[order.fillna(len(RULE_NAMES)).argsort(kind="stable")].reset_index(drop=True)  # fmt: skip

    def closed_since(self, deal_ids) -> pd.DataFrame:
        return deal_history.closed_since(self.db(), deal_ids)

    def risk_history(self, deal_id: str) -> pd.DataFrame:
        return score_runs.deal_risk_history(self.db(), deal_id)

    def track_record(self, scope: Scope, today: str) -> TrackRecord:
        """A scope's forecasts and calls of the quarters over by `today` (the latest run's
        day), against what was won in them."""
        db = self.db()
        made = score_runs.saved_quarters(db, str(scope))
        said = pd.DataFrame(calls.history(db), columns=CALL_COLUMNS)
        said = said[said["scope"] == str(scope)]
        actuals = {}
        for quarter in closed_quarters(set(made["quarter"]) | set(said["quarter"]), today):
            period = pd.Period(quarter, freq="Q")
            won = deal_history.won_between(db, str(period.start_time.date()),
                                           str(period.end_time.date()))  # fmt: skip
            actuals[quarter] = float(in_scope(won, scope)["value"].sum())
        return track_record(str(scope), made, said, actuals)

    def tracked_scopes(self) -> list[Scope]:
        """Every scope a run has forecast, in name order."""
        rows = self.db().execute("SELECT DISTINCT scope FROM forecast_quarters ORDER BY scope")
        return [Scope.parse(s) for (s,) in rows]

    def stage_probabilities(self) -> dict[str, float]:
        """Each stage's default probability (%), where the CRM or the preset gives one."""
        rows = self.db().execute(
            "SELECT stage, probability FROM stages WHERE probability IS NOT NULL"
        )
        return {stage: float(p) for stage, p in rows}
