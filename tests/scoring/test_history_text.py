"""How much pipeline history the model had, in the words the training line and report use."""

from __future__ import annotations

from scoring.report import history_text


def _text(start: str | None, end: str | None) -> str:
    return history_text({"history_start": start, "data_end": end})


def test_history_in_words():
    assert _text(None, "2024-01-01") == "no pipeline history"
    assert _text("2017-12-31", "2017-12-31") == (
        "one export of the pipeline (2017-12-31), its past rebuilt from the deals' dates"
    )
    assert _text("2024-01-01", "2024-01-02") == "1 day of pipeline history (from 2024-01-01)"
    assert _text("2024-01-01", "2024-01-08") == "7 days of pipeline history (from 2024-01-01)"
    assert _text("2024-01-01", "2024-02-10") == "1 month of pipeline history (from 2024-01-01)"
    assert _text("2023-01-01", "2024-01-31") == "13 months of pipeline history (from 2023-01-01)"
