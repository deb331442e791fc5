"""`/deal` and `/forecast` with a big run loaded: the bot's own answer code (the reader and the
reply builders, chart included), timed per request, after the latest run is in memory.

Run: python benchmarks/reader_bench.py [--deals 1000000] [--requests 200]

- One score run of --deals made-up open deals (as year_bench.py makes them: 200 reps, 20
  managers, 3 regions, 5,000 accounts, the top 1,000 with reasons) is written as the refresh
  writes it, with a forecast per scope (all, each region); outside any timing.
- A fresh reader loads the latest run (timed: once per new run, paid by the first request or by
  `revbot serve` warming up).
- `/deal`: --requests queries: half deal ids (any case), 40% account names, 10% misspelt account
  names (answered with suggestions), through
  `deal_answer` (lookup, access check, the deal's risk history, the reply's blocks).
- `/forecast`: --requests queries over all and each region, this quarter, through
  `forecast_request` and `forecast_reply` (odds of the target, the categories, the calls, the fan
  chart's PNG).
- The morning digest (`morning.compose`: the deals listed, twins collapsed, what changed) of the
  whole company and of a region, first against no earlier run, then against the day before's run
  of as many deals (written after the first timings); and the Home tab (`home_tabs.scope_view`)
  of a leader and of a region, two pages each.
- What the hourly nudge pass decides (`bot.nudges`: who hears of which deal, against the day
  before's run, every rep in the roster), without Slack or the ledger.
The Slack round trip is not included (bot_bench.py and serve_bench.py time it). The aims:
`/deal` p95 under 20 ms, `/forecast` under 300 ms. Prints figures only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.year_bench import _deals, _scores, write_day  # noqa: E402
from bot.home import HomeState  # noqa: E402
from bot.home_tabs import scope_view  # noqa: E402
from bot.listeners.commands import deal_answer, forecast_reply, forecast_request  # noqa: E402
from bot.morning import compose  # noqa: E402
from bot.nudges import candidates, crossed, owners_map  # noqa: E402
from bot.reader import Reader  # noqa: E402
from bot.settings import Member, Scope, Settings  # noqa: E402
from dataset import database  # noqa: E402

USER = "U0LEADER"


def _ms(times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * len(ms))) - 1)]
    return f"p50 {statistics.median(ms):,.1f} ms, p95 {p95:,.1f} ms, max {ms[-1]:,.1f} ms"


def write_run(path: Path, deals: int, day: date = date(2024, 3, 1)) -> np.ndarray:
    """One run of `deals` open deals with its forecasts; returns the deals' ids."""
    rng = np.random.default_rng(3 + day.toordinal() % 7)
    book = _deals(np.random.default_rng(3), np.array([f"D{i:08d}" for i in range(deals)]))
    scores = _scores(book, rng)
    db = database.connect(path)
    t0 = time.perf_counter()
    write_day(db, day, scores)
    db.close()
    print(f"wrote a run of {deals:,} open deals in {time.perf_counter() - t0:,.1f} s")
    return scores.index.to_numpy()


def _once(label: str, make) -> None:
    t0 = time.perf_counter()
    make()
    print(f"  {label}: {(time.perf_counter() - t0) * 1000:,.0f} ms")


def digests_and_home(reader: Reader, previous: int | None) -> None:
    """The morning digest of the company and of a region, and the Home tab's first pages."""
    saved = reader.latest()
    for scope in (Scope("all"), Scope("region", "East")):
        _once(f"digest of {scope.label} (top 10 at risk 40+)", lambda scope=scope: compose(
            reader, saved, scope=scope, top=10, min_risk=40, previous_run=previous, weekly=False))  # fmt: skip
    if previous is None:
        for scope in (Scope("all"), Scope("region", "East")):
            for page in (0, 1):
                _once(f"Home tab of {scope.label}, page {page + 1}",
                      lambda scope=scope, page=page: scope_view(reader, saved, scope,
                                                                HomeState(page=page)))  # fmt: skip


def nudges(reader: Reader, previous: int) -> None:
    """The hourly nudge pass's decisions: the deals that crossed the risk threshold against the
    day before's run, and who hears of which deal and rule (crossings and hygiene flags)."""
    saved = reader.latest()
    reps = sorted(saved.scores["owner"].dropna().unique())
    owners = owners_map({f"U{i}": Member(f"U{i}", "rep", str(n)) for i, n in enumerate(reps)})

    def decide() -> None:
        before = reader.run_scores(previous, ("deal_id", "risk"))
        kept = crossed(saved.scores, before, owners, 60.0).assign(since="2024-03-01")
        found = candidates(saved.scores, kept, saved.flags(), owners, 60.0)
        print(f"  {len(kept):,} deals crossed risk 60; {len(found):,} (deal, rule) for "
              f"{found['user_id'].nunique():,} people")  # fmt: skip

    _once(f"nudges for {len(reps):,} reps (reading the day before's risks included)", decide)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "revbot.db"
        ids = write_run(path, args.deals)
        reader = Reader(path, Settings())
        t0 = time.perf_counter()
        saved = reader.latest()
        print(f"reader loads the latest run ({len(saved.scores):,} deals): "
              f"{time.perf_counter() - t0:,.2f} s")  # fmt: skip
        rng = np.random.default_rng(5)
        queries = [str(d).lower() if i % 2 else str(d) for i, d in
                   enumerate(rng.choice(ids, args.requests // 2))]  # fmt: skip
        accounts = args.requests - len(queries) - args.requests // 10
        queries += [f"Account {i}" for i in rng.integers(0, 5000, accounts)]
        queries += [f"Acount {i}" for i in rng.integers(0, 5000, args.requests - len(queries))]
        rng.shuffle(queries)
        by_kind: dict[str, list[float]] = {"id": [], "account": [], "misspelt account": []}
        for q in queries:
            t0 = time.perf_counter()
            reply, _ = deal_answer(reader, USER, q)
            kind = "account" if q.startswith("Account") else "misspelt account" if q.startswith("Acount") else "id"  # fmt: skip
            by_kind[kind].append(time.perf_counter() - t0)
            assert "blocks" in reply or "text" in reply
        print(f"/deal: {len(queries)} requests, " + _ms(sum(by_kind.values(), [])))
        for kind, times in by_kind.items():
            print(f"  by {kind}: {_ms(times)}")
        texts = ["", "East", "West", "Central"]
        times, first = [], None
        for i in range(args.requests):
            t0 = time.perf_counter()
            request = forecast_request(reader, USER, texts[i % len(texts)])
            assert not isinstance(request, dict), request
            title, comment, png = forecast_reply(reader, *request)
            elapsed = time.perf_counter() - t0
            if i < len(texts):
                first = max(first or 0.0, elapsed)  # each scope's forecast read once
            else:
                times.append(elapsed)
            assert png.startswith(b"\x89PNG") and comment
        print(f"/forecast: {len(times)} requests, {_ms(times)} (first of each scope: up to "
              f"{first * 1000:,.0f} ms)")  # fmt: skip
        print("the morning digest and the Home tab, once each (the first Home tab works out "
              "the run's sets of identical deals):")  # fmt: skip
        digests_and_home(reader, None)
        first_run = saved.run_id
        write_run(path, args.deals, date(2024, 3, 2))
        print("the morning digest against the day before's run:")
        digests_and_home(reader, first_run)
        print("the hourly nudge pass's decisions:")
        nudges(reader, first_run)
        reader.close()


if __name__ == "__main__":
    main()
