"""Save and load a win model with its metadata: the only file I/O of `scoring`.

A model travels as two files: LightGBM's own text format (`win_model.txt`, no pickle) and a JSON
of everything else (calibration, blend, categories, feature list and version, training data hash,
metrics, library versions). Loading checks the model against the code and the data, and says to
retrain when they do not match.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import asdict
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import sklearn

from scoring.errors import ModelMismatchError
from scoring.features import CATEGORICAL, FEATURE_VERSION, FEATURES
from scoring.model import Calibrator, WinModel

MODEL_FILE = "win_model.txt"
META_FILE = "win_model.json"


def data_hash(rows: pd.DataFrame) -> str:
    """sha256 of the training rows (deal ids, snapshot days, features, labels, weights)."""
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(rows.index.to_series(), index=False).to_numpy().tobytes())
    cols = [*FEATURES, "label", "weight", "snapshot"]
    h.update(pd.util.hash_pandas_object(rows[cols], index=False).to_numpy().tobytes())
    return h.hexdigest()


def save(model: WinModel, folder: Path, meta: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model.booster.save_model(str(folder / MODEL_FILE))
    full = {
        **meta,
        "feature_version": FEATURE_VERSION,
        "features": list(FEATURES),
        "categorical": list(CATEGORICAL),
        "categories": model.categories,
        "calibrator": asdict(model.calibrator),
        "blend": model.blend,
        "base_rate": model.base_rate,
        "skill": model.skill,
        "confidence": model.confidence,
        "info": model.info,
        "versions": {
            "python": platform.python_version(),
            "lightgbm": lgb.__version__,
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
        },
    }
    (folder / META_FILE).write_text(json.dumps(full, indent=2, default=str), encoding="utf-8")
    return folder / META_FILE


def load(folder: Path) -> tuple[WinModel, dict]:
    """Load a model; raises ModelMismatchError if it is missing or built for other features."""
    meta_path, model_path = folder / META_FILE, folder / MODEL_FILE
    if not meta_path.exists() or not model_path.exists():
        raise ModelMismatchError(f"no trained model in {folder}/: run `revbot train` first")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("feature_version") != FEATURE_VERSION or meta.get("features") != list(FEATURES):
        raise ModelMismatchError(
            f"the model in {folder}/ was trained on other features (version "
            f"{meta.get('feature_version')}, this revbot expects {FEATURE_VERSION}): "
            "retrain with `revbot train`"
        )
    cal = meta["calibrator"]
    model = WinModel(
        booster=lgb.Booster(model_file=str(model_path)),
        calibrator=Calibrator(
            cal["kind"], cal["a"], cal["b"], tuple(cal["x"]), tuple(cal["y"]), cal.get("shift", 0.0)
        ),
        blend=float(meta["blend"]),
        base_rate=float(meta["base_rate"]),
        categories={k: list(v) for k, v in meta["categories"].items()},
        skill=float(meta["skill"]),
        info=meta.get("info", {}),
    )
    return model, meta


def check_fits_data(meta: dict, products: list[str], db_fingerprint: str) -> list[str]:
    """Raise if the model was trained on a different business (none of today's products known
    to it); return warnings for smaller drifts (new products, data changed since training)."""
    known = set(meta["categories"].get("product", []))
    today = {p for p in products if isinstance(p, str)}
    if today and known and not (today & known):
        raise ModelMismatchError(
            f"the model was trained on other data (products {sorted(known)[:5]}...), and this "
            f"database's deals are for {sorted(today)[:5]}...: retrain with `revbot train`"
        )
    notes = []
    new = sorted(today - known)
    if new:
        notes.append(f"products unknown to the model (scored as unknown): {', '.join(new)}")
    if meta.get("database") and meta["database"].get("fingerprint") != db_fingerprint:
        notes.append("new data arrived since the model was trained; retrain when convenient")
    return notes
