"""Where the quarter's revenue still to come is expected from: the sentence is true of the numbers
it is given (`bot.target_text.sources_text`), on random cases and the edge ones."""

from __future__ import annotations

import re

import numpy as np
import pytest

from bot.target_text import sources_text
from dataset.money import money, plural

SENTENCE = re.compile(
    r"^\*Still to come in (\S+)\*, on average: (\S+) from the ([\d,]+) deals? open on (\S+) and "
    r"(\S+) from deals not yet in the pipeline(?: \(expecting ([\d,.]+) new deals a week, the "
    r"pace of the last 13 weeks\)| \(expecting none: the last 13 weeks give no new deal to go "
    r"by\))?\.$"
)


def row(pipeline: float, new: float) -> dict:
    return {"from_pipeline": pipeline, "from_new": new}


def test_random_cases_say_their_own_amounts_count_and_pace():
    rng = np.random.default_rng(7)
    for _ in range(500):
        pipe, new = rng.choice([0.0, 1.0]) * rng.lognormal(11, 2), rng.lognormal(10, 2)
        deals = int(rng.integers(0, 3000))
        pace = None if rng.random() < 0.2 else float(rng.choice([0.0, 1.0]) * rng.lognormal(2, 1.5))
        text = sources_text(row(pipe, new), deals, pace, "2025-Q1", "2025-02-14", "EUR")
        m = SENTENCE.match(text)
        assert m, text
        assert (m.group(1), m.group(4)) == ("2025-Q1", "2025-02-14")
        assert (m.group(2), m.group(5)) == (money(pipe, "EUR"), money(new, "EUR"))
        assert m.group(3) == f"{deals:,}" and plural(deals, "deal") in text
        if pace is None:
            assert text.endswith("not yet in the pipeline."), text
        elif pace <= 0:
            assert "expecting none" in text
        else:  # the pace as shown: whole deals from 10 a week, a tenth below
            shown = float(m.group(6).replace(",", ""))
            assert shown == pytest.approx(pace, abs=0.5 if pace >= 10 else 0.05), text


def test_nothing_left_to_come_says_nothing():
    assert sources_text(row(0.0, 0.0), 12, 3.0, "2025-Q1", "2025-02-14") is None
    assert sources_text(row(float("nan"), float("nan")), 12, 3.0, "2025-Q1", "2025-02-14") is None


def test_one_open_deal_and_a_slow_pace_read_right():
    text = sources_text(row(12_345.0, 678.0), 1, 0.35, "2026-Q3", "2026-07-02")
    assert "$12.3k from the 1 deal open on 2026-07-02 and $678 from deals not yet" in text
    assert "(expecting 0.3 new deals a week" in text or "(expecting 0.4 new deals a week" in text
