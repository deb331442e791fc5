"""The evaluation report: Markdown for people, JSON for machines, a reliability diagram PNG."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from scoring.evaluate import reliability  # noqa: E402
from scoring.features import CATEGORICAL, NUMERIC  # noqa: E402
from scoring.scorer import confidence_text  # noqa: E402
from scoring.train import Training  # noqa: E402

SHIPPED = "shipped (calibrated, blended)"


def reliability_png(training: Training, path: Path) -> Path:
    """Predicted vs observed win rate of the shipped model on all cutoffs' test rows."""
    test = pd.concat([r.test for r in training.cutoffs])
    y, w = test["label"].to_numpy(), test["weight"].to_numpy()
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.plot([0, 1], [0, 1], color="#999999", lw=1, ls="--", label="perfectly calibrated")
    for name, color in ((SHIPPED, "#1f77b4"), ("base rate", "#ff7f0e")):
        rel = reliability(y, test[f"p_{name}"].to_numpy(), w)
        ax.plot(rel["predicted"], rel["observed"], marker="o", color=color, label=name)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted win probability")
    ax.set_ylabel("observed win rate (deal-weighted)")
    ax.set_title("Reliability over all test cutoffs")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def markdown(training: Training, source: str) -> str:
    meta, model = training.meta, training.model
    t = meta["trained_on"]
    lines = [
        "# Win-probability model: evaluation report",
        "",
        f"Data: {source}; as of {t['data_end']}.",
        f"Shipped model trained on {t['rows']:,} snapshot rows of {t['deals']:,} deals "
        f"({t['first_snapshot']} to {t['last_snapshot']}, {t['snapshots']} snapshot days), "
        f"deal-weighted win rate {t['win_rate']:.1%}.",
        f"Calibration: {model.calibrator.kind}; blend with the base rate: {model.blend:.2f} "
        f"(1 = model only, 0 = base rate only); skill on the calibration slice: "
        f"{model.skill:.1%} less log loss than the base rate.",
        f"**{confidence_text(model)}**",
        "",
        "## Mean over the cutoffs",
        "",
        "| method | AUC | log loss | Brier | ECE (10 bins) |",
        "|---|---|---|---|---|",
    ]
    for name, row in training.summary.iterrows():
        lines.append(
            f"| {name} | {row['auc']:.3f} | {row['log_loss']:.4f} | {row['brier']:.4f} | "
            f"{row['ece']:.4f} |"
        )
    lines += ["", "## Per cutoff", "",
              "| cutoff | train rows (deals) | test rows (deals) | shipped AUC | shipped log loss "
              "| base log loss | shipped ECE | blend |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in training.cutoffs:
        s, b = r.by_method[SHIPPED], r.by_method["base rate"]
        lines.append(
            f"| {r.cutoff.date()} | {r.train_rows:,} ({r.train_deals:,}) | {r.test_rows:,} "
            f"({r.test_deals:,}) | {s['auc']:.3f} | {s['log_loss']:.4f} | {b['log_loss']:.4f} | "
            f"{s['ece']:.4f} | {r.shipped.blend:.2f} |"
        )
    lines += [
        "",
        "## Method",
        "",
        "Weekly snapshots of the deals open on each day, features as known that day; label: the "
        "deal's eventual outcome (rows of deals still open at the data's end are left out). "
        "Training before each cutoff, testing on the 13 weeks after it; metrics weighted "
        "1/rows-per-deal. See `scoring/evaluate.py`.",
        "",
        f"Features: {', '.join(NUMERIC)}; categorical: {', '.join(CATEGORICAL)}.",
        "",
        "![reliability](reliability.png)",
        "",
    ]
    return "\n".join(lines)


def write(training: Training, folder: Path, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    reliability_png(training, folder / "reliability.png")
    (folder / "report.md").write_text(markdown(training, source), encoding="utf-8")
    per_cutoff = {
        r.cutoff.date().isoformat(): {
            "train_rows": r.train_rows,
            "train_deals": r.train_deals,
            "test_rows": r.test_rows,
            "test_deals": r.test_deals,
            "metrics": r.by_method,
        }
        for r in training.cutoffs
    }
    payload = {"meta": training.meta, "per_cutoff": per_cutoff}
    (folder / "report.json").write_text(
        json.dumps(payload, indent=2, default=lambda o: None if o is np.nan else str(o)),
        encoding="utf-8",
    )
    return folder / "report.md"
