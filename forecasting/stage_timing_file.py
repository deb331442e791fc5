"""Save and load the stage models (`forecasting.stage_timing`) beside the win model.

LightGBM's own text format per knot (no pickle) and a JSON of the rest: the knots, each model's
vocabulary, the features and their version. Why apart from `stage_timing`: that one is pure.
Loading gives None when there are none (a CRM without stage history, or a model trained before
they existed) or they were made for other features or knots: the forecast then times wins by the
product/age curve alone until the next training writes them again.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb

from forecasting.stage_timing import StageTiming
from forecasting.warped_draws import WITHIN_DAYS
from scoring import model as wm
from scoring.features import FEATURE_VERSION, FEATURES

FILE = "stage_timing.json"


def _booster_file(knot: int) -> str:
    return f"stage_timing_{knot}d.txt"


def save(fitted: StageTiming | None, folder: Path) -> None:
    """Write the models (None: remove any saved before, so an old one is never used)."""
    folder = Path(folder)
    for path in [folder / FILE, *(folder / _booster_file(k) for k in WITHIN_DAYS)]:
        path.unlink(missing_ok=True)
    if fitted is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    models = []
    for knot, one in zip(WITHIN_DAYS, fitted.boosters, strict=True):
        if one is None:
            models.append(None)
            continue
        booster, stub = one
        booster.save_model(str(folder / _booster_file(knot)))
        models.append({"file": _booster_file(knot), "categories": stub.categories})
    meta = {"feature_version": FEATURE_VERSION, "features": list(FEATURES),
            "knots": list(WITHIN_DAYS), "models": models}  # fmt: skip
    (folder / FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")


def _meta(folder: Path) -> dict | None:
    """The saved models' JSON, if they are usable here (made for these features and knots)."""
    path = Path(folder) / FILE
    if not path.exists():
        return None
    meta = json.loads(path.read_text(encoding="utf-8"))
    same = (meta.get("feature_version") == FEATURE_VERSION and meta.get("features") == list(FEATURES)
            and meta.get("knots") == list(WITHIN_DAYS))  # fmt: skip
    return meta if same else None


def saved(folder: Path) -> bool:
    """`load` would give models: read from the JSON alone, no booster loaded (asked at every
    refresh, to know how the forecast's range was sized)."""
    return _meta(folder) is not None


def load(folder: Path) -> StageTiming | None:
    """The saved models, or None (none saved, or made for other features or knots)."""
    meta = _meta(folder)
    if meta is None:
        return None
    boosters = []
    for one in meta["models"]:
        if one is None:
            boosters.append(None)
            continue
        booster = lgb.Booster(model_file=str(Path(folder) / one["file"]))
        stub = wm.WinModel(None, wm.Calibrator(), 1.0, 0.5, one["categories"], 0.0)
        boosters.append((booster, stub))
    return StageTiming(boosters)
