"""The win model's training with LightGBM's two threads, on an idle machine and with one or both
cores kept busy by other processes (the bot answering Slack, a backup, a second job): how long
OpenMP's threads spin while they wait for each other decides whether busy cores cost a little or
most of the time.

Run: python benchmarks/threads_bench.py [--runs 3]
Each training runs in a fresh process (OpenMP reads its settings when it loads): revbot's
setting (GOMP_SPINCOUNT=1000, set by `scoring` unless the environment sets it) against libgomp's
own default (300,000 spins before a thread sleeps). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SETTINGS = {"revbot (GOMP_SPINCOUNT=1000)": None, "libgomp's default (300,000)": "300000"}


def _prepare(folder: Path) -> None:
    from dataset import database
    from dataset.demo import DemoConfig, write_demo
    from dataset.ingest import ingest_files

    write_demo(folder / "crm", DemoConfig())
    ingest_files(database.connect(folder / "demo.db"), [folder / "crm", folder / "crm" / "exports"])


def _train(folder: Path) -> None:
    """One shipped-model training (every pass) with two threads; prints wall and CPU seconds."""
    import pandas as pd

    from dataset import database, deal_history
    from scoring import model
    from scoring.features import prepare
    from scoring.train import fit_at

    model.PARAMS["num_threads"] = 2
    crm = prepare(deal_history.load_crm(database.connect(folder / "demo.db")))
    start, cpu = time.perf_counter(), time.process_time()
    fit_at(crm, crm.data_end + pd.Timedelta(days=1))
    print(f"{time.perf_counter() - start:.3f} {time.process_time() - cpu:.3f}")


def _run(folder: Path, spin: str | None) -> tuple[float, float]:
    env = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}
    if spin is not None:
        env["GOMP_SPINCOUNT"] = spin
    out = subprocess.run([sys.executable, __file__, "--train", str(folder)], env=env, check=True,
                         capture_output=True, text=True, cwd=ROOT).stdout.split()  # fmt: skip
    return float(out[-2]), float(out[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--train", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.train:
        _train(Path(args.train))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _prepare(folder)
        print(f"training the shipped model on the demo ({args.runs} runs each, 2 threads, "
              f"{os.cpu_count()} cores); wall s (CPU s), median [min-max]")  # fmt: skip
        for busy, case in ((0, "idle"), (1, "one core busy"), (2, "both cores busy")):
            # cores kept busy by other processes for the whole case
            burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                       for _ in range(busy)]  # fmt: skip
            try:
                for name, spin in SETTINGS.items():
                    runs = [_run(folder, spin) for _ in range(args.runs)]
                    walls = [w for w, _ in runs]
                    print(f"  {case:<16} {name:<30} {statistics.median(walls):6.2f} s "
                          f"({statistics.median(c for _, c in runs):.2f}) "
                          f"[{min(walls):.2f}-{max(walls):.2f}]")  # fmt: skip
            finally:
                for burner in burners:
                    burner.kill()
                    burner.wait()


if __name__ == "__main__":
    main()
