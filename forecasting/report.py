"""The runtime forecast test (`revbot train --backtest`, the first main job): a Markdown table
and a plot of forecast bands against what closed, written as forecast_test.* (the study of
`benchmarks/forecast_backtest_study.py` writes forecast_backtest.md beside it)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from forecasting.backtest import Backtest  # noqa: E402


def plot(bt: Backtest, path: Path, weeks: int = 13) -> Path:
    fig = Figure(figsize=(7, 3.5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for method, color, shift in (
        ("ours", "#08519c", -0.15),
        ("exponential baseline", "#ff7f0e", 0.15),
    ):
        r = bt.rows[(bt.rows["method"] == method) & (bt.rows["weeks"] == weeks)].reset_index()
        x = r.index + shift
        ax.vlines(x, r["p10"], r["p90"], color=color, lw=4, alpha=0.6, label=f"{method} P10-P90")
        ax.plot(x, r["p50"], "_", color=color, ms=10)
    r = bt.rows[(bt.rows["method"] == "ours") & (bt.rows["weeks"] == weeks)].reset_index()
    ax.plot(r.index, r["actual"], "k*", label="actual")
    ax.set_xticks(r.index, r["cutoff"], rotation=45, fontsize=7)
    ax.set_title(f"Revenue won in the {weeks} weeks after each cutoff", fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    return path


def timing_text(bt: Backtest) -> str:
    """How ours timed the wins at the past dates, in words."""
    n = bt.rows["cutoff"].nunique()
    text = "At the past dates, ours timed wins by the product's time to win and the deal's age"
    if not bt.staged:
        text += "."
    else:
        text += (f", corrected by the deal's stage (the exports' stage history) at {bt.staged} of"
                 f" the {n}" + ("." if bt.staged == n else "; the others had too little history yet."))  # fmt: skip
    if bt.paced:
        text += (f" Ours moved the closes by the calendar's pace of wins at {bt.paced} of the {n}"
                 + ("." if bt.paced == n else "; at the others no quarter was whole yet, or the "
                    "wins known then came about evenly through a quarter's months."))  # fmt: skip
    return text


def parts_lines(bt: Backtest) -> list[str]:
    """Which part of ours missed at the past dates: what it expected (means) from the deals open
    on each date and from deals not yet in the pipeline, against what each went on to win,
    summed over all the dates (amounts beside the shares: a part that brings little can be far
    off in share and matter little); the live forecast says the same two parts for the quarter
    ahead. Empty where the rows do not split them."""
    rows = bt.rows[bt.rows["method"] == "ours"]
    if rows.empty or "actual_open" not in rows or rows["actual_open"].isna().any():
        return []
    sums = rows.groupby("weeks")[["expected_open", "expected_new", "actual_open", "actual"]].sum()
    sums["actual_new"] = sums["actual"] - sums["actual_open"]

    def part(expected: float, won: float) -> str:
        share = f"{expected / won:.0%}" if won > 0 else "-"
        return f"{expected:,.0f} | {won:,.0f} | {share}"

    lines = [
        f"Which part missed (ours, summed over the {rows['cutoff'].nunique()} dates; the "
        "forecast's means against what happened):",
        "",
        "| weeks | deals open on the date: expected | won | expected / won | deals not yet in "
        "the pipeline: expected | won | expected / won |",
        "|---|---|---|---|---|---|---|",
    ]
    for w, r in sums.iterrows():
        lines.append(f"| {w} | {part(r['expected_open'], r['actual_open'])} | "
                     f"{part(r['expected_new'], r['actual_new'])} |")  # fmt: skip
    return lines


def write(bt: Backtest, folder: Path) -> Path:
    plot(bt, folder / "forecast_test.png")
    lines = [
        "# Forecast test",
        "",
        "Out of sample: at each past date, ours used only the outcomes already known on it "
        "(rolling origin; the first dates, with too few, a default shock).",
        "",
        f"The live forecast's shared shock and slip, fitted on every matured date: sigma "
        f"(log-odds) {bt.bands.sigma}, {bt.bands.slip_text()} (the slip: the sd of a shift of "
        "the close dates shared by a scenario's deals).",
        "",
        timing_text(bt),
        "",
        bt.pace.text(),
        "",
        *([*parts, ""] if (parts := parts_lines(bt)) else []),
        "| method | weeks | cutoffs | P10-P90 coverage | P50 mean abs % error | "
        "P50 median abs % error | P50 above actual | interval score | CRPS |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in bt.summary.iterrows():
        lines.append(
            f"| {r['method']} | {r['weeks']} | {r['cutoffs']} | {r['coverage_p10_p90']:.0%} | "
            f"{r['p50_mape']:.1%} | {r['p50_median_ape']:.1%} | {r['p50_above_share']:.0%} | "
            f"{r['interval_score']:,.0f} | {r['crps']:,.0f} |"
        )
    lines += ["", "![forecast test](forecast_test.png)", "", "## Per cutoff", "",
              "| method | cutoff | weeks | actual | P10 | P50 | P90 | covered |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for _, r in bt.rows.iterrows():
        lines.append(
            f"| {r['method']} | {r['cutoff']} | {r['weeks']} | {r['actual']:,.0f} | "
            f"{r['p10']:,.0f} | {r['p50']:,.0f} | {r['p90']:,.0f} | {'yes' if r['covered'] else 'no'} |"
        )
    (folder / "forecast_test.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    # the same figures for a spreadsheet (and for checks that should not parse markdown)
    bt.summary.to_csv(folder / "forecast_test_summary.csv", index=False)
    bt.rows.to_csv(folder / "forecast_test_cutoffs.csv", index=False)
    return folder / "forecast_test.md"
