"""The fan chart draws CRM names literally: a region or manager named with `$` is text, not math."""

from __future__ import annotations

import pandas as pd
import pytest
from matplotlib.text import Text

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
