"""Risk score 0-100: how much a deal needs attention, from four documented parts.

    risk = 100 * (0.55 * loss + 0.15 * velocity + 0.20 * stagnation + 0.10 * size)

- loss = 1 - win probability.
- velocity = clip((age / slow cycle - 1) / 2, 0, 1): 0 while the deal is within the time in
  which 90% of the won deals of its product closed, 1 at three times that or more.
- stagnation = the largest of four signs that a deal has stopped moving:
  quiet: clip((days since the last activity - 7) / 23, 0, 1), 0 at a week, 1 at a month (only
  where the CRM exports activity: where it does not, silence is unknown, not assumed);
  stuck: clip((days in the stage / the days within which 90% of won deals left it - 1) / 2, 0,
  1), where that time is known;
  pushes: clip(close-date pushes / 3, 0, 1);
  overdue: clip((days past the expected close date - late) / 90, 0, 1), where late is the
  number of days after their date within which 90% of won deals closed (0 where won deals close
  on time or that is not known): a date left a week behind is hygiene, one a quarter behind
  says nobody is steering the deal, unless the org's won deals usually close that late (a
  Salesforce org whose close dates only move when pushed wins most deals months after them).
- size = clip(log10(value / median open value) / 2 + 0.5, 0, 1): 0.5 for a median deal, 1 for
  a deal ten times the median, 0 for a hundredth of it.

Each part only ever raises risk as it grows, so risk is monotone in each input: a lower win
probability never lowers risk, all else equal, nor does a longer silence, another push, more
days open or in the stage, or a bigger amount. Digests rank by value at risk = value * risk / 100.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

WEIGHTS = {"loss": 0.55, "velocity": 0.15, "stagnation": 0.20, "size": 0.10}
# the reason (see `reasons`) each sign of stagnation is told under
STAGNATION_KEYS = ("activity", "time in stage", "pushes", "expected close")


def _clip01(x) -> np.ndarray:
    return np.clip(np.nan_to_num(np.asarray(x, dtype=float), nan=0.0), 0.0, 1.0)


def _f(x) -> np.ndarray:
    return np.asarray(x, dtype=float)


def _late(x) -> np.ndarray:
    """Days won deals are usually late by: never below 0, 0 where unknown."""
    return np.clip(np.nan_to_num(_f(x), nan=0.0), 0.0, None)


def risk_parts(
    win_prob,
    value,
    median_value: float,
    age_days,
    typical_cycle,
    days_since_activity,
    days_in_stage,
    typical_stage_days,
    close_pushes,
    days_to_expected_close,
    late_days=0.0,
) -> dict[str, np.ndarray]:
    """The four parts, each in [0, 1] (missing inputs count as no evidence of risk), and
    `stagnation_key`: which sign of stagnation is the largest (index into STAGNATION_KEYS)."""
    signs = np.vstack(
        [
            _clip01((_f(days_since_activity) - 7.0) / 23.0),
            _clip01((_f(days_in_stage) / np.maximum(_f(typical_stage_days), 1.0) - 1.0) / 2.0),
            _clip01(_f(close_pushes) / 3.0),
            _clip01((-_f(days_to_expected_close) - _late(late_days)) / 90.0),
        ]
    )
    ratio = _f(age_days) / np.maximum(_f(typical_cycle), 1.0)
    value = np.maximum(_f(value), 1.0)
    return {
        "loss": _clip01(1.0 - _f(win_prob)),
        "velocity": _clip01((ratio - 1.0) / 2.0),
        "stagnation": signs.max(axis=0),
        "size": _clip01(np.log10(value / max(median_value, 1.0)) / 2.0 + 0.5),
        "stagnation_key": signs.argmax(axis=0),
    }


def risk_score(parts: dict[str, np.ndarray]) -> np.ndarray:
    """0-100, rounded to one decimal."""
    total = sum(WEIGHTS[k] * parts[k] for k in WEIGHTS)
    return np.round(100.0 * total, 1)


def median_value(values) -> float:
    """The median open value a deal's size is judged by (1 where there is none)."""
    v = np.asarray(values, dtype=float)
    return float(np.nanmedian(v)) if len(v) and not np.isnan(v).all() else 1.0


def score_frame(
    features: pd.DataFrame, win_prob: np.ndarray, median: float | None = None
) -> pd.DataFrame:
    """Risk and value at risk for feature rows (as built by `features.features_at`), with each
    part in its own column (`risk_loss`...) and the median open value the size is judged by
    (by default the median of these rows: pass the run's when scoring a few deals of it)."""
    value = features["value_used"].to_numpy(dtype=float)
    median = median_value(value) if median is None else median
    parts = risk_parts(
        win_prob,
        value,
        median,
        features["age_days"],
        features["typical_cycle"],
        features["days_since_activity"],
        features["days_in_stage"],
        features["typical_stage_days"],
        features["close_pushes"],
        features["days_to_expected_close"],
        features.get("typical_late_days", 0.0),
    )
    risk = risk_score(parts)
    out = pd.DataFrame(
        {"win_prob": win_prob, "risk": risk, "value": value},
        index=features.index,
    )
    out["value_at_risk"] = np.round(np.nan_to_num(value) * risk / 100.0, 2)
    for name in WEIGHTS:
        out[f"risk_{name}"] = parts[name]
    out["stagnation_key"] = np.asarray(STAGNATION_KEYS, dtype=object)[parts["stagnation_key"]]
    out["median_value"] = median
    return out
