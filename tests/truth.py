"""Hold revbot to a known truth: import a generated world's exports as a user would, train, score,
and compare with the generator's true win probabilities, outcomes and causes of risk.

Used by the tests (CI-sized worlds) and by `benchmarks/trust_bench.py` (full-size worlds, several
seeds). The checks are those of issue 10:
- at the last export: the expected AUC of revbot's probabilities against the truth's own (the AUC
  expected when outcomes are drawn from the true probabilities), the ECE against the true
  probabilities (10 bins), the share of deals with a visible cause whose top reason names it;
- at an earlier cutoff, with only the exports up to it imported: the AUC against the real
  outcomes next to the truth's AUC on the same deals, and sum of value x p against the truth's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from dataset import database, deal_history
from dataset.backup import backup
from dataset.ingest import ingest_files
from scoring.evaluate import ece, expected_auc
from scoring.features import prepare
from scoring.scorer import score
from scoring.train import train

# Which reasons name each cause (a reason key of `scoring.reasons`).
CAUSE_KEYS = {
    "stagnation": {"activity", "time in stage"},
    "ghosted": {"activity", "time in stage"},
    "pushed": {"pushes", "expected close"},
    "low_quality": {"next step", "time in stage", "stage"},
    "discounted": {"amount"},
    "reassigned": {"owner change"},
}


@dataclass
class World:
    """A generated world written to disk: its exports, in the order a user imports them, and
    its truth."""

    name: str
    exports: list[tuple[date, Path]]  # (day the export was taken, file), oldest first
    reference: list[Path]  # reference tables imported before the exports (may be empty)
    truth: pd.DataFrame  # export_day (date), deal_id, p_true, cause, cause_visible
    outcomes: pd.DataFrame  # deal_id, cause, won, value
    keys: dict[str, set[str]] = field(default_factory=lambda: CAUSE_KEYS)


def module_world(name: str, module, cfg, out: Path) -> World:
    """A world of `dataset.worlds.stages` or `.inbound`."""
    w = module.generate(cfg)
    module.write(w, out)
    files = sorted((out / "exports").iterdir())
    days = module.export_days(w)
    assert len(files) == len(days)
    by_day = {d: module.truth_at(w, d).assign(export_day=d) for d in days}
    truth = pd.concat(by_day.values(), ignore_index=True)
    # files are named by export time, so name order is time order
    return World(name, list(zip(days, files, strict=True)), [], truth, module.outcomes(w))


def demo_world(cfg, out: Path) -> World:
    """The demo generator's world (`dataset.demo`), with its point-in-time truth."""
    from dataset.demo import export_days, generate, true_probability, write_demo

    write_demo(out, cfg)
    w = generate(cfg)
    days = [*export_days(cfg), (cfg.end - cfg.start).days]
    exports, frames = [], []
    for d in days:
        day = cfg.start + pd.Timedelta(days=d).to_pytimedelta()
        path = out / "exports" / f"pipeline_{day.isoformat()}.csv"
        exports.append((day, path if path.exists() else out / "sales_pipeline.csv"))
        p = true_probability(w, d)
        visible = np.where(w.cause == "stagnation", w.stall_seen_from <= d, w.push_seen_from <= d)
        vis = pd.Series(visible & (w.cause != "none"), index=w.deal_id).reindex(p.index)
        cause = pd.Series(w.cause, index=w.deal_id).reindex(p.index)
        frames.append(pd.DataFrame({"export_day": day, "deal_id": p.index, "p_true": p.to_numpy(),
                                    "cause": cause.to_numpy(), "cause_visible": vis.to_numpy()}))  # fmt: skip
    outcomes = pd.DataFrame(
        {"deal_id": w.deal_id, "cause": w.cause, "won": w.won, "value": w.value}
    )
    reference = [out / "accounts.csv", out / "products.csv", out / "sales_teams.csv"]
    return World("demo", exports, reference, pd.concat(frames, ignore_index=True), outcomes)


