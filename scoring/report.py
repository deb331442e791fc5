"""The evaluation report: Markdown for people, JSON for machines, a reliability diagram PNG."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from scoring.evaluate import SHIPPED, open_deal_check, reliability  # noqa: E402
from scoring.features import CATEGORICAL, NUMERIC  # noqa: E402
from scoring.samples import STALE_AFTER  # noqa: E402
from scoring.scorer import confidence_text  # noqa: E402
from scoring.train import Training  # noqa: E402


def reliability_png(training: Training, path: Path) -> Path:
    """Predicted vs observed win rate of the shipped model on all cutoffs' test rows."""
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.plot([0, 1], [0, 1], color="#999999", lw=1, ls="--", label="perfectly calibrated")
    tests = [r.test for r in training.cutoffs if len(r.test)]
    if tests:
        test = pd.concat(tests)
        y, w = test["label"].to_numpy(), test["weight"].to_numpy()
        for name, color in ((SHIPPED, "#1f77b4"), ("base rate", "#ff7f0e")):
            rel = reliability(y, test[f"p_{name}"].to_numpy(), w)
            ax.plot(rel["predicted"], rel["observed"], marker="o", color=color, label=name)
    else:
        ax.text(0.5, 0.5, "not enough history for a backtest", ha="center", va="center")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted win probability")
    ax.set_ylabel("observed win rate")
    ax.set_title("Reliability: open deals on past weeks, as scored then")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _pct(a: float, b: float) -> str:
    return f"{(a / b - 1):+.1%}" if b else "-"


def history_text(trained_on: dict) -> str:
    """How much pipeline history the model had, in months: what a newcomer asks first."""
    start, end = trained_on.get("history_start"), trained_on.get("data_end")
    if not start or not end:
        return "no pipeline history"
    days = (pd.Timestamp(end) - pd.Timestamp(start)).days
    if days < 1:  # one export (MavenTech): the pipeline's past comes from its deals' dates
        return f"one export of the pipeline ({start}), its past rebuilt from the deals' dates"
    if days < 31:
        return f"{days} day{'s' if days > 1 else ''} of pipeline history (from {start})"
    months = round(days / 30.44)
    return f"{months} month{'s' if months != 1 else ''} of pipeline history (from {start})"


def markdown(training: Training, source: str) -> str:
    meta, model = training.meta, training.model
    t = meta["trained_on"]
    lines = [
        "# Win-probability model: evaluation report",
        "",
        f"Data: {source}; as of {t['data_end']}; {history_text(t)}.",
        f"Shipped model trained on {t['rows']:,} snapshot rows of {t['deals']:,} deals "
        f"({t['first_snapshot']} to {t['last_snapshot']}, {t['snapshots']} snapshot days); "
        f"{t['still_open']:,} rows are of deals still open, labelled with the model's estimate "
        f"for their latest state. Average open deal's win chance: {t['win_rate']:.1%}.",
        f"Blend with that base rate: {model.blend:.2f} (1 = model only, 0 = base rate only); "
        f"skill on past cutoffs: {model.skill:.1%} less log loss than the base rate.",
        f"**{confidence_text(model)}**",
        "",
        "## Mean over the cutoffs (the deals open in the 13 weeks after each, as scored then)",
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
              "| base log loss | shipped ECE |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in training.cutoffs:
        s, b = r.by_method[SHIPPED], r.by_method["base rate"]
        lines.append(
            f"| {r.cutoff.date()} | {r.train_rows:,} ({r.train_deals:,}) | {r.test_rows:,} "
            f"({r.test_deals:,}) | {s['auc']:.3f} | {s['log_loss']:.4f} | {b['log_loss']:.4f} | "
            f"{s['ece']:.4f} |"
        )
    lines += ["", "## The deals open on each cutoff day, against what became of them", "",
              "Deals still open at the data's end are left out (their outcome is unknown), "
              f"unless open {STALE_AFTER:g} times longer than any deal took to close: those "
              "count as not won; deals already that old on the cutoff day are left out "
              "(decided before they were scored).", "",
              "| cutoff | deals | expected wins | wins | sum of value x p | won value | gap |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in training.cutoffs:
        c = open_deal_check(r)
        if c:
            lines.append(
                f"| {r.cutoff.date()} | {c['deals']:,} | {c['expected_wins']:,.0f} | "
                f"{c['wins']:,.0f} | {c['expected_value']:,.0f} | {c['won_value']:,.0f} | "
                f"{_pct(c['expected_value'], c['won_value'])} |"
            )
    checks = meta["evaluation"].get("against_truth") or []
    if checks:
        lines += ["", "## Against the known truth (generated data)", "",
                  "The deals open on each day, scored by the model of that day, against the "
                  "generator's true win probabilities. Aims: expected-AUC gap <= 0.02, ECE < 0.02, "
                  "sum of value x p within 5% of the truth's.", "",
                  "| day | model | deals | expected AUC (truth) | gap | ECE vs truth | mean p (truth) "
                  "| value x p vs truth |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for c in checks:
            lines.append(
                f"| {c['day']} | {c['what']} | {c['deals']:,} | {c['auc_model']:.3f} "
                f"({c['auc_truth']:.3f}) | {c['auc_gap']:.3f} | {c['ece_truth']:.3f} | "
                f"{c['mean_p']:.3f} ({c['mean_truth']:.3f}) | {c['value_gap']:+.1%} |"
            )
    lines += [
        "",
        "## Method",
        "",
        "Weekly snapshots of the deals open on each day, features as known that day. At each "
        "cutoff the model is trained as it could have been on that day: snapshots before it, "
        "outcomes known by it, deals still open censored (labelled with a first model's estimate "
        "for their latest state); it is tested on the 13 weeks after the cutoff against the "
        "outcomes known at the data's end. The blend with the base rate of each cutoff is chosen "
        "on the other cutoffs. See `scoring/train.py` and `scoring/evaluate.py`.",
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
            "open_deals": open_deal_check(r),
        }
        for r in training.cutoffs
    }
    payload = {"meta": training.meta, "per_cutoff": per_cutoff}
    (folder / "report.json").write_text(
        json.dumps(payload, indent=2, default=lambda o: None if o is np.nan else str(o)),
        encoding="utf-8",
    )
    return folder / "report.md"
