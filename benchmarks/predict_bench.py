"""The trees' predictions at a million deals: LightGBM's own predict against compiled trees.

Why: the nightly run's floor (`scoring_bench.py`) counts one LightGBM predict, but the run makes
three on every open deal (the win model and the forecast's two stage models, whose 4-week one has
about three times the win model's trees on the demo), 8 s of its 37 s. A library that compiles
the trees to machine code predicts the same model several times faster; none is a dependency
yet (tl2cgen needs a C compiler the Docker image lacks, lleaves an older llvmlite: see the
README's nightly run). This prints what each would save here, and whether its predictions are
LightGBM's to the bit.

Run: python benchmarks/predict_bench.py [--rows 1000000] [--model DIR]
The demo is written and trained here first (about 20 s): its open deals are the rows, and its
models are measured unless `--model` names a folder of others (as `revbot train` writes them).
The engines are tried only where installed:
- tl2cgen (Treelite's C code generator; `pip install tl2cgen treelite`): needs a C compiler
  (gcc) wherever it compiles a model;
- lleaves (LLVM; `pip install lleaves`): needs llvmlite 0.44 or older, which only numba 0.61 or
  older accepts (shap needs numba), and numba 0.61 needs numpy older than 2.3.
Rows are the demo's 313 open deals drawn with replacement, in the layout the product builds
(`WinModel.matrix`: column by column); both engines copy them into rows, and that copy is timed
with them. A compile time is the engine's own (tl2cgen's includes Treelite's reading of the
booster, lleaves' leaves out the model file it is given). Prints figures only.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _models(folder: Path):
    """[(label, booster, the model whose vocabulary builds its matrix)] of `folder`."""
    from forecasting import stage_timing_file
    from scoring import artifact

    model, _ = artifact.load(folder)
    out = [("win model", model.booster, model)]
    stages = stage_timing_file.load(folder)
    for k, fitted in enumerate(stages.boosters if stages else []):
        if fitted is not None:
            out.append((f"stage model {k + 1}", *fitted))
    return out


def _open_deals(db: Path) -> pd.DataFrame:
    """The features of the open deals of the database `db`, on its last day."""
    from dataset import database, deal_history
    from scoring.features import features_at, prepare

    crm = prepare(deal_history.load_crm(database.connect(db)))
    return features_at(crm, crm.data_end)


def _rows(stub, n: int, features: pd.DataFrame) -> np.ndarray:
    """`n` rows of `stub`'s feature matrix: the open deals drawn with replacement."""
    x = stub.matrix(features)
    drawn = np.random.default_rng(1).integers(0, len(x), n)
    return np.asfortranarray(x[drawn])  # as `WinModel.matrix` builds it, column by column


def _clock(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _tl2cgen(booster, x: np.ndarray, tmp: Path):
    import tl2cgen
    import treelite

    lib = tmp / f"tl2cgen-{id(booster)}.so"
    _, build = _clock(lambda: tl2cgen.export_lib(treelite.frontend.from_lightgbm(booster),
                                                 toolchain="gcc", libpath=str(lib), nthread=2))  # fmt: skip
    predictor = tl2cgen.Predictor(str(lib), nthread=2)
    out, seconds = _clock(lambda: predictor.predict(tl2cgen.DMatrix(x), pred_margin=True))
    return np.asarray(out).reshape(-1), seconds, build


def _lleaves(booster, x: np.ndarray, tmp: Path):
    import lleaves

    text = tmp / f"lleaves-{id(booster)}.txt"
    booster.save_model(str(text))
    compiled = lleaves.Model(model_file=str(text))
    _, build = _clock(lambda: compiled.compile(raw_score=True))
    out, seconds = _clock(lambda: compiled.predict(x, n_jobs=2))
    return out, seconds, build


ENGINES = {"tl2cgen": _tl2cgen, "lleaves": _lleaves}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--model", type=Path, help="a model folder (default: the demo's)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        from scoring_bench import demo_model  # this folder: the demo's model and stage models

        # the demo's database for the rows (and its model, unless one is given)
        demo_model(tmp)
        models = _models(args.model or tmp / "model")
        features = _open_deals(tmp / "small.db")
        print(f"predictions of {args.rows:,} rows, raw scores, two threads "
              f"({os.cpu_count()} cores here)")  # fmt: skip
        totals: dict[str, float] = {}
        missed: set[str] = set()  # engines that could not measure every model
        for label, booster, stub in models:
            x = _rows(stub, args.rows, features)
            ref, base = _clock(lambda b=booster, x=x: b.predict(x, raw_score=True, num_threads=2))
            totals["LightGBM"] = totals.get("LightGBM", 0.0) + base
            print(f"  {label} ({booster.num_trees()} trees): LightGBM {base:.2f} s")
            for engine, run in ENGINES.items():
                try:
                    out, seconds, build = run(booster, x, tmp)
                except Exception as exc:  # not installed, no compiler, a version it cannot use
                    print(f"    {engine}: not measured ({type(exc).__name__}: {exc})"[:160])
                    missed.add(engine)
                    continue
                totals[engine] = totals.get(engine, 0.0) + seconds
                out = np.ascontiguousarray(out, dtype=np.float64)
                diff = float(np.max(np.abs(out - ref))) if len(ref) else 0.0
                bits = np.array_equal(out.view(np.uint64), ref.view(np.uint64))
                print(f"    {engine}: {seconds:.2f} s ({base / seconds:.1f}x), compiled in "
                      f"{build:.1f} s; largest difference {diff:.3g}"
                      f"{' (equal to the bit)' if bits else ''}")  # fmt: skip
        print("  all models: " + ", ".join(f"{k} {v:.2f} s" for k, v in totals.items()
                                           if k not in missed))  # fmt: skip


if __name__ == "__main__":
    main()
