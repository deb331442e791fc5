"""How far to trust the scores: revbot against known truths, and against MavenTech's outcomes.

For each generated world (the demo generator, `dataset.worlds.stages` in Salesforce report
format, `dataset.worlds.inbound` in HubSpot format) and each seed, the exports are imported as a
user would, the model trained and the deals scored; the figures are compared with the aims of
issue 10 (see `tests/truth.py` for what each figure is). MavenTech has no truth: its figures are
the backtest's (log loss against the base rate's, ECE).

    python benchmarks/trust_bench.py                       # all worlds, seeds 1-3, full size
    python benchmarks/trust_bench.py --worlds stages --seeds 1 --deals 4000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from dataset import database, deal_history  # noqa: E402
from dataset.demo import DemoConfig  # noqa: E402
from dataset.ingest import ingest_files  # noqa: E402
from dataset.worlds import inbound, stages  # noqa: E402
from scoring.evaluate import SHIPPED  # noqa: E402
from scoring.features import prepare  # noqa: E402
from scoring.train import train  # noqa: E402
from tests.truth import check_cutoff, check_last_export, demo_world, module_world  # noqa: E402

AIMS = "aims: AUC gap <= 0.02, ECE vs truth < 0.02, cause named >= 80%, value x p within +-5%"


def make(name: str, seed: int, deals: int | None, out: Path):
    if name == "demo":
        cfg = DemoConfig(deals=deals or 15000, daily_exports=0, seed=seed)
        return demo_world(cfg, out)
    module = {"stages": stages, "inbound": inbound}[name]
    cfg = module.Config(seed=seed, **({"deals": deals} if deals else {}))
    return module_world(name, module, cfg, out)


def maventech(path: Path, folder: Path) -> dict:
    db = database.connect(folder / "m.db")
    ingest_files(db, [path])
    t = train(prepare(deal_history.load_crm(db)))
    s, b = t.summary.loc[SHIPPED], t.summary.loc["base rate"]
    return {"log_loss": s["log_loss"], "base_log_loss": b["log_loss"], "ece": s["ece"],
            "auc": s["auc"], "confidence": t.model.confidence}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worlds", default="demo,stages,inbound")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--deals", type=int, help="deals per world (default: each world's own)")
    ap.add_argument("--weeks-back", type=int, default=26, help="the earlier cutoff")
    ap.add_argument("--maventech", type=Path, default=ROOT.parent / "shared/datasets/maventech")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.worlds.split(","):
            for seed in map(int, args.seeds.split(",")):
                folder = Path(tmp) / f"{name}{seed}"
                start = time.perf_counter()
                world = make(name, seed, args.deals, folder / "crm")
                early = check_cutoff(world, folder, args.weeks_back)
                last = check_last_export(world, folder, start=folder / "cutoff.db")
                rows.append({
                    "world": name, "seed": seed, "open": last["open_deals"],
                    "AUC gap": last["auc_gap"], "ECE truth": last["ece_truth"],
                    "mean p": last["mean_p"], "mean truth": last["mean_truth"],
                    "cause named": last["cause_named"],
                    "by cause": ", ".join(f"{k} {v:.0%}" for k, v in last["cause_named_by_cause"].items()),
                    "confidence": last["confidence"],
                    "cutoff": str(early["cutoff"]), "AUC gap (outcomes)": early["auc_gap"],
                    "value x p gap": early["value_gap"], "ECE truth (cutoff)": early["ece_truth"],
                    "seconds": time.perf_counter() - start,
                })  # fmt: skip
                print(pd.DataFrame(rows[-1:]).round(3).to_string(index=False), flush=True)
        table = pd.DataFrame(rows)
        print("\n" + AIMS)
        print(table.round(3).to_string(index=False))
        if (args.maventech / "sales_pipeline.csv").exists():
            m = maventech(args.maventech, Path(tmp))
            print(
                "\nMavenTech (backtest over 4 cutoffs; aims: log loss <= base rate's, ECE < 0.03):"
            )
            print({k: round(v, 4) if isinstance(v, float) else v for k, v in m.items()})


if __name__ == "__main__":
    main()
