"""Scoring N generated deals on a local Dask cluster (2 worker processes) out of core, side by side
with the single process where that fits in memory.

Run: python benchmarks/dask_bench.py [--deals 10000000] [--block 100000] [--single-max 2000000]
                                     [--memory-limit 3GB]
Each case runs in its own process, so that its peak RSS is its own:
1. setup (not timed): the model trained on the default demo (as `scoring_bench.py`); one export of
   `--block` deals, most of them open (its span is the last 60 days), ingested and prepared: the
   template block, pickled.
2. dask: a LocalCluster of 2 workers (1 thread each, `--memory-limit` each, beyond which Dask
   spills to disk). Block i of N / block is the template with its deal ids renamed, made by a
   worker from the pickle; then `scoring.distributed.score_blocks` (pass 1, the references on the
   client, pass 2); each worker writes its blocks' scores to Parquet and returns only their top
   1,000 by value at risk; the client explains the overall top 1,000 (SHAP). No process holds
   all N deals: the client gathers the product and amount of each open deal (the medians are
   exact over all of them) and a few columns of the closed ones (the rates), the workers spill
   to disk past their limit.
3. single (if N <= --single-max): the same blocks concatenated into one CRM and `scorer.score`
   (explain_top=1000), as the refresh does; its scores are compared with the Dask run's Parquet.
Prints time and peak memory of each.
"""

from __future__ import annotations

import argparse
import json
import pickle
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TOP = 1000


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def setup(block: int, tmp: Path) -> None:
    from benchmarks.scoring_bench import demo_model
    from dataset import database, deal_history
    from dataset.demo import DemoConfig, write_demo
    from dataset.ingest import ingest_files
    from scoring import distributed
    from scoring.features import prepare

    demo_model(tmp)
    end = DemoConfig().end
    cfg = DemoConfig(deals=block, start=end - timedelta(days=60), weekly_exports=False,
                     daily_exports=0)  # fmt: skip
    write_demo(tmp / "block", cfg)
    db = database.connect(tmp / "block.db")
    ingest_files(db, [tmp / "block" / "sales_pipeline.csv"])
    crm = prepare(deal_history.load_crm(db))
    (tmp / "template.pkl").write_bytes(pickle.dumps(crm))
    # what the client needs of it: the reference tables and the day (not the deals)
    (tmp / "tables.pkl").write_bytes(pickle.dumps(distributed.tables_of(crm)))
    print(f"setup: model trained; template block of {len(crm.deals):,} deals "
          f"({int((crm.deals['status'] == 'open').sum()):,} open)")  # fmt: skip


def make_block(template: str, i: int):
    """Block i: the template with every deal id suffixed `-i` (and its deal numbers moved past
    the other blocks'), so that blocks are distinct deals."""
    crm = pickle.loads(Path(template).read_bytes())
    per_block = int(crm.deals["deal_no"].max()) + 1  # every deal is numbered (`prepare`)

    def renamed(frame):
        if frame.empty or "deal_id" not in frame:
            return frame
        frame = frame.assign(deal_id=frame["deal_id"] + f"-{i}")
        if "deal_no" in frame:  # -1 (activity of a deal the CRM lacks) stays -1
            frame["deal_no"] = frame["deal_no"].where(frame["deal_no"] < 0, frame["deal_no"] + i * per_block)  # fmt: skip
        return frame

    return replace(crm, deals=renamed(crm.deals), history=renamed(crm.history),
                   activity=renamed(crm.activity), spells=renamed(crm.spells))  # fmt: skip


def write_and_top(scored, i: int, out: str):
    """On a worker: write block i's scores, return the features and scores of its top TOP by
    value at risk (a stable sort: ties keep the deals' order, as one process's ranking does)."""
    f, s = scored
    s.to_parquet(Path(out) / f"scores-{i:06d}.parquet")
    top = s.sort_values("value_at_risk", ascending=False, kind="stable").index[:TOP]
    return f.loc[top], s.loc[top]


def _worker_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _spilled(dask_worker) -> int:
    return int(getattr(dask_worker.data, "spilled_total", (0, 0))[1])


