"""The fan chart draws CRM names literally (a region or manager named with `$` is text, not math),
and says what it shows: currency, year, quarters, the target across its quarter, a legend of what
is drawn."""

from __future__ import annotations

import warnings

import matplotlib.dates as mdates
import pandas as pd
import pytest
from matplotlib.text import Text

from dataset.money import SYMBOLS
from forecasting.chart import draw, fan_chart
from tests.forecasting.test_montecarlo import ARRIVALS, BOUNDS, PERIODS, _km, _pipeline, simulate

TITLES = [
    "2024-Q1, $x^{$ region: P50 1.2M (900k-1.5M)",  # unbalanced math: mathtext raises
    r"2024-Q1, $\alpha$'s team: P50 1M",  # balanced: mathtext would draw an alpha
    "2024-Q1, Price $5 and $10 region",
    "2024-Q1, a_b^c {x} \\ region",
]


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    f = simulate(_pipeline(), _km(), PERIODS, scenarios=300, seed=1, arrivals=ARRIVALS)
    return f.table.assign(start=BOUNDS["start"].dt.date.to_numpy(),
                          end=BOUNDS["end"].dt.date.to_numpy())  # fmt: skip


DEALS = pd.DataFrame({"status": ["won"], "value": [1000.0],
                      "close_date": pd.to_datetime(["2024-01-10"])})  # fmt: skip


@pytest.mark.parametrize("title", TITLES)
def test_a_title_from_the_crm_is_drawn_literally(table, title, tmp_path):
    fig = draw(table, DEALS, pd.Timestamp("2024-02-14"), title=title)
    assert fig.axes[0].get_title(loc="left") == title
    (shown,) = [t for t in fig.findobj(Text) if t.get_text() == title]
    assert shown.get_parse_math() is False and shown.get_usetex() is False
    png = fan_chart(table, DEALS, pd.Timestamp("2024-02-14"), title=title)
    (tmp_path / "forecast.png").write_bytes(png)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and (tmp_path / "forecast.png").stat().st_size > 20_000


# ---------------------------------------------------------------------------------------------
# what a reader sees: currency, year, quarters, a target across its quarter, a legend of what
# is drawn

AS_OF = pd.Timestamp("2024-02-14")  # in 2024-Q1; the chart runs to the end of 2024-Q2
WON = pd.DataFrame({"status": ["won", "won", "lost"], "value": [45_789.0, 1000.0, 5000.0],
                    "close_date": pd.to_datetime(["2024-01-10", "2024-02-01", "2024-02-02"])})  # fmt: skip


def _drawn(table, **kw):
    fig = draw(table, kw.pop("deals", WON), kw.pop("as_of", AS_OF), **kw)
    fig.canvas.draw()  # tick labels are made when drawn
    return fig, fig.axes[0]


def _day(x) -> str:
    """A date on the chart's x axis (a matplotlib day number, or a date as given)."""
    day = mdates.num2date(x) if isinstance(x, float) else pd.Timestamp(x)
    return day.date().isoformat()


def _legend(ax) -> dict[str, object]:
    legend = ax.get_legend()
    return {t.get_text(): h for t, h in zip(legend.get_texts(), legend.legend_handles, strict=True)}


def test_axes_say_the_currency_the_year_and_the_quarters(table):
    fig, ax = _drawn(table, currency="EUR")
    assert ax.get_ylabel() == "won since 1 Jan 2024, running total (EUR)"
    ticks = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert ticks and all(t.startswith("€") for t in ticks), ticks
    assert "€1M" in ticks or "€500k" in ticks, ticks
    months = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert months[0] == "Jan\n2024" and months[1:4] == ["Feb", "Mar", "Apr"], months
    texts = {t.get_text().strip() for t in ax.texts}
    assert {"2024-Q1", "2024-Q2"} <= texts  # the boundary's two sides are named
    (boundary,) = [line for line in ax.lines if line.get_linestyle() == ":"]
    assert _day(boundary.get_xdata()[0]) == "2024-04-01"
    title = ax.get_title(loc="left")
    assert title.startswith("2024-Q1: P50 €") and "€" in title.split("(")[1], title


def test_an_other_currency_is_written_with_its_code(table):
    _, ax = _drawn(table, currency="CHF")
    assert ax.get_ylabel().endswith("(CHF)")
    ticks = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert all(t.startswith("CHF ") for t in ticks), ticks


def test_the_target_runs_across_its_quarter_only(table):
    _, ax = _drawn(table, target=1_500_000)
    targets = [c for c in ax.collections if c.get_linestyle()[0][1] is not None]
    (target,) = targets
    ((x0, y0), (x1, y1)) = target.get_segments()[0]
    start, end = _day(x0), _day(x1)
    assert (start, end, y0, y1) == ("2024-01-01", "2024-04-01", 1_500_000, 1_500_000)
    assert ax.get_xlim()[1] > x1  # the chart goes on into the next quarter, the target does not


def test_the_legend_lists_what_is_drawn_and_each_entry_shows(table):
    _, ax = _drawn(table, target=1_500_000)
    legend = _legend(ax)
    assert list(legend) == ["P10-P90 range", "P50 forecast", "won so far: $46.8k",
                            "2024-Q1 target: $1.5M"]  # fmt: skip
    drawn = [*ax.lines, *ax.collections]
    for label, handle in legend.items():
        assert handle.get_visible() and (handle.get_alpha() is None or handle.get_alpha() > 0.3)
        color = handle.get_facecolor() if label.startswith("P10") else handle.get_color()
        assert any(_same_color(a, color) for a in drawn), f"{label}: nothing drawn in its colour"


def _same_color(artist, color) -> bool:
    from matplotlib.colors import to_rgba

    want = to_rgba(color)[:3]
    if hasattr(artist, "get_color") and not hasattr(artist, "get_facecolor"):
        return to_rgba(artist.get_color())[:3] == want
    faces = [tuple(c[:3]) for c in artist.get_facecolor()] + [
        tuple(c[:3]) for c in artist.get_edgecolor()
    ]
    return want in faces


def test_nothing_won_yet_and_no_spread_leave_no_empty_legend_entry(table):
    """A quarter that has not begun has nothing won to draw; a forecast without spread has no
    band: neither gets a legend entry drawn in nothing."""
    _, ax = _drawn(table, as_of=pd.Timestamp("2023-12-31"))  # its "this quarter" is 2024-Q1
    assert not any(k.startswith("won so far") for k in _legend(ax))
    flat = table.assign(p10=table["p50"], p90=table["p50"])
    _, ax = _drawn(flat)
    assert list(_legend(ax)) == ["P50 forecast", "won so far: $46.8k"]


@pytest.mark.parametrize("code", sorted(SYMBOLS) + ["CHF"])
def test_every_currency_symbol_has_a_glyph(table, code, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Glyph ... missing from font(s)" would be a box
        png = fan_chart(table, WON, AS_OF, target=1e6, currency=code)
    (tmp_path / f"forecast-{code}.png").write_bytes(png)
    assert (tmp_path / f"forecast-{code}.png").stat().st_size > 20_000
