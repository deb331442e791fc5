"""Risk score 0-100: how much a deal needs attention, from four documented parts.

    risk = 100 * (0.55 * loss + 0.15 * velocity + 0.20 * stagnation + 0.10 * size)

- loss = 1 - win probability.
- velocity = clip((age / typical cycle - 1) / 2, 0, 1): 0 while the deal is within the typical
  engage-to-close time of won deals of its product, 1 at three times that or more.
- stagnation = the largest of: clip((quiet days - 7) / 23, 0, 1), where quiet days are the days
  since the last activity or, where no activity is exported, since the last stage change (0 at a
  week, 1 at a month); clip(close-date pushes / 3, 0, 1); clip(days past the expected close
  date / 30, 0, 1).
- size = clip(log10(value / median open value) / 2 + 0.5, 0, 1): 0.5 for a median deal, 1 for
  a deal ten times the median, 0 for a hundredth of it.

Each part only ever raises risk as it grows, so risk is monotone in each input: a lower win
probability never lowers risk, all else equal, nor does a longer silence, another push, more
days open or a bigger amount. Digests rank by value at risk = value * risk / 100.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

WEIGHTS = {"loss": 0.55, "velocity": 0.15, "stagnation": 0.20, "size": 0.10}


def _clip01(x) -> np.ndarray:
    return np.clip(np.nan_to_num(np.asarray(x, dtype=float), nan=0.0), 0.0, 1.0)


def risk_parts(
    win_prob,
    value,
    median_value: float,
    age_days,
    typical_cycle,
    days_since_activity,
    days_in_stage,
    close_pushes,
    days_to_expected_close,
) -> dict[str, np.ndarray]:
    """The four parts, each in [0, 1] (missing inputs count as no evidence of risk)."""
    quiet = np.where(
        np.isnan(np.asarray(days_since_activity, dtype=float)),
        np.asarray(days_in_stage, dtype=float),
        np.asarray(days_since_activity, dtype=float),
    )
    stagnation = np.maximum.reduce(
        [
            _clip01((quiet - 7.0) / 23.0),
            _clip01(np.asarray(close_pushes, dtype=float) / 3.0),
            _clip01(-np.asarray(days_to_expected_close, dtype=float) / 30.0),
        ]
    )
    ratio = np.asarray(age_days, dtype=float) / np.maximum(np.asarray(typical_cycle, float), 1.0)
    value = np.maximum(np.asarray(value, dtype=float), 1.0)
    return {
        "loss": _clip01(1.0 - np.asarray(win_prob, dtype=float)),
        "velocity": _clip01((ratio - 1.0) / 2.0),
        "stagnation": stagnation,
        "size": _clip01(np.log10(value / max(median_value, 1.0)) / 2.0 + 0.5),
    }


def risk_score(parts: dict[str, np.ndarray]) -> np.ndarray:
    """0-100, rounded to one decimal."""
    total = sum(WEIGHTS[k] * parts[k] for k in WEIGHTS)
    return np.round(100.0 * total, 1)


def score_frame(features: pd.DataFrame, win_prob: np.ndarray) -> pd.DataFrame:
    """Risk and value at risk for feature rows (as built by `features.features_at`)."""
    value = features["value_used"].to_numpy(dtype=float)
    median = float(np.nanmedian(value)) if len(value) else 1.0
    parts = risk_parts(
        win_prob,
        value,
        median,
        features["age_days"],
        features["typical_cycle"],
        features["days_since_activity"],
        features["days_in_stage"],
        features["close_pushes"],
        features["days_to_expected_close"],
    )
    risk = risk_score(parts)
    out = pd.DataFrame(
        {"win_prob": win_prob, "risk": risk, "value": value},
        index=features.index,
    )
    out["value_at_risk"] = np.round(np.nan_to_num(value) * risk / 100.0, 2)
    for name, part in parts.items():
        out[f"risk_{name}"] = part
    return out
