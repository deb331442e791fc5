"""The fan chart: running revenue this quarter and next, actual to date, P10-P90 band and P50.

Bytes out (PNG), no pyplot and no global state: a `Figure` on an Agg canvas is safe to render off
the bot's main thread. The title carries CRM names (a region, a manager), so it is drawn
literally: matplotlib would otherwise read `$...$` in a name as math and fail on `$x^{$`. Sized
for Slack's preview: 720 x 480 px, drawn for legibility at 360 px wide (large type, few ticks,
direct labels).
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from forecasting.periods import current_quarter  # noqa: E402


def money(x: float) -> str:
    if abs(x) >= 1e6:
        return f"{x / 1e6:.1f}M"
    if abs(x) >= 1e3:
        return f"{x / 1e3:.0f}k"
    return f"{x:.0f}"


def fan_chart(
    table: pd.DataFrame,
    deals: pd.DataFrame,
    as_of: pd.Timestamp,
    target: float | None = None,
    title: str | None = None,
) -> bytes:
    """The chart as PNG bytes (see `draw`)."""
    fig = draw(table, deals, as_of, target, title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def draw(
    table: pd.DataFrame,
    deals: pd.DataFrame,
    as_of: pd.Timestamp,
    target: float | None = None,
    title: str | None = None,
) -> Figure:
    """table: a forecast's rows (its `cumulative` ones are drawn); deals: the CRM deals, for the
    actual revenue won this quarter up to the as-of date; title: shown as written."""
    as_of = pd.Timestamp(as_of)
    q_start = current_quarter(as_of).start_time
    cum = table[table["kind"] == "cumulative"]
    x = pd.to_datetime(cum["end"])
    won = deals[(deals["status"] == "won") & (deals["close_date"] >= q_start)
                & (deals["close_date"] <= as_of)].sort_values("close_date")  # fmt: skip
    actual_x = pd.concat([pd.Series([min(q_start, as_of)]), won["close_date"], pd.Series([as_of])])
    running = won["value"].fillna(0).cumsum()
    actual_y = pd.concat(
        [pd.Series([0.0]), running, pd.Series([running.iloc[-1] if len(running) else 0.0])]
    )

    fig = Figure(figsize=(3.6, 2.4), dpi=200)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    start_x = pd.concat([pd.Series([as_of]), x])
    lo = pd.concat([pd.Series([actual_y.iloc[-1]]), cum["p10"]])
    hi = pd.concat([pd.Series([actual_y.iloc[-1]]), cum["p90"]])
    mid = pd.concat([pd.Series([actual_y.iloc[-1]]), cum["p50"]])
    ax.fill_between(start_x, lo, hi, color="#9ecae1", alpha=0.8, lw=0, label="P10-P90")
    ax.plot(start_x, mid, color="#08519c", lw=1.6, label="P50")
    ax.step(actual_x, actual_y, where="post", color="#222222", lw=1.6, label="won so far")
    next_q = (current_quarter(as_of) + 1).start_time
    ax.axvline(next_q, color="#888888", lw=0.8, ls=":")
    if target:
        ax.axhline(target, color="#d62728", lw=1.0, ls="--", label="target")
    quarter = table[(table["kind"] == "quarter")].iloc[0]
    ax.set_title(
        title
        or f"{quarter['period']}: P50 {money(quarter['p50'])} "
        f"({money(quarter['p10'])}-{money(quarter['p90'])})",
        fontsize=8.5,
        loc="left",
        parse_math=False,  # literal: no mathtext, whatever `$` a CRM name holds
        usetex=False,
    )
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: money(v)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: mdates.num2date(v).strftime("%b")))
    ax.xaxis.set_major_locator(mdates.MonthLocator())
    ax.tick_params(labelsize=7)
    ax.grid(axis="y", lw=0.3, color="#dddddd")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(fontsize=6.5, frameon=False, loc="upper left")
    fig.tight_layout(pad=0.4)
    return fig
