"""The database over a year: 365 daily score runs of 100,000 open deals, written as the refresh
writes them (`write_score_run`, a forecast per scope, the retention policy applied after each
run), then the size of the file and the reads the bot makes at the end of the year.

Run: python benchmarks/year_bench.py [--deals 100000] [--days 365] [--keep-all]

The runs are made up (the scoring itself is benchmarked in scoring_bench.py): each day a few
percent of the deals close and as many new ones open, risks drift, the top 1,000 carry reasons
as long as the real ones. `--keep-all` writes the same year with no retention, for comparison.
Prints figures only: the file's size, rows per table, the write time per run, and the p50/p95 of
the reads: the latest run loaded by a reader (once per new run), a `/deal` lookup (the deal's row
and its risk over the last runs) and the digest's comparison with the previous run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.reader import Reader  # noqa: E402
from bot.settings import Settings  # noqa: E402
from dataset import database, score_runs  # noqa: E402
from dataset.retention import Retention, prune  # noqa: E402

SCOPES = ("all", "region:East", "region:West", "region:Central")
REASONS = json.dumps(
    [{"key": "activity", "text": "no activity for 28 days, longer than 90% of won deals went "
      "without activity (2 days)", "points": -18.0, "risk": 26.0, "value": 11500.0}] * 3
)  # fmt: skip
ACTIONS = json.dumps(["Re-engage: no activity for 28 days. Book a call with the buyer this week."])


def _deals(rng: np.random.Generator, ids: np.ndarray) -> pd.DataFrame:
    n = len(ids)
    return pd.DataFrame(
        {
            "owner": rng.choice([f"Rep {i}" for i in range(200)], n),
            "manager": rng.choice([f"Manager {i}" for i in range(20)], n),
            "region": rng.choice(["East", "West", "Central"], n),
            "product": rng.choice(["GTX Basic", "GTX Pro", "MG Special", "GTK 500"], n),
            "account": rng.choice([f"Account {i}" for i in range(5000)], n),
            "stage": rng.choice(["Prospecting", "Engaging"], n),
            "value": rng.lognormal(8, 1, n).round(0),
            "win_prob": rng.beta(2, 3, n),
            "expected_close": pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 200, n), "D"),
            "value_known": True,
            "forecast_category": rng.choice(["Pipeline", "Best Case", "Commit"], n),
        },
        index=pd.Index(ids, name="deal_id"),
    )  # fmt: skip


def _scores(deals: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    s = deals.copy()
    s["win_prob"] = np.clip(s["win_prob"] + rng.normal(0, 0.01, len(s)), 0.01, 0.99)
    s["risk"] = np.round(100 * (1 - s["win_prob"]) * 0.8, 1)
    s["value_at_risk"] = s["value"] * (1 - s["win_prob"])
    for part in ("risk_loss", "risk_velocity", "risk_stagnation", "risk_size"):
        s[part] = s["risk"] / 4
    s = s.sort_values("value_at_risk", ascending=False)
    s["rank"] = np.arange(1, len(s) + 1)
    s["drivers"], s["actions"] = None, None
    s.iloc[:1000, s.columns.get_loc("drivers")] = REASONS
    s.iloc[:1000, s.columns.get_loc("actions")] = ACTIONS
    return s


class _Forecast:
    """What `save_forecast` reads of a live forecast: a table by period, as the real one."""

    def __init__(self, as_of: date, pipeline: float):
        weeks = pd.date_range(pd.Timestamp(as_of), periods=26, freq="W-MON")
        self.table = pd.DataFrame(
            {"period": [f"week of {w.date()}" for w in weeks], "kind": "week",
             "start": weeks, "end": weeks + pd.Timedelta(days=7), "won_to_date": 0.0,
             "p10": pipeline * 0.01, "p50": pipeline * 0.02, "p90": pipeline * 0.03,
             "mean": pipeline * 0.02, "from_pipeline": pipeline * 0.015, "from_new": 0.0}
        )  # fmt: skip
        this = pd.Timestamp(as_of).to_period("Q")
        self.grids = {}
        for quarter in (this, this + 1):
            won = pipeline * 0.05 if quarter == this else 0.0
            self.table.loc[len(self.table)] = [
                str(quarter), "quarter", quarter.start_time, quarter.end_time, won,
                won + pipeline * 0.1, won + pipeline * 0.2, won + pipeline * 0.3,
                won + pipeline * 0.2, pipeline * 0.15, pipeline * 0.05]  # fmt: skip
            self.grids[str(quarter)] = list(
                won + np.linspace(pipeline * 0.05, pipeline * 0.35, 101)
            )
        self.as_of, self.open_deals, self.scenarios, self.sigma = as_of, 0, 10_000, 0.4


def write_day(db, day: date, scores: pd.DataFrame) -> int:
    """A day's run as the refresh writes it: its deals, then a forecast per scope."""
    run_id = score_runs.write_score_run(db, as_of=day, scores=scores, model_hash="m",
                                        confidence="high", base_rate=0.4)  # fmt: skip
    pipeline = float(scores["value"].sum())
    for scope in SCOPES:
        score_runs.save_forecast(db, run_id, scope, _Forecast(day, pipeline), [])
    return run_id


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000


