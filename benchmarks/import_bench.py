"""Import and re-import of one large deals export: time and peak memory, beside the re-import's
floor (hashing the file, which a re-import cannot skip).

Run: python benchmarks/import_bench.py [--rows 2000000]
Each step runs in its own process so that its peak RSS is its own (every process imports the
same modules, so the floor's RSS is the baseline a re-import can reach). Prints figures; asserts
nothing.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHUNK = 250_000
AGENTS = [f"Agent {i}" for i in range(35)]
PRODUCTS = ["GTX Basic", "GTX Pro", "MG Special", "MG Advanced", "GTX Plus Pro", "GTK 500"]
ACCOUNTS = [f"Account {i}" for i in range(85)]
STAGES = np.array(["Prospecting", "Engaging", "Won", "Lost"])


def _write_export(rows: int, path: Path) -> None:
    """A MavenTech-shaped export: open and closed deals, dates in 2016-2017, amounts on wins."""
    rng = np.random.default_rng(0)
    start = pd.Timestamp("2016-01-01")
    with path.open("w", encoding="utf-8", newline="") as fh:
        for first in range(0, rows, CHUNK):
            n = min(CHUNK, rows - first)
            stage = STAGES[rng.choice(4, n, p=[0.1, 0.2, 0.4, 0.3])]
            engage = start + pd.to_timedelta(rng.integers(0, 600, n), unit="D")
            close = engage + pd.to_timedelta(rng.integers(1, 120, n), unit="D")
            closed = np.isin(stage, ["Won", "Lost"])
            frame = pd.DataFrame(
                {
                    "opportunity_id": [f"D{i:08d}" for i in range(first, first + n)],
                    "sales_agent": np.array(AGENTS)[rng.integers(0, len(AGENTS), n)],
                    "product": np.array(PRODUCTS)[rng.integers(0, len(PRODUCTS), n)],
                    "account": np.array(ACCOUNTS)[rng.integers(0, len(ACCOUNTS), n)],
                    "deal_stage": stage,
                    "engage_date": engage.strftime("%Y-%m-%d"),
                    "close_date": np.where(closed, close.strftime("%Y-%m-%d"), ""),
                    "close_value": np.where(stage == "Won", rng.integers(100, 30_000, n), 0),
                }
            )
            frame.loc[stage != "Won", "close_value"] = None
            frame.to_csv(fh, index=False, header=first == 0, lineterminator="\n")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _step(kind: str, export: Path, db_path: Path, rows: int) -> None:
    if kind == "write":
        start = time.perf_counter()
        _write_export(rows, export)
        size = export.stat().st_size / 1e6
        print(f"export: {rows:,} rows, {size:,.0f} MB, written in "
              f"{time.perf_counter() - start:.1f} s", flush=True)  # fmt: skip
        return
    from dataset import database
    from dataset.ingest import file_sha256, ingest_files

    start = time.perf_counter()
    if kind == "hash":
        file_sha256(export)
        what = "sha256 of the file: the re-import's floor"
    else:
        (result,) = ingest_files(database.connect(db_path), [export])
        what = f"{result.status}: {result.rows_read:,} rows read"
    seconds = time.perf_counter() - start
    print(f"{kind:<9} {seconds:8.2f} s  peak RSS {_peak_mb():7,.0f} MB  ({what})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows in the export")
    parser.add_argument("--step", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        _step(args.step[0], Path(args.step[1]), Path(args.step[2]), int(args.step[3]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        export, db_path = Path(tmp) / "pipeline.csv", Path(tmp) / "bench.db"
        # every step in its own process: Linux carries a parent's peak RSS into a forked child
        for kind in ("write", "import", "reimport", "hash"):
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--step",
                    kind,
                    str(export),
                    str(db_path),
                    str(args.rows),
                ],
                check=True,
                cwd=ROOT,
            )


if __name__ == "__main__":
    main()
