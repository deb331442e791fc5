"""Forecast categories beside the model (issue 14): what the reps' calls add up to, and the deals
where the model and the category disagree, which are the most useful lines in a forecast call.
Pure.

A deal's category is the CRM's (Salesforce ForecastCategoryName, HubSpot's forecast category);
where the CRM has none, it is mapped from the stage's default probability (90% and more:
commit, 60% and more: best case, else pipeline) and said to be mapped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

ORDER = ("Commit", "Best Case", "Pipeline")
# the CRM's words (Salesforce labels and API values, HubSpot's values) -> ours
NAMES = {
    "commit": "Commit", "best case": "Best Case", "bestcase": "Best Case",
    "best_case": "Best Case", "pipeline": "Pipeline", "omitted": "Omitted", "omit": "Omitted",
    "closed": "Closed", "most likely": "Best Case", "mostlikely": "Best Case",
}  # fmt: skip
DOUBTED, FAVOURED = 0.40, 0.70  # commit under this win chance; pipeline over this one


@dataclass(frozen=True)
class Rollup:
    """The quarter by category: won so far, and each open category's deals, value and the
    model's expected value (value x win probability), with the disagreements."""

    won: float
    rows: list[dict]  # category, deals, value, expected (ORDER, then "Omitted" if any)
    mapped: int  # deals whose category came from their stage, not the CRM
    # among the CRM's own categories only (a category mapped from the stage is no one's call):
    doubted: pd.DataFrame = field(default_factory=pd.DataFrame)  # commit, win under DOUBTED
    favoured: pd.DataFrame = field(default_factory=pd.DataFrame)  # pipeline, win over FAVOURED

    @property
    def total(self) -> float:
        return self.won + sum(r["value"] for r in self.rows if r["category"] != "Omitted")


def category(value: object, stage_probability: float | None) -> tuple[str, bool]:
    """(category, mapped from the stage?) of one open deal."""
    if isinstance(value, str) and value.strip():
        return NAMES.get(value.strip().lower(), "Pipeline"), False
    p = stage_probability if stage_probability is not None else 0.0
    return ("Commit" if p >= 90 else "Best Case" if p >= 60 else "Pipeline"), True


# every category `category` can give, so that a deal's category is a small number
KNOWN = tuple(dict.fromkeys((*ORDER, "Omitted", *NAMES.values())))


def _per_value(column: pd.Series, how) -> tuple[np.ndarray, np.ndarray]:
    """`how(value)` -> (category, mapped) worked out once per distinct value of a column (a
    run's million deals hold a handful), then spread back to every row: the category as its
    position in `KNOWN`."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    pairs = [how(v) for v in uniques] + [how(None)]  # code -1 (missing) takes the last
    known = np.array([KNOWN.index(c) for c, _ in pairs], dtype=np.int8)
    mapped = np.array([m for _, m in pairs], dtype=bool)
    return known[codes], mapped[codes]


def rollup(scores: pd.DataFrame, won: float, stage_probability: dict[str, float]) -> Rollup:
    """`scores`: the open deals in scope whose close falls in the quarter (a run's rows: value,
    win_prob, stage, forecast_category); `won`: revenue won in the quarter so far."""
    own, missing = _per_value(scores["forecast_category"], lambda c: category(c, None))
    by_stage, _ = _per_value(scores["stage"], lambda s: category(None, stage_probability.get(s)))
    chosen = np.where(missing, by_stage, own)
    # sums over columns, not copies of a run's wide rows
    value = scores["value"].fillna(0.0).to_numpy(dtype=float)
    p = scores["win_prob"].to_numpy(dtype=float)
    rows = []
    for name in (*ORDER, "Omitted"):
        part = chosen == KNOWN.index(name)
        if name == "Omitted" and not part.any():
            continue
        rows.append({"category": name, "deals": int(part.sum()),
                     "value": float(np.nansum(value[part])),
                     "expected": float(np.nansum(value[part] * p[part]))})  # fmt: skip

    def deals(mask: np.ndarray) -> pd.DataFrame:
        """The rows of `mask`, with their category, largest value first."""
        # kept as Python strings: as pandas' string dtype a million deals' names took 0.16 s
        part = scores[mask]
        names = np.array(KNOWN, dtype=object)[chosen[mask]]
        part = part.assign(category=pd.Series(names, index=part.index, dtype=object),
                           mapped=missing[mask], value=value[mask])  # fmt: skip
        return part.sort_values("value", ascending=False, kind="stable")

    called = ~missing  # a disagreement is with a rep's call, not with a mapping
    return Rollup(
        won=float(won),
        rows=rows,
        mapped=int(missing.sum()),
        doubted=deals(called & (chosen == KNOWN.index("Commit")) & (p < DOUBTED)),
        favoured=deals(called & (chosen == KNOWN.index("Pipeline")) & (p > FAVOURED)),
    )
