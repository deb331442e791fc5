"""What moved a deal's win probability: SHAP contributions summed into drivers a manager knows.

Pure. LightGBM's TreeSHAP (`pred_contrib=True`) gives each feature's contribution to the raw
score (log-odds); it equals shap's TreeExplainer here (tests check it) and is several times
faster, so it is the one used. Contributions are summed into drivers (the stage, time in the
stage, activity, pushes...), and each driver's effect is told in probability points: the shipped
probability minus the probability without that driver's contribution, through the same blend.
`reasons` turns these, with the risk score's own parts, into the reasons a digest gives.
"""

from __future__ import annotations

import numpy as np

from scoring.features import FEATURES
from scoring.model import WinModel

DRIVERS: dict[str, tuple[str, ...]] = {
    "stage": ("stage", "stage_rank", "stage_probability", "crm_probability", "forecast_rank"),
    "time in stage": ("days_in_stage", "stage_time_ratio", "regressions"),
    "time open": ("age_days", "cycle_ratio"),
    "activity": ("days_since_activity", "active_weeks", "active_share"),
    "next step": ("has_next_step", "next_step_missing"),
    "pushes": ("close_pushes", "push_days"),
    "expected close": ("days_to_expected_close",),
    "amount": ("value_change",),
    "deal size": ("log_value",),
    "rep": ("rep_lift",),
    "owner change": ("owner_changes",),
    "product": ("product", "product_lift"),
    "account": ("account_lift", "log_account_revenue", "sector"),
    "region": ("region",),
    "source": ("deal_type", "lead_source"),
    "calendar": ("days_to_quarter_end",),  # the same for every deal: never a reason of its own
}
_INDEX = {f: i for i, f in enumerate(FEATURES)}
GROUP_INDEX = {g: [_INDEX[f] for f in fs] for g, fs in DRIVERS.items()}
assert sorted(i for idx in GROUP_INDEX.values() for i in idx) == list(range(len(FEATURES)))


def group_contributions(contrib: np.ndarray) -> np.ndarray:
    """(n, features + 1) SHAP values -> (n, drivers) sums, in DRIVERS order."""
    return np.column_stack([contrib[:, idx].sum(axis=1) for idx in GROUP_INDEX.values()])


def driver_points(model: WinModel, contrib: np.ndarray) -> np.ndarray:
    """Each driver's effect in probability points: p - p(without that driver), (n, drivers)."""
    raw = contrib.sum(axis=1)
    p = model.from_raw(raw)
    groups = group_contributions(contrib)
    without = model.from_raw(raw[:, None] - groups)
    return 100.0 * (p[:, None] - without)


def points_for(model: WinModel, features) -> np.ndarray:
    """Driver points of feature rows (one contributions call for all), (n, drivers)."""
    if len(features) == 0:
        return np.zeros((0, len(DRIVERS)))
    return driver_points(model, model.contributions(model.matrix(features)))
