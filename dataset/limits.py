"""What an import takes as a plausible value. A cell outside these limits is set aside with a
reason, because one such cell would otherwise poison every later run: a won deal closed on
9999-12-31 became the export's as-of date, which no pandas date can hold, and every score,
digest and morning run failed from then on.

Pure: the limits are data; the caller gives the day of the import (the one clock reading, at
the edge).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

# A CRM export's dates start after this; a year 0, a negative year or a 1900 placeholder is an
# error in the file, not a deal.
EARLIEST = date(1990, 1, 1)
# A deal created "tomorrow" is the time zone of the CRM being ahead of ours, not the future.
TIME_ZONE_SLACK = timedelta(days=1)


@dataclass(frozen=True)
class Limits:
    """The plausible range of an import's values; `max_amount` is set in revbot.toml
    (`[exports] max_amount`)."""

    max_amount: float = 1e12  # above any real deal, price or company revenue
    earliest: date = EARLIEST
    years_ahead: int = 10  # an expected close (or a booked activity) this far ahead at most

    def ahead(self, day: date) -> date:
        """`years_ahead` years after `day` (28 February for a 29 February)."""
        try:
            return day.replace(year=day.year + self.years_ahead)
        except ValueError:
            return day.replace(year=day.year + self.years_ahead, day=28)


def latest_created(today: date) -> date:
    """The latest day a deal in an export taken on `today` (the import's day) can have been
    created, or an event can have happened."""
    return today + TIME_ZONE_SLACK


DEFAULT_LIMITS = Limits()
