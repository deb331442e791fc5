"""Forecast speed and memory: 10,000 scenarios over MavenTech's open deals and over 100,000
generated open deals, and the fan chart's render time.

Run: python benchmarks/forecast_bench.py [--deals 100000] [--maventech ../shared/datasets/maventech]
Time is the median of repeated runs; memory is the peak of the simulation's own allocations
(tracemalloc, which sees numpy's arrays) in a separate run. A pipeline big enough for its small
deals to be summed by their normal law (`forecasting.many_small`) is also simulated drawing every
deal, for the time and the quarters' quantiles side by side. Prints figures only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.scoring_bench import open_pipeline  # noqa: E402
from dataset import database, deal_history  # noqa: E402
from dataset.demo import write_demo  # noqa: E402
from dataset.ingest import ingest_files  # noqa: E402
from forecasting import inputs, montecarlo  # noqa: E402
from forecasting.chart import fan_chart  # noqa: E402
from forecasting.forecast import forecast  # noqa: E402
from forecasting.montecarlo import simulate  # noqa: E402
from forecasting.periods import calendar  # noqa: E402
from scoring.features import features_at, prepare  # noqa: E402


def case(label: str, crm, repeats: int) -> None:
    t = crm.data_end
    f = features_at(crm, t)
    base = float(
        (crm.deals["status"] == "won").sum() / crm.deals["status"].isin(["won", "lost"]).sum()
    )
    deals = inputs.open_deals(crm, t, f["base_rate"].to_numpy(), f)
    km = inputs.fit_timing(crm, t)
    arrivals = inputs.arrivals(crm, t, base)
    periods, _ = calendar(t)

    def run():
        return simulate(
            deals, km, periods, scenarios=10_000, seed=1, shock_sigma=0.4, arrivals=arrivals
        )

    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    run()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    print(
        f"{label}: {len(deals):,} open deals, {len(periods.names)} periods, 10,000 scenarios: "
        f"median {statistics.median(times):.3f} s over {repeats} runs; peak {peak:,.0f} MB"
    )
    if len(deals) > montecarlo.DRAW_ALL:  # the small deals were summed: against drawing all
        summed = run().table
        draw_all, montecarlo.DRAW_ALL = montecarlo.DRAW_ALL, len(deals)
        t0 = time.perf_counter()
        drawn = run().table
        print(f"  every deal drawn one by one instead: {time.perf_counter() - t0:.3f} s")
        montecarlo.DRAW_ALL = draw_all
        q = (drawn["kind"] == "quarter").to_numpy()
        for col in ("p10", "p50", "p90"):
            gap = (summed.loc[q, col] / drawn.loc[q, col] - 1).abs().max()
            print(f"  quarters' {col}: the two differ by {gap:.2%} at most (same seed)")
    if label == "MavenTech":
        fc = forecast(crm, t, f, f["base_rate"].to_numpy(), sigma=0.4)
        renders = []
        for _ in range(10):
            t0 = time.perf_counter()
            fan_chart(fc.table, crm.deals, t, target=1_000_000)
            renders.append(time.perf_counter() - t0)
        print(f"fan chart render: median {statistics.median(renders):.3f} s over 10 renders")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--maventech", default=str(ROOT.parent / "shared/datasets/maventech"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        db = database.connect(tmp / "m.db")
        ingest_files(db, [args.maventech])
        case("MavenTech", prepare(deal_history.load_crm(db)), repeats=10)
        write_demo(tmp / "big", open_pipeline(args.deals))
        big = database.connect(tmp / "big.db")
        ingest_files(big, [tmp / "big" / "sales_pipeline.csv"])
        case("generated", prepare(deal_history.load_crm(big)), repeats=3)


if __name__ == "__main__":
    main()