def _import(world: World, db_path: Path, until: date | None = None, start: Path | None = None):
    """Import the exports up to `until` (all by default) as a user would, into a new database,
    or into a copy of `start` (a database holding the first of them: those it holds are
    recognised by their hash and skipped, as a daily import would)."""
    if start is not None:
        backup(start, db_path)
    db = database.connect(db_path)
    files = [p for d, p in world.exports if until is None or d <= until]
    ingest_files(db, [*world.reference, *files])
    return db


def _top_key(drivers: str | None) -> str | None:
    reasons = json.loads(drivers) if drivers else []
    return reasons[0]["key"] if reasons and reasons[0]["risk"] > 0 else None


def check_last_export(world: World, folder: Path, start: Path | None = None) -> dict:
    """Import every export, train, score at the last one, compare with the truth there.
    `start`: a database that already holds the first exports (see `_import`)."""
    db = _import(world, folder / "all.db", start=start)
    crm = prepare(deal_history.load_crm(db))
    training = train(crm)
    run = score(crm, training.model, training.meta["references"], explain_top=1_000_000)
    last = world.exports[-1][0]
    truth = world.truth[world.truth["export_day"] == last].set_index("deal_id")
    s = run.scores.join(truth, how="inner")
    p, q = s["win_prob"].to_numpy(), s["p_true"].to_numpy(float)
    named = s[s["cause_visible"].astype(bool) & (s["cause"] != "none")]
    hits = [
        _top_key(d) in world.keys.get(c, set())
        for c, d in zip(named["cause"], named["drivers"], strict=True)
    ]
    by_cause = {
        c: float(np.mean([h for h, cc in zip(hits, named["cause"], strict=True) if cc == c]))
        for c in sorted(set(named["cause"]))
    }
    return {
        "world": world.name,
        "open_deals": len(run.scores),
        "matched": len(s),
        "auc_model": expected_auc(p, q),
        "auc_truth": expected_auc(q, q),
        "auc_gap": expected_auc(q, q) - expected_auc(p, q),
        "ece_truth": ece(q, p, np.ones(len(p))),
        "mean_p": float(p.mean()),
        "mean_truth": float(q.mean()),
        "cause_named": float(np.mean(hits)) if hits else float("nan"),
        "cause_named_by_cause": by_cause,
        "confidence": training.model.confidence,
        "skill": training.model.skill,
        "training": training,
        "scores": s,
    }


def check_cutoff(world: World, folder: Path, weeks_back: int = 26) -> dict:
    """Import the exports up to a cutoff `weeks_back` weeks before the last, train and score as
    of it, compare with the real outcomes and the truth of the deals open then."""
    days = [d for d, _ in world.exports]
    cutoff = days[max(0, len(days) - 1 - weeks_back)]
    db = _import(world, folder / "cutoff.db", until=cutoff)
    crm = prepare(deal_history.load_crm(db))
    db.close()
    training = train(crm)
    run = score(crm, training.model, training.meta["references"], explain_top=0)
    truth = world.truth[world.truth["export_day"] == cutoff].set_index("deal_id")
    out = world.outcomes.set_index("deal_id")
    s = run.scores.join(truth, how="inner").join(out[["won"]], how="inner")
    y = s["won"].astype(float).to_numpy()
    p, q, v = s["win_prob"].to_numpy(), s["p_true"].to_numpy(float), s["value"].to_numpy(float)
    from sklearn.metrics import roc_auc_score

    auc_p, auc_q = roc_auc_score(y, p), roc_auc_score(y, q)
    return {
        "world": world.name,
        "cutoff": cutoff,
        "deals": len(s),
        "auc_model": auc_p,
        "auc_truth": auc_q,
        "auc_gap": auc_q - auc_p,
        "value_x_p": float((v * p).sum()),
        "value_x_truth": float((v * q).sum()),
        "value_gap": float((v * p).sum() / (v * q).sum() - 1),
        "ece_truth": ece(q, p, np.ones(len(p))),
    }