def run_dask(deals: int, block: int, memory_limit: str, tmp: Path) -> None:
    import pandas as pd
    from distributed import Client, LocalCluster

    from scoring import artifact, distributed, scorer

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           memory_limit=memory_limit, dashboard_address=None)  # fmt: skip
    client = Client(cluster)
    model, meta = artifact.load(tmp / "model")
    tables = pickle.loads((tmp / "tables.pkl").read_bytes())
    as_of = tables.data_end
    n_blocks = -(-deals // block)
    out = tmp / "dask-scores"
    out.mkdir(exist_ok=True)
    spilled, stop = [0], threading.Event()

    def sample() -> None:
        while not stop.wait(1.0):
            spilled[0] = max(spilled[0], sum(client.run(_spilled).values()))

    threading.Thread(target=sample, daemon=True).start()
    t0 = time.perf_counter()
    blocks = client.map(make_block, [str(tmp / "template.pkl")] * n_blocks, range(n_blocks))
    scored = distributed.score_blocks(client, blocks, tables, model, as_of)
    del blocks
    t1 = time.perf_counter()
    tops = client.gather(client.map(write_and_top, scored, range(n_blocks), out=str(out)))
    del scored
    t2 = time.perf_counter()
    f = pd.concat([f for f, _ in tops])
    s = pd.concat([s for _, s in tops])
    top = s.sort_values("value_at_risk", ascending=False, kind="stable").index[:TOP]
    run = scorer.ranked(f.loc[top], s.loc[top], model, meta["references"], as_of, TOP)
    t3 = time.perf_counter()
    stop.set()
    workers = sorted(client.run(_worker_peak_mb).values())
    run.scores.to_parquet(tmp / "dask-top.parquet")
    print(f"dask, 2 workers x 1 thread, memory limit {memory_limit} each: {n_blocks} blocks")
    print(f"  blocks made, pass 1, references, pass 2 submitted      {t1 - t0:8.1f} s")
    print(f"  pass 2 + scores written to Parquet by the workers     {t2 - t1:8.1f} s")
    print(f"  top {TOP:,} ranked and explained on the client (SHAP)  {t3 - t2:8.1f} s")
    print(f"  total {t3 - t0:.1f} s; peak RSS: client (with the scheduler) {_peak_mb():,.0f} MB, "
          f"workers {' and '.join(f'{w:,.0f}' for w in workers)} MB; spilled to disk at most "
          f"{spilled[0] / 2**20:,.0f} MB")  # fmt: skip
    print(json.dumps({"dask_seconds": round(t3 - t0, 1), "client_mb": round(_peak_mb()),
                      "worker_mb": [round(w) for w in workers]}))  # fmt: skip
    client.close()
    cluster.close()


def run_single(deals: int, block: int, tmp: Path) -> None:
    import numpy as np
    import pandas as pd

    from scoring import artifact, scorer

    model, meta = artifact.load(tmp / "model")
    n_blocks = -(-deals // block)
    t0 = time.perf_counter()
    blocks = [make_block(str(tmp / "template.pkl"), i) for i in range(n_blocks)]
    crm = replace(blocks[0], **{k: pd.concat([getattr(b, k) for b in blocks], ignore_index=True)
                                for k in ("deals", "history", "activity", "spells")})  # fmt: skip
    del blocks
    t1 = time.perf_counter()
    run = scorer.score(crm, model, meta["references"], crm.data_end, TOP)
    t2 = time.perf_counter()
    print(f"single process: {len(crm.deals):,} deals in one CRM")
    print(f"  blocks made and concatenated                          {t1 - t0:8.1f} s")
    print(f"  features + probability + risk + top {TOP:,} explained   {t2 - t1:8.1f} s")
    print(f"  total {t2 - t0:.1f} s; peak RSS {_peak_mb():,.0f} MB")
    dask = pd.concat(pd.read_parquet(p) for p in sorted((tmp / "dask-scores").glob("*.parquet")))
    ours = run.scores.loc[dask.index]
    gap = max(np.abs(dask[c].to_numpy() - ours[c].to_numpy()).max() for c in ("win_prob", "risk"))
    top = pd.read_parquet(tmp / "dask-top.parquet")
    ours_top = run.scores.iloc[:TOP]
    same_top = list(top.index) == list(ours_top.index) and all(
        (top[c].to_numpy() == ours_top[c].to_numpy()).all() for c in ("rank", "drivers", "actions")
    )
    print(f"  {len(dask):,} open deals scored by both; largest difference in win probability "
          f"or risk {gap:.1e}; the same top {TOP:,} with the same reasons: {same_top}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deals", type=int, default=10_000_000)
    parser.add_argument("--block", type=int, default=100_000, help="deals per block")
    parser.add_argument("--single-max", type=int, default=2_000_000)
    parser.add_argument("--memory-limit", default="3GB", help="per Dask worker")
    parser.add_argument("--case", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        kind, tmp = args.case[0], Path(args.case[1])
        if kind == "setup":
            setup(args.block, tmp)
        elif kind == "dask":
            run_dask(args.deals, args.block, args.memory_limit, tmp)
        else:
            run_single(args.deals, args.block, tmp)
        return
    print(f"Dask scoring benchmark, {date.today()}: {args.deals:,} deals in blocks of "
          f"{args.block:,}")  # fmt: skip
    common = ["--deals", str(args.deals), "--block", str(args.block),
              "--memory-limit", args.memory_limit]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        cases = ["setup", "dask"] + (["single"] if args.deals <= args.single_max else [])
        for kind in cases:
            subprocess.run([sys.executable, __file__, *common, "--case", kind, tmp], check=True,
                           cwd=ROOT)  # fmt: skip
        if "single" not in cases:
            print(f"single process: not run ({args.deals:,} deals > --single-max)")


if __name__ == "__main__":
    main()
