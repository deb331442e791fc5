"""Scoring and training rows on a Dask cluster: the same pipeline, by partitions of deals, with the
same scores as on one machine.

What runs where, and why that keeps the scores identical:
- The client splits the deals into contiguous blocks of the deals table (each block with its
  deals' history, activity and stage spells, and the small reference tables) and scatters them.
- Pass 1, on the workers (`survey`): each block's open deals as of the day (`open_deals_at`, the
  costly part, kept on the worker for pass 2), and what the population-wide references are made
  of: the open deals' product and amount, the deals closed before the day, their won stage spells.
- On the client (`shared`): those references, once, over all the deals: the win rates and
  typical durations (`rates.rates_before`), the median amounts a deal without one is valued at
  (`features.value_refs`) and the median open value that risk judges size by. A reference made
  within one block would differ from block to block; these are the ones the single process makes.
- Pass 2, on the workers (`score_block`): features, win probability and risk, row by row, with
  those references and the same model (scattered once).
- The client gathers the blocks in order (the deals table's, as one process has it), ranks,
  explains the top deals (SHAP: `scorer.ranked`) and hands the run to the refresh, the one writer;
  workers never touch the database.
`distributed.Client.map` over blocks rather than `dask.dataframe.map_partitions`: a block is
several tables (deals, history, activity), and the global step sits between two passes.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scoring import samples
from scoring.crm import Crm, among
from scoring.features import ValueRefs, features_of, open_deals_at, value_refs, value_used
from scoring.model import WinModel
from scoring.rates import Rates, rates_before
from scoring.risk import median_value, score_frame
from scoring.scorer import ScoreRun, predict, ranked

if TYPE_CHECKING:  # Dask is imported only where a cluster is used
    from distributed import Client

DEALS_PER_BLOCK = 50_000  # a block's deals: big enough to amortise a task, small to spread
CLOSED_COLUMNS = ["deal_id", "status", "owner", "product", "account", "engage_date", "closed_on",
                  "late_days"]  # fmt: skip


@dataclass(frozen=True)
class Survey:
    """What one block tells the client before it is scored (pass 1)."""

    values: pd.DataFrame  # product, value: its open deals' state on the day
    closed: pd.DataFrame  # its deals closed before the day (the columns `rates_before` reads)
    won_spells: pd.DataFrame  # the stage spells of those of them that were won


@dataclass(frozen=True)
class Shared:
    """The population-wide references of a day, made once on the client and sent to each block."""

    as_of: pd.Timestamp
    rates: Rates
    values: ValueRefs
    median: float  # the median value of the open deals (risk's size is judged by it)
    tables: Crm  # the reference tables and exported columns (no deals)


def tables_of(crm: Crm) -> Crm:
    """`crm` without its deals: what every block shares."""
    return replace(crm, deals=crm.deals.iloc[:0], history=crm.history.iloc[:0],
                   activity=crm.activity.iloc[:0], spells=crm.spells.iloc[:0])  # fmt: skip


def split(crm: Crm, blocks: int) -> list[Crm]:
    """`crm` as `blocks` contiguous blocks of its deals table, each with its deals' rows of the
    other tables (in their order: a deal's history stays sorted) and all the reference tables."""
    n = len(crm.deals)
    blocks = max(1, min(blocks, n))
    bounds = np.linspace(0, n, blocks + 1).astype(int)
    block_of = pd.Series(np.repeat(np.arange(blocks), np.diff(bounds)), index=crm.deals["deal_id"])

    def rows_of(frame: pd.DataFrame) -> np.ndarray:
        if frame.empty:
            return np.full(len(frame), -1)
        return frame["deal_id"].map(block_of).fillna(-1).to_numpy()

    history, activity, spells = rows_of(crm.history), rows_of(crm.activity), rows_of(crm.spells)
    return [
        replace(
            crm,
            deals=crm.deals.iloc[bounds[k] : bounds[k + 1]],
            history=crm.history[history == k],
            activity=crm.activity[activity == k],
            spells=crm.spells[spells == k],
        )
        for k in range(blocks)
    ]


def survey(block: Crm, t: pd.Timestamp) -> tuple[pd.DataFrame, Survey]:
    """Pass 1 (on a worker): the block's open deals' states on day t, and its `Survey`."""
    state = open_deals_at(block, t)
    d = block.deals
    closed = d.loc[(d["closed_on"] < t).to_numpy(), [c for c in CLOSED_COLUMNS if c in d]]
    won = closed.loc[closed["status"].eq("won").to_numpy(), "deal_id"]
    spells = block.spells
    won_spells = spells[among(spells["deal_id"], won)] if len(spells) else spells
    return state, Survey(state[["product", "value"]], closed, won_spells)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Blocks' frames one after another (empty ones left out, as they carry no rows but may carry
    other dtypes; all of them empty: the first)."""
    full = [f for f in frames if len(f)]
    return pd.concat(full) if full else frames[0]


def shared(surveys: list[Survey], tables: Crm, t: pd.Timestamp) -> Shared:
    """The references over all the blocks: what `features_at` and `score_frame` compute over all
    the deals on one machine, from the same rows."""
    closed = _concat([s.closed for s in surveys])
    spells = _concat([s.won_spells for s in surveys])
    rates = rates_before(replace(tables, deals=closed, spells=spells), t)
    values = _concat([s.values for s in surveys])
    refs = value_refs(values)
    median = median_value(value_used(values, tables, refs).to_numpy(dtype=float))
    return Shared(as_of=t, rates=rates, values=refs, median=median, tables=tables)


def score_block(
    state: pd.DataFrame, ref: Shared, model: WinModel
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pass 2 (on a worker): the features and scores (`risk.score_frame`) of a block's deals."""
    f = features_of(state, ref.tables, ref.as_of, ref.rates, ref.values)
    return f, score_frame(f, predict(model, f), ref.median)


