"""The forecast's track record in words (issue 14): `/forecast accuracy`, `revbot forecast
--accuracy` and the digest's footer say the same sentences, made here from one `TrackRecord`.
Pure."""

from __future__ import annotations

from dataset.money import chance, money, plural
from forecasting.track_record import Summary, TrackRecord, quarter_end


def _pct(x: float) -> str:
    """An error in whole percent, 0% only when exact (as a chance: `dataset.money.chance`)."""
    return chance(x)


def _signed(x: float) -> str:
    return f"{'+' if x >= 0 else '-'}{abs(x):.0%}"


def summary_text(s: Summary) -> str:
    """ "13 weeks out: the P50 was off by 14% on average, too high in 1 of 3 quarters; the
    P10-P90 band held the actual in 3 of 3; managers' calls off by 9% (2 calls)"."""
    if not s.quarters:
        text = f"{s.weeks} weeks out: no forecast was made then"
    else:
        off = (f"the P50 was off by {_pct(s.p50_error)} on average"
               if s.p50_error is not None else "nothing was won, so no error in percent")  # fmt: skip
        text = (f"{s.weeks} weeks out: {off}, too high in {s.above} of "
                f"{plural(s.quarters, 'quarter')}; the P10-P90 band held the actual in "
                f"{s.held} of {s.quarters}")  # fmt: skip
    if s.call_error is not None:
        text += f"; managers' calls off by {_pct(s.call_error)} ({plural(s.calls, 'call')})"
    return text


def quarter_text(record: TrackRecord, quarter: str, currency: str | None = None) -> str:
    """ "2017-Q3: won $1.20M; forecast 13 weeks out $1.10M (-8%, band held), ... ; target
    $1.50M, missed"."""
    actual = record.actuals[quarter]
    parts = []
    for c in sorted((c for c in record.checked if c.quarter == quarter), key=lambda c: -c.weeks):
        err = f"{_signed(c.error)}, " if c.error is not None else ""
        parts.append(f"{c.weeks} weeks out {money(c.p50, currency)} "
                     f"({err}band {'held' if c.held else 'missed'})")  # fmt: skip
    text = f"{quarter}: won {money(actual, currency)}"
    text += ("; P50 " + ", ".join(parts)) if parts else "; no forecast 13, 8 or 4 weeks before"
    targets = {c.target for c in record.checked if c.quarter == quarter and c.target is not None}
    if len(targets) == 1:
        (target,) = targets
        made = "made" if actual >= target else "missed"
        text += f"; target {money(target, currency)}, {made}"
    return text


def accuracy_lines(record: TrackRecord, label: str, next_close: str,
                   currency: str | None = None) -> list[str]:  # fmt: skip
    """The whole record of a scope (`label`: how the scope reads); `next_close`: the quarter
    under way, whose end brings the first record when none has closed yet."""
    if not record.actuals:
        end = quarter_end(next_close).date()
        return [f"*Forecast track record, {label}*: no quarter forecast here 13, 8 or 4 weeks "
                f"before its end has closed yet. The first comes when {next_close} ends ({end}) "
                "at the earliest; every forecast is kept until then."]  # fmt: skip
    quarters = sorted(record.actuals)
    span = quarters[0] if len(quarters) == 1 else f"{quarters[0]} to {quarters[-1]}"
    lines = [f"*Forecast track record, {label}* ({plural(len(quarters), 'closed quarter')}: "
             f"{span})"]  # fmt: skip
    lines += [f"• {summary_text(s)}" for s in record.summaries()]
    lines += [f"• {quarter_text(record, q, currency)}" for q in reversed(quarters)]
    return lines


def headline(record: TrackRecord, pointer: bool = True) -> str | None:
    """The digest footer's one line, or None before any quarter has a checked forecast
    (`pointer`: end with where to read more)."""
    shown = [s for s in record.summaries() if s.quarters and s.p50_error is not None]
    if not shown:
        return None
    n = len({c.quarter for c in record.checked})
    held = sum(s.held for s in shown)
    total = sum(s.quarters for s in shown)
    errors = " / ".join(_pct(s.p50_error) for s in shown)
    weeks = " / ".join(str(s.weeks) for s in shown)
    return (f"Forecast track record ({plural(n, 'closed quarter')}): P50 off by {errors} at "
            f"{weeks} weeks out; the P10-P90 band held {held} of {total}"
            + (". `/forecast accuracy` for more." if pointer else ""))  # fmt: skip
