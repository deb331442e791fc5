"""How well does the forecast time the wins, stage by stage? A known-truth check (issue 14).

The Monte Carlo times a won deal by its product's time-to-win curve and the deal's age
(`forecasting.timing`), not by its stage. On the generated worlds (`dataset.worlds`), whose
outcomes are known past the data's end, this takes the forecast backtest's cutoffs and, for the
deals open on each that went on to win, compares the value the timing puts within 4 and 13 weeks
with the value that closed then, by the stage each deal was in on the cutoff. A ratio above 1:
timed too soon. "staged": the same timing corrected by what the stage says
(`forecasting.stage_timing`, fitted on each cutoff as the backtest does). Why: the stages worlds' P50 leans high 4 weeks out (artifacts/forecast_backtest.md,
pooled), and neither new deals nor the win model's level explain it.

    python benchmarks/forecast_timing_by_stage.py                     # stages and inbound, seed 1
    python benchmarks/forecast_timing_by_stage.py --worlds stages --seeds 1,2
    python benchmarks/forecast_timing_by_stage.py --no-stage-model      # the curve alone, fast
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from forecast_backtest_study import WORLDS, generated  # noqa: E402  (this folder)

from forecasting import inputs, stage_timing  # noqa: E402
from forecasting.backtest import default_cutoffs  # noqa: E402
from forecasting.warped_draws import WITHIN_DAYS  # noqa: E402
from scoring.features import features_at  # noqa: E402
from scoring.train import all_rows, fit_at  # noqa: E402

WEEKS = (4, 13)


def timed_against_closed(crm, outcomes: pd.DataFrame, cutoffs,
                         staged: bool = False) -> pd.DataFrame:  # fmt: skip
    """Per cutoff and stage: the true winners' value the timing puts within each horizon, and
    the value that closed then; `staged`: also the value timed by stage
    (`forecasting.stage_timing`, fitted on each cutoff with the win model of that day)."""
    history = crm.history.sort_values("as_of")
    edges = np.array([0, *(7 * w for w in WEEKS)])
    assert tuple(7 * w for w in WEEKS) == WITHIN_DAYS  # the stage models' knots
    snapshots = all_rows(crm) if staged else None
    rows = []
    for c in cutoffs:
        f = features_at(crm, c)
        open_ = inputs.open_deals(crm, c, np.zeros(len(f)), f)
        sampler = inputs.fit_timing(crm, c, "km").sampler(
            open_["age"].to_numpy(), open_["timing_group"].to_numpy(dtype=object)
        )
        cls, chances = sampler.atom_chances(edges)
        within = np.cumsum(chances[cls], axis=1)  # (deals, horizons)
        if staged:
            model, _ = fit_at(crm, c, snapshots)
            km = inputs.fit_timing(crm, c, "km")
            fitted = stage_timing.fit(crm, c, snapshots[snapshots["snapshot"] < c], model, km)
            by_stage_model = within if fitted is None else fitted.within(f, model.predict(f), km)
        stage = history[history["as_of"] <= c].groupby("deal_id")["stage"].last()
        stage = stage.reindex(open_.index).fillna("(none)").to_numpy(dtype=object)
        truth = outcomes.reindex(open_.index)
        won = truth["won"].fillna(False).to_numpy(bool)
        days = (truth["closed_on"] - c).dt.days.to_numpy()
        value = truth["value"].to_numpy(float)
        for s in pd.unique(stage[won]):
            m = won & (stage == s)
            row = {"cutoff": c, "stage": s, "won deals": int(m.sum())}
            for k, w in enumerate(WEEKS):
                row[f"timed {w}w"] = float((value[m] * within[m, k]).sum())
                row[f"closed {w}w"] = float((value[m] * (days[m] <= 7 * w)).sum())
                if staged:
                    row[f"staged {w}w"] = float((value[m] * by_stage_model[m, k]).sum())
            rows.append(row)
    return pd.DataFrame(rows)


def by_stage(rows: pd.DataFrame) -> pd.DataFrame:
    """Summed over the cutoffs, per stage and over all: the ratio of timed to closed value (and
    of the value timed by stage, where measured)."""
    kinds = ("timed", "staged", "closed") if "staged 4w" in rows else ("timed", "closed")
    cols = ["won deals", *(f"{x} {w}w" for w in WEEKS for x in kinds)]
    table = rows.groupby("stage")[cols].sum()
    table.loc["(all stages)"] = table.sum()
    for w in WEEKS:
        closed = table[f"closed {w}w"].replace(0, np.nan)
        for x in kinds[:-1]:
            table[f"{x} / closed {w}w"] = table[f"{x} {w}w"] / closed
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worlds", default="stages,inbound")
    ap.add_argument("--seeds", default="1")
    ap.add_argument("--deals", type=int, default=4000)
    ap.add_argument("--cutoffs", type=int, default=18, help="as the study; the first 4 skipped")
    ap.add_argument("--no-stage-model", action="store_true",
                    help="only the curve's timing (fast: no win model fitted per cutoff)")  # fmt: skip
    args = ap.parse_args()
    pd.set_option("display.width", 200)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.worlds.split(","):
            module = WORLDS[name]
            for seed in (int(s) for s in args.seeds.split(",")):
                world, crm = generated(name, seed, args.deals, Path(tmp))
                cutoffs = default_cutoffs(crm, args.cutoffs, lead_weeks=4)[4:]
                rows = timed_against_closed(crm, module.outcomes(world).set_index("deal_id"),
                                            cutoffs, staged=not args.no_stage_model)  # fmt: skip
                table = by_stage(rows)
                print(f"\n{name} seed {seed} ({args.deals:,} deals, {len(cutoffs)} cutoffs)")
                print(table.round({c: 2 for c in table.columns if "/" in c}).to_string(
                    float_format=lambda x: "0" if x == 0 else f"{x:,.2f}" if abs(x) < 100 else f"{x:,.0f}"))  # fmt: skip


if __name__ == "__main__":
    main()
