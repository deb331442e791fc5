"""The track record's sentences say what its numbers say (issue 14): every "off by", "too high in
k of n", "held", "made" and "missed" checked against the record it was written from, over many
random records (a property test)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from bot.track_text import accuracy_lines, headline, summary_text
from forecasting.track_record import HORIZONS, quarter_end, track_record

QUARTERS = ["2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4"]


def random_record(rng: np.random.Generator):
    rows, calls, actuals = [], [], {}
    for q in QUARTERS[: rng.integers(1, 5)]:
        actual = float(rng.choice([0.0, rng.uniform(1e5, 2e6)], p=[0.1, 0.9]))
        actuals[q] = actual
        target = float(rng.uniform(5e5, 2e6)) if rng.random() < 0.5 else None
        for w in HORIZONS:
            if rng.random() < 0.8:
                as_of = quarter_end(q) - pd.Timedelta(weeks=w, days=int(rng.integers(0, 10)))
                p50 = float(rng.uniform(0.5, 1.5) * (actual or 1e6))
                lo, hi = p50 * rng.uniform(0.6, 1.0), p50 * rng.uniform(1.0, 1.4)
                rows.append((q, as_of.date().isoformat(), lo, p50, hi, target))
            if rng.random() < 0.4:
                as_of = quarter_end(q) - pd.Timedelta(weeks=w + 1)
                calls.append((q, "Ann", "U1", float(rng.uniform(1e5, 2e6)),
                              as_of.date().isoformat()))  # fmt: skip
    forecasts = pd.DataFrame(rows, columns=["quarter", "as_of", "p10", "p50", "p90", "target"])
    said = pd.DataFrame(calls, columns=["quarter", "caller", "user_id", "amount", "as_of"])
    return track_record("all", forecasts, said, actuals)


def pct(x: float) -> str:
    return f"{x:.0%}" if x >= 0.005 or x == 0 else "under 1%"


@pytest.mark.parametrize("seed", range(40))
def test_every_sentence_matches_its_numbers(seed):
    record = random_record(np.random.default_rng(seed))
    lines = accuracy_lines(record, "all teams", "2025-Q1")
    text = "\n".join(lines)
    for s in record.summaries():
        sentence = summary_text(s)
        assert sentence in text
        mine = [c for c in record.checked if c.weeks == s.weeks]
        assert s.quarters == len(mine)
        if mine:
            assert f"too high in {sum(c.p50 > c.actual for c in mine)} of {len(mine)} " in sentence
            assert f"held the actual in {sum(c.held for c in mine)} of {len(mine)}" in sentence
            errors = [abs(c.error) for c in mine if c.error is not None]
            if errors:
                assert f"off by {pct(float(np.mean(errors)))} on average" in sentence
        else:
            assert "no forecast was made then" in sentence
    for q, actual in record.actuals.items():
        (line,) = [x for x in lines if x.startswith(f"• {q}: ")]
        for c in (c for c in record.checked if c.quarter == q):
            held = "held" if c.p10 <= actual <= c.p90 else "missed"
            part = re.search(rf"{c.weeks} weeks out \S+ \(([^)]*)\)", line).group(1)
            assert part.endswith(f"band {held}")
            if actual > 0:
                sign = "+" if c.p50 >= actual else "-"
                assert part.startswith(f"{sign}{abs(c.p50 - actual) / actual:.0%}")
        target = {c.target for c in record.checked if c.quarter == q and c.target is not None}
        if target:
            assert line.endswith("made" if actual >= target.pop() else "missed")
    top = headline(record)
    if top is None:
        assert all(s.p50_error is None for s in record.summaries())
    else:
        shown = [s for s in record.summaries() if s.quarters and s.p50_error is not None]
        held = sum(s.held for s in shown)
        assert f"held {held} of {sum(s.quarters for s in shown)}" in top


def test_no_closed_quarter_says_when_the_first_record_comes():
    record = track_record("all", pd.DataFrame(columns=["quarter", "as_of", "p10", "p50", "p90"]),
                          pd.DataFrame(), {})  # fmt: skip
    (line,) = accuracy_lines(record, "all teams", "2025-Q1")
    assert (
        "no quarter forecast here 13, 8 or 4 weeks before its end has closed yet" in line
        and "2025-03-31" in line
    )
    assert headline(record) is None
