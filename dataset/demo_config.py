"""The demo pipeline's size and span, apart from its generator so that the command line can show
the defaults in `revbot demo --help` without loading numpy and pandas."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class DemoConfig:
    """Size and span of the demo pipeline; the defaults make a small, fast demo."""

    deals: int = 3000
    seed: int = 7
    start: date = date(2023, 7, 3)
    end: date = date(2025, 2, 14)
    weekly_exports: bool = True
    daily_exports: int = 14
    accounts: int = 120
