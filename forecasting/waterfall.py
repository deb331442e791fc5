"""The movement waterfall: the quarter's pipeline then, each move up or down, the pipeline now.
Bytes out (PNG) from a `Figure` on an Agg canvas (safe off the main thread, as the fan chart).
Texts are drawn literally (no math text: amounts carry currency symbols)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from dataset.money import default_currency, money  # noqa: E402
from forecasting.movement import Movement  # noqa: E402

UP, DOWN, TOTAL, WON = "#2ca02c", "#d62728", "#08519c", "#6baed6"  # won: leaves, but well


def waterfall(m: Movement, title: str, currency: str | None = None) -> bytes:
    """Start and end bars, and a floating bar for each part that moved (none for a part that
    did not); each bar labelled with its amount."""
    code = currency or default_currency()
    cash = lambda v: money(v, code)  # noqa: E731
    moved = m.parts[m.parts["deals"] > 0]
    labels = [f"{m.since.date():%d %b}", *moved["part"], f"{m.until.date():%d %b}"]
    fig = Figure(figsize=(3.6, 2.4), dpi=200)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    level, highest = m.before, max(m.before, m.after)
    ax.bar(0, m.before, color=TOTAL, width=0.7)
    ax.text(0, m.before, cash(m.before), ha="center", va="bottom", fontsize=5, usetex=False,
            parse_math=False)  # fmt: skip
    for i, (_, row) in enumerate(moved.iterrows(), start=1):
        step = float(row["value"])
        color = WON if row["part"] == "won" else UP if step >= 0 else DOWN
        ax.bar(i, step, bottom=level, color=color, width=0.7)
        top = max(level, level + step)
        highest = max(highest, top)
        sign = "+" if step >= 0 else "-"
        ax.text(i, top, f"{sign}{cash(abs(step))}", ha="center", va="bottom", fontsize=5,
                parse_math=False)  # fmt: skip
        level += step
    end = len(labels) - 1
    ax.bar(end, m.after, color=TOTAL, width=0.7)
    ax.text(end, m.after, cash(m.after), ha="center", va="bottom", fontsize=5, parse_math=False)
    ax.set_ylim(0, highest * 1.15 if highest > 0 else 1)  # room for the labels above the bars
    ax.set_xticks(range(len(labels)), labels, fontsize=5, rotation=30, ha="right")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: cash(v)))
    ax.tick_params(axis="y", labelsize=5)
    ax.set_title(title, fontsize=6.5, loc="left", parse_math=False)
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", color="#dddddd", lw=0.4)
    ax.set_axisbelow(True)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()