def year(path: Path, deals: int, days: int, policy: Retention | None) -> None:
    rng = np.random.default_rng(7)
    db = database.connect(path)
    next_id = deals
    book = _deals(rng, np.array([f"D{i:08d}" for i in range(deals)]))
    start = date(2024, 1, 1)
    writes: list[float] = []
    for d in range(days):
        day = start + timedelta(days=d)
        churn = rng.random(len(book)) < 0.01  # a year: each deal open ~100 days on average
        fresh = np.array([f"D{i:08d}" for i in range(next_id, next_id + int(churn.sum()))])
        next_id += len(fresh)
        book = pd.concat([book[~churn], _deals(rng, fresh)])
        scores = _scores(book, rng)
        t0 = time.perf_counter()
        write_day(db, day, scores)
        if policy is not None:
            prune(db, policy)
        writes.append(time.perf_counter() - t0)
        if (d + 1) % 30 == 0:
            print(f"  day {d + 1}: {path.stat().st_size / 2**20:,.0f} MB, last write "
                  f"{writes[-1]:.2f} s", flush=True)  # fmt: skip
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = path.stat().st_size / 2**20
    counts = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
              for t in ("score_runs", "deal_scores", "score_columns", "run_forecasts", "forecast_quarters",
                        "pruned_runs")}  # fmt: skip
    print(
        f"after {days} runs: {size:,.0f} MB; rows: "
        + ", ".join(f"{k} {v:,}" for k, v in counts.items())
    )
    print(f"write + forecasts + retention per run: median {statistics.median(writes):.2f} s, "
          f"max {max(writes):.2f} s")  # fmt: skip
    db.close()
    reads(path, book.index.to_numpy(), rng)


def reads(path: Path, open_ids: np.ndarray, rng: np.random.Generator) -> None:
    """The reads at the end of the year, by the bot's own reader (a fresh process would open the
    file the same way)."""
    loads, deals, digests = [], [], []
    for _ in range(5):
        reader = Reader(path, Settings())
        t0 = time.perf_counter()
        saved = reader.latest()
        loads.append(time.perf_counter() - t0)
        reader.close()
    reader = Reader(path, Settings())
    saved = reader.latest()
    for deal_id in rng.choice(open_ids, 300):
        t0 = time.perf_counter()
        row = saved.deal(str(deal_id))
        history = reader.risk_history(str(deal_id))
        deals.append(time.perf_counter() - t0)
        assert row is not None and len(history) > 0
    db = reader.db()
    for _ in range(10):
        t0 = time.perf_counter()
        changes = score_runs.risk_changes(db, saved.run_id)
        digests.append(time.perf_counter() - t0)
    assert changes["previous_risk"].notna().mean() > 0.9
    print(f"reader loads the latest run ({len(saved.scores):,} deals): "
          f"median {statistics.median(loads) * 1000:,.0f} ms")  # fmt: skip
    print(f"/deal reads (its row + its risk over the last runs): p50 {_pct(deals, 50):.2f} ms, "
          f"p95 {_pct(deals, 95):.2f} ms over {len(deals)}")  # fmt: skip
    print(f"digest: each deal beside its previous run: p50 {_pct(digests, 50):,.0f} ms, "
          f"p95 {_pct(digests, 95):,.0f} ms")  # fmt: skip
    reader.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--keep-all", action="store_true", help="also the year with no retention")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{args.days} daily runs of {args.deals:,} open deals, retention as configured by "
              "default (every run for 90 days, then the last of each week):")  # fmt: skip
        year(Path(tmp) / "kept.db", args.deals, args.days, Retention())
        if args.keep_all:
            print("the same year with no retention:")
            year(Path(tmp) / "all.db", args.deals, args.days, None)


if __name__ == "__main__":
    main()
