"""Ingest throughput and peak memory: MavenTech as published, a generated 1,000,000-deal export,
and a generated history of many weekly exports (15,000 deals, 81 exports of a few thousand rows:
an import of a CRM's past, where each file's own work counts more than its rows).

Run: python benchmarks/ingest_bench.py [--deals 1000000] [--maventech ../shared/datasets/maventech]
Each case runs in its own process so that its peak RSS is its own. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
HISTORY_DEALS = 15_000  # the tests' generated world (tests/conftest.py: GENERATED)


def _case(kind: str, source: str, workdir: str) -> None:
    from dataset import database
    from dataset.ingest import ingest_files

    db = database.connect(Path(workdir) / f"{kind}.db")
    sources = [Path(source), Path(source) / "exports"] if kind == "history" else [Path(source)]
    start = time.perf_counter()
    results = ingest_files(db, sources)
    seconds = time.perf_counter() - start
    rows = sum(r.rows_read for r in results if r.status == "imported")
    deals = sum(r.rows_read for r in results if r.table == "deals")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    files = sum(r.status == "imported" for r in results)
    print(
        f"{kind:<10} {rows:>10,} rows ({deals:,} deal rows, {files} files) in {seconds:6.2f} s = "
        f"{rows / seconds:>10,.0f} rows/s; peak RSS {peak_mb:,.0f} MB"
    )


def _generate(deals: int, tmp: Path) -> None:
    from dataset.demo import DemoConfig, write_demo

    start = time.perf_counter()
    write_demo(tmp / "generated", DemoConfig(deals=deals, weekly_exports=False, daily_exports=0))
    (tmp / "generated" / "sales_pipeline.csv").rename(tmp / "pipeline.csv")
    write_demo(tmp / "history", DemoConfig(deals=HISTORY_DEALS, daily_exports=0, seed=21))
    print(f"generated {deals:,} deals and a history in {time.perf_counter() - start:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--maventech", default=str(ROOT.parent / "shared/datasets/maventech"))
    parser.add_argument("--case", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        if args.case[0] == "generate":
            _generate(int(args.case[1]), Path(args.case[2]))
        else:
            _case(*args.case)
        return

    # every step in its own process: Linux carries a parent's peak RSS into a forked child
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, __file__, "--case", "generate", str(args.deals), tmp],
            check=True,
            cwd=ROOT,
        )
        for kind, source in (
            ("maventech", args.maventech),
            ("generated", str(Path(tmp) / "pipeline.csv")),
            ("history", str(Path(tmp) / "history")),
        ):
            subprocess.run(
                [sys.executable, __file__, "--case", kind, source, tmp], check=True, cwd=ROOT
            )


if __name__ == "__main__":
    main()