def blocks_for(crm: Crm, workers: int) -> int:
    """About DEALS_PER_BLOCK deals a block, and at least two blocks a worker."""
    return max(2 * workers, -(-len(crm.deals) // DEALS_PER_BLOCK))


def score_blocks(
    client: Client, blocks: list, tables: Crm, model: WinModel, t: pd.Timestamp
) -> list:
    """Futures of each block's (features, scores), left on the workers (a caller that cannot
    hold every deal gathers only what it needs: `benchmarks/dask_bench.py`). `blocks`: futures
    of `Crm` blocks, or blocks; the caller should not keep the list, so that each block can be
    freed once its first pass is done."""
    passes = client.map(survey, blocks, t=t)
    del blocks
    states = client.map(operator.itemgetter(0), passes)
    found = client.gather(client.map(operator.itemgetter(1), passes))
    del passes
    ref = shared(found, tables, t)
    [ref_f, model_f] = client.scatter([ref, model], broadcast=True)
    return client.map(score_block, states, ref=ref_f, model=model_f)


def score_features(
    client: Client, blocks: list, tables: Crm, model: WinModel, t: pd.Timestamp
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features and scores of every block, gathered in block order."""
    scored = client.gather(score_blocks(client, blocks, tables, model, t))
    f, s = _concat([f for f, _ in scored]), _concat([s for _, s in scored])
    # ids as plain Python strings, as `features_at` gives them (the trip back from the workers
    # makes them pandas' Arrow strings)
    f.index, s.index = f.index.astype(object), s.index.astype(object)
    return f, s


def score(
    client: Client,
    crm: Crm,
    model: WinModel,
    refs: dict,
    as_of: pd.Timestamp | None = None,
    explain_top: int = 1000,
    blocks: int | None = None,
) -> ScoreRun:
    """`scorer.score` with features, probability and risk computed on the cluster: the same run."""
    as_of = pd.Timestamp(as_of) if as_of is not None else crm.data_end
    workers = len(client.scheduler_info(n_workers=-1)["workers"])
    scattered = client.scatter(split(crm, blocks or blocks_for(crm, workers)))
    f, s = score_features(client, scattered, tables_of(crm), model, as_of)
    del scattered
    return ranked(f, s, model, refs, as_of, explain_top)


def _snapshot(crm: Crm, day: pd.Timestamp) -> pd.DataFrame:
    return samples.snapshot_rows(crm, [day])


def snapshot_rows(client: Client, crm: Crm, dates: list) -> pd.DataFrame:
    """`samples.snapshot_rows` with each day's features built on a worker (each day is a whole
    `features_at`, with that day's own references; the CRM is sent to each worker once)."""
    dates = [pd.Timestamp(d) for d in dates]
    if not dates:
        return samples.snapshot_rows(crm, [])
    [crm_f] = client.scatter([crm], broadcast=True)
    return pd.concat(client.gather(client.map(_snapshot, [crm_f] * len(dates), dates)))


def all_rows(client: Client, crm: Crm) -> pd.DataFrame:
    """`train.all_rows(crm)` built on the cluster."""
    dates = samples.snapshot_dates(crm, samples.first_snapshot(crm), crm.data_end)
    return snapshot_rows(client, crm, dates)
