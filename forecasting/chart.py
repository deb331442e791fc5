"""The fan chart: running revenue this quarter and next, actual to date, P10-P90 band and P50.

Bytes out (PNG), no pyplot and no global state: a `Figure` on an Agg canvas is safe to render off
the bot's main thread. The title carries CRM names (a region, a manager), so it is drawn
literally: matplotlib would otherwise read `$...$` in a name as math and fail on `$x^{$`; so are
the other texts, which carry currency symbols. Sized for Slack's preview: 720 x 480 px, drawn for
legibility at 360 px wide (large type, few ticks, direct labels).

What a reader needs without a legend lesson: the y axis says what is counted and in which
currency (revenue won since the quarter began, running total), the x axis the months with their
year, the quarter boundary is drawn and both quarters named beside it, the target (this
quarter's) runs across this quarter only, and the legend lists only what is drawn, each entry as
it looks on the chart. Amounts are written by `dataset.money`, as in every message.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from dataset.money import default_currency, money  # noqa: E402
from forecasting.periods import current_quarter, quarter_name, won_this_quarter  # noqa: E402

BAND, MID, ACTUAL, TARGET, BOUNDARY = "#9ecae1", "#08519c", "#222222", "#d62728", "#888888"


def fan_chart(
    table: pd.DataFrame,
    deals: pd.DataFrame,
    as_of: pd.Timestamp,
    target: float | None = None,
    title: str | None = None,
    currency: str | None = None,
) -> bytes:
    """The chart as PNG bytes (see `draw`)."""
    fig = draw(table, deals, as_of, target, title, currency)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _month(v: float, first: float) -> str:
    """A month tick: "Feb"; with its year on the first tick and on January ("Jan\n2025")."""
    day = mdates.num2date(v)
    return f"{day:%b}\n{day.year}" if v == first or day.month == 1 else f"{day:%b}"


def draw(
    table: pd.DataFrame,
    deals: pd.DataFrame,
    as_of: pd.Timestamp,
    target: float | None = None,
    title: str | None = None,
    currency: str | None = None,
) -> Figure:
    """table: a forecast's rows (its `cumulative` ones are drawn); deals: the CRM deals, for the
    actual revenue won this quarter up to the as-of date; target: this quarter's, drawn across
    this quarter; title: shown as written; currency: ISO code of the amounts (None: the
    configured one)."""
    code = currency or default_currency()
    cash = lambda v: money(v, code)  # noqa: E731
    as_of = pd.Timestamp(as_of)
    this_q = current_quarter(as_of)
    q_start, next_q = this_q.start_time, (this_q + 1).start_time
    cum = table[table["kind"] == "cumulative"]
    x = pd.to_datetime(cum["end"])
    won = won_this_quarter(deals, as_of)
    left = min(q_start, as_of)
    actual_x = pd.concat([pd.Series([left]), won["close_date"], pd.Series([as_of])])
    running = won["value"].fillna(0).cumsum()
    won_total = float(running.iloc[-1]) if len(running) else 0.0
    actual_y = pd.concat([pd.Series([0.0]), running, pd.Series([won_total])])

    fig = Figure(figsize=(3.6, 2.4), dpi=200)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    start_x = pd.concat([pd.Series([as_of]), x])
    lo = pd.concat([pd.Series([won_total]), cum["p10"]])
    hi = pd.concat([pd.Series([won_total]), cum["p90"]])
    mid = pd.concat([pd.Series([won_total]), cum["p50"]])
    handles = []
    if (hi - lo).max() > 0:  # a band of no width would be an invisible legend entry
        ax.fill_between(start_x, lo, hi, color=BAND, lw=0)
        handles.append(Patch(color=BAND, label="P10-P90 range"))
    ax.plot(start_x, mid, color=MID, lw=1.6)
    handles.append(Line2D([], [], color=MID, lw=1.6, label="P50 forecast"))
    if as_of > left:  # the quarter has begun: what it has won so far, even if nothing
        ax.step(actual_x, actual_y, where="post", color=ACTUAL, lw=1.6)
        handles.append(Line2D([], [], color=ACTUAL, lw=1.6, label=f"won so far: {cash(won_total)}"))  # fmt: skip
    if target:
        ax.hlines(target, left, next_q, color=TARGET, lw=1.0, ls="--")
        handles.append(Line2D([], [], color=TARGET, lw=1.0, ls="--",
                              label=f"{quarter_name(q_start)} target: {cash(target)}"))  # fmt: skip
    ax.axvline(next_q, color=BOUNDARY, lw=0.8, ls=":")
    top = ax.get_xaxis_transform()  # x in dates, y in axes fractions
    for text, ha in ((f"{quarter_name(q_start)} ", "right"), (f" {quarter_name(next_q)}", "left")):
        ax.text(next_q, 0.02, text, transform=top, ha=ha, va="bottom", fontsize=6.5,
                color="#555555", parse_math=False)  # fmt: skip
    quarter = table[(table["kind"] == "quarter")].iloc[0]
    ax.set_title(
        title
        or f"{quarter['period']}: P50 {cash(quarter['p50'])} "
        f"({cash(quarter['p10'])}-{cash(quarter['p90'])})",
        fontsize=8.5,
        loc="left",
        parse_math=False,  # literal: no mathtext, whatever `$` a CRM name holds
        usetex=False,
    )
    ax.set_ylabel(f"won since {q_start.day} {q_start:%b %Y}, running total ({code})",
                  fontsize=6.5, parse_math=False)  # fmt: skip
    # revenue is not negative: the margin below zero (which keeps a line at 0 off the axis)
    # gets no tick label
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: cash(v) if v >= 0 else ""))
    ax.xaxis.set_major_locator(mdates.MonthLocator())
    ax.set_xlim(left, max(x.max(), next_q) if len(x) else next_q)
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    first = min(ticks) if ticks else None
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _month(v, first)))
    ax.tick_params(labelsize=7)
    ax.grid(axis="y", lw=0.3, color="#dddddd")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    legend = ax.legend(handles=handles, fontsize=6.5, frameon=False, loc="upper left")
    for t in [*legend.get_texts(), *ax.get_yticklabels(), *ax.get_xticklabels()]:
        t.set_parse_math(False)
    fig.tight_layout(pad=0.4)
    return fig
