"""Where does the forecast's error come from? Its parts at each backtest cutoff.

At each cutoff of `forecasting.backtest.default_cutoffs` (Kaplan-Meier timing, no shock, no
centre correction) and each horizon (4, 8, 13 weeks), the forecast's mean is split as the
simulation builds it and set against what happened:

- pipeline (deals open at the cutoff): `from_pipeline` against the value those deals won within
  the horizon; and inside it
  - level: sum of win_prob x value against the value of those deals won at any time (up to the
    data's end; `open@end` says how much of the pipeline's value was still open there),
  - timing: share of the eventually-won value closed within the horizon, against the timing
    model's share (the timing curve on the deals that were won, `timing|won`; and as the
    forecast weights it, by win_prob x value, `timing|p`);
  `--cohorts`: the pipeline part at 13 weeks by the week the deals were engaged, summed over
  the cutoffs, the weeks whose forecast ran furthest above what they won first (on MavenTech
  the deals engaged from 2017-07-17 to 08-06, 1.8 times the median week's number, about half
  of them never closed: forecast 2.4 times what they won, the rest of the pipeline 0.99);
- new (deals not open at the cutoff): `from_new` against the value they won within the horizon,
  split into the count of new deals won (expected from the arrival rate, win rate and timing)
  and their mean value.
On generated worlds (a `crm/truth/probabilities.csv` beside the database) the open deals' mean
win_prob is set against their true probability on the cutoff's export day.

Ratios are forecast / actual (1.00 = right; above 1 = the forecast was too high), medians over
the cutoffs, and `above`: the share of cutoffs where the forecast part was above the actual.

    python benchmarks/forecast_error_parts.py /work/exp_lead/mv22/m.db \\
        /work/exp_lead/w_stages1_4000/all.db /work/exp_lead/w_inbound1_4000/all.db

Training the win model at ten cutoffs is the slow part (minutes per database); `--cache DIR`
keeps each cutoff's features and win probabilities so that a change in the forecast's inputs can
be measured again in seconds. `--timing km-any`: the same with the timing curve of any close (the
forecast's before it timed wins by the time wins take); `--backtest`: also the backtest's shocked
methods (ours by rolling origin, in-sample sigma) on the same cutoffs: P10-P90 coverage, P50
error and the share of cutoffs with the P50 above the actual.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from dataset import database, deal_history  # noqa: E402
from forecasting import backtest as bt  # noqa: E402
from forecasting import bands as fitting  # noqa: E402
from forecasting import inputs  # noqa: E402
from forecasting.backtest import HORIZONS, CutoffInputs, default_cutoffs, horizon_periods, won_after  # noqa: E402
from forecasting.montecarlo import simulate  # noqa: E402
from scoring.features import features_at, prepare  # noqa: E402
from scoring.train import all_rows, fit_at  # noqa: E402

SCENARIOS = 2000


def load(path: Path):
    return prepare(deal_history.load_crm(database.connect(path)))


def scored(
    crm, path: Path, n: int, cache: Path | None
) -> list[tuple[pd.Timestamp, pd.DataFrame, np.ndarray]]:
    """(cutoff, features of the open deals, win probability) at each cutoff, the win model
    trained as the backtest trains it (`forecasting.backtest.cutoff_inputs`)."""
    file = None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        file = cache / f"{path.parent.name}_{path.stem}_{n}.pkl"
        if file.exists():
            return pickle.loads(file.read_bytes())
    cutoffs = default_cutoffs(crm, n)
    rows = all_rows(crm, cutoffs[-1])
    out = []
    for c in cutoffs:
        print(f"  training at {c.date()}…", file=sys.stderr, flush=True)
        model, _ = fit_at(crm, c, rows)  # as the backtest trains it
        f = features_at(crm, c)
        out.append((c, f, model.predict(f)))
    if file is not None:
        file.write_bytes(pickle.dumps(out))
    return out


def truth_of(path: Path) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """A generated world's truth beside its database: outcomes by deal, p_true by export day
    (the demo's truth folder has neither close days nor probabilities by export day: none)."""
    folder = path.parent / "crm" / "truth"
    if not (folder / "probabilities.csv").exists():
        return None
    if "closed_on" not in pd.read_csv(folder / "deals.csv", nrows=0).columns:
        return None
    deals = pd.read_csv(folder / "deals.csv", dtype={"deal_id": str}, parse_dates=["closed_on"])
    probs = pd.read_csv(folder / "probabilities.csv", dtype={"deal_id": str},
                        parse_dates=["export_day"])  # fmt: skip
    return deals.set_index("deal_id"), probs


def cutoff_inputs_from(
    crm, c: pd.Timestamp, f: pd.DataFrame, p: np.ndarray, timing: str = "km"
) -> CutoffInputs:
    """`forecasting.backtest.cutoff_inputs` from a cutoff's scored features (no training)."""
    return CutoffInputs(cutoff=c, deals=inputs.open_deals(crm, c, p, f),
                        km=inputs.fit_timing(crm, c, timing), km_any=inputs.fit_timing(crm, c, "km-any"),
                        exponential=None, arrivals=inputs.arrivals(crm, c), actual=won_after(crm, c),
                        pace=inputs.pace_clock(crm, c))  # fmt: skip


def close_within(
    km, age: np.ndarray, group: np.ndarray, days: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per deal: P(closes within `days` | open at its age) and P(never closes | open at its age),
    from the timing curve the simulation samples."""
    within, never = np.zeros(len(age)), np.zeros(len(age))
    a = np.clip(np.nan_to_num(age), 0, len(km.pooled) - 1).astype(int)
    for g in pd.unique(group):
        m = group == g
        s = km.curve(g)
        start = s[a[m]]
        end = s[np.minimum(a[m] + days, len(s) - 1)]
        ok = start > 0
        within[m] = np.where(ok, 1 - end / np.where(ok, start, 1), 0.0)
        never[m] = np.where(ok, s[-1] / np.where(ok, start, 1), 1.0)
    return within, never


def new_count(arr, km, days: int) -> float:
    """Expected number of deals created after the cutoff and won within `days` (as simulated)."""
    if arr.per_week <= 0 or len(arr.values) == 0:
        return 0.0
    groups = arr.groups if arr.groups is not None else np.zeros(len(arr.values))
    total = 0.0
    for g in pd.unique(groups):
        share = np.mean(groups == g)
        cdf = km.cdf_from_start(days, g if arr.groups is not None else None)
        cdf = arr.scaled(cdf)
        total += arr.per_week / 7.0 * share * arr.win_rate * cdf.sum()
    return total


def parts(crm, ci: CutoffInputs, truth=None, scenarios: int = SCENARIOS) -> list[dict]:
    """One row per horizon: the forecast's parts and what happened, at one cutoff."""
    c, deals, km = ci.cutoff, ci.deals, ci.km
    fc = simulate(deals, km, horizon_periods(), scenarios=scenarios, seed=0, arrivals=ci.arrivals,
                  keep=True)  # fmt: skip
    d = crm.deals.set_index("deal_id")
    o = d.reindex(deals.index)
    status, closed, final = o["status"], o["closed_on"], o["value"].fillna(0.0)
    if truth is not None:  # the world's outcome, also for deals still open at the data's end
        t = truth[0].reindex(deals.index.astype(str))
        status = pd.Series(np.where(t["won"].to_numpy(bool), "won", "lost"), index=deals.index)
        closed = pd.Series(t["closed_on"].to_numpy(), index=deals.index)
        final = pd.Series(t["value"].fillna(0.0).to_numpy(), index=deals.index)
    won = (status == "won").to_numpy()
    open_end = (
        (~(o["closed_on"] <= crm.data_end)).to_numpy() if truth is None else np.zeros(len(o), bool)
    )
    v, p = deals["value"].to_numpy(float), deals["win_prob"].to_numpy(float)
    row0 = {"cutoff": c.date().isoformat(), "open": len(deals)}
    if truth is not None:
        probs = truth[1]
        day = probs.loc[probs["export_day"] <= c, "export_day"].max()
        pt = probs[probs["export_day"] == day].set_index("deal_id")["p_true"]
        pt = pt.reindex(deals.index.astype(str)).to_numpy(float)
        k = ~np.isnan(pt)
        row0["p_mean"] = p[k].mean()
        row0["p_true_mean"] = pt[k].mean()
        row0["pv/ptv"] = (p[k] * v[k]).sum() / (pt[k] * v[k]).sum()
    rows = []
    for k, w in enumerate(HORIZONS):
        end = c + pd.Timedelta(weeks=w)
        inside = (won & (closed > c) & (closed <= end)).to_numpy()
        f_in, f_never = close_within(
            km, deals["age"].to_numpy(), deals["timing_group"].to_numpy(object), 7 * w
        )
        pipe_actual = float(final[inside].sum())
        all_won_h = (d["status"] == "won") & (d["closed_on"] > c) & (d["closed_on"] <= end)
        new_ids = d.index[all_won_h].difference(
            deals.index[(o["status"] == "won") & (o["closed_on"] > c) & (o["closed_on"] <= end)]
        )
        new_actual = float(d.loc[new_ids, "value"].fillna(0).sum())
        pipe_fc, new_fc = (
            float(fc.table["from_pipeline"].iloc[k]),
            float(fc.table["from_new"].iloc[k]),
        )
        n_new = new_count(ci.arrivals, km, 7 * w)
        rows.append(row0 | {
            "weeks": w,
            "total_fc": pipe_fc + new_fc,
            "p50": float(fc.table["p50"].iloc[k]),
            "actual": ci.actual[w],
            "pipe_fc": pipe_fc,
            "pipe_actual": pipe_actual,
            "level_fc": float((p * v).sum()),
            "level_actual": float(v[won].sum()),  # won value, at the value the forecast used
            "won_final": float(final[won].sum()),
            "open_end": float(v[open_end].sum() / max(v.sum(), 1e-9)),
            "timing_p": float((p * v * f_in).sum() / max((p * v).sum(), 1e-9)),
            "timing_won": float((final[won] * f_in[won]).sum() / max(final[won].sum(), 1e-9)),
            "timing_actual": pipe_actual / max(float(final[won].sum()), 1e-9),
            "never": float((p * v * f_never).sum() / max((p * v).sum(), 1e-9)),
            "new_fc": new_fc,
            "new_actual": new_actual,
            "new_n_fc": n_new,
            "new_n_actual": len(new_ids),
            "new_engaged_before": int((d.loc[new_ids, "engage_date"] <= c).sum()),
        })  # fmt: skip
    return rows


def by_cohort(crm, ci: CutoffInputs, weeks: int = 13) -> pd.DataFrame:
    """The pipeline part within `weeks` of one cutoff (win_prob x value x the timing's chance
    within, worked out rather than drawn, as `parts` does) and what those deals won, by the week
    they were engaged (deals still prospecting: none)."""
    c, deals = ci.cutoff, ci.deals
    o = crm.deals.set_index("deal_id").reindex(deals.index)
    within, _ = close_within(ci.km, deals["age"].to_numpy(), deals["timing_group"].to_numpy(object),
                             7 * weeks)  # fmt: skip
    won = (
        (o["status"] == "won")
        & (o["closed_on"] > c)
        & (o["closed_on"] <= c + pd.Timedelta(weeks=weeks))
    )
    week = o["engage_date"].dt.to_period("W").astype(str).where(o["engage_date"].notna(), "none")
    frame = pd.DataFrame({
        "engaged": week.to_numpy(),
        "forecast": deals["win_prob"].to_numpy(float) * deals["value"].to_numpy(float) * within,
        "won": np.where(won.to_numpy(), o["value"].fillna(0.0).to_numpy(float), 0.0),
    })  # fmt: skip
    return frame.groupby("engaged", as_index=False).sum().assign(cutoff=c.date().isoformat())


def cohort_table(rows: pd.DataFrame, top: int = 8) -> pd.DataFrame:
    """Per engagement week, summed over the cutoffs: forecast, won, their ratio and the excess,
    the `top` weeks by excess first, then all the other weeks together, then the total."""
    weeks = rows.groupby("engaged")[["forecast", "won"]].sum()
    weeks["excess"] = weeks["forecast"] - weeks["won"]
    weeks = weeks.sort_values("excess", ascending=False)
    head, rest = weeks.iloc[:top], weeks.iloc[top:]
    out = pd.concat([head, pd.DataFrame([rest.sum(), weeks.sum()],
                                        index=["all other weeks", "all"])])  # fmt: skip
    out["forecast/won"] = ratio(out["forecast"], out["won"])
    return out.round({"forecast": 0, "won": 0, "excess": 0, "forecast/won": 2})


def ratio(a, b):
    return np.where(np.asarray(b) > 0, np.asarray(a) / np.where(np.asarray(b) > 0, b, 1), np.nan)


def table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per horizon, medians over the cutoffs of forecast / actual for each part."""
    r = rows
    out = pd.DataFrame({
        "weeks": r["weeks"],
        "P50/act": ratio(r["p50"], r["actual"]),
        "mean/act": ratio(r["total_fc"], r["actual"]),
        "pipe%act": ratio(r["pipe_actual"], r["actual"]),
        "pipe": ratio(r["pipe_fc"], r["pipe_actual"]),
        "level": ratio(r["level_fc"], r["level_actual"]),
        "value": ratio(r["level_actual"], r["won_final"]),
        "tim|p": r["timing_p"],
        "tim|won": r["timing_won"],
        "tim act": r["timing_actual"],
        "never": r["never"],
        "open@end": r["open_end"],
        "new": ratio(r["new_fc"], r["new_actual"]),
        "new n": ratio(r["new_n_fc"], r["new_n_actual"]),
        "new val": ratio(r["new_fc"] / np.maximum(r["new_n_fc"], 1e-9), r["new_actual"] / np.maximum(r["new_n_actual"], 1)),
        "P50>act": (r["p50"] > r["actual"]).astype(float),
    })  # fmt: skip
    if "p_mean" in r:
        out["p"] = r["p_mean"]
        out["p_true"] = r["p_true_mean"]
    table = out.groupby("weeks").median()
    table["P50>act"] = out.groupby("weeks")["P50>act"].mean()  # a share, not a median
    return table.round(2)


def p50_scores(rows: pd.DataFrame) -> pd.DataFrame:
    e = (rows["p50"] - rows["actual"]).abs() / rows["actual"]
    return (rows.assign(err=e, above=rows["p50"] > rows["actual"])
            .groupby("weeks").agg(p50_error=("err", "mean"), p50_above=("above", "mean")).round(3))  # fmt: skip


def backtest_summary(crm, all_inputs: list[CutoffInputs]) -> pd.DataFrame:
    """The backtest's two shocked methods (`forecasting.backtest.backtest`, without the
    exponential baseline) on these inputs: ours (bands by rolling origin) and in-sample sigma."""
    cutoffs = [ci.cutoff for ci in all_inputs]
    sims = bt.sigma_grid(all_inputs)
    actual = np.array([[ci.actual[w] for w in HORIZONS] for ci in all_inputs])
    rolled = fitting.rolling(cutoffs, sims, actual, bt.GRID, HORIZONS)
    fixed = bt.in_sample_sigma(bt.sigma_grid(all_inputs, 0, bt.BEFORE, bt.SIGMA_ONLY), actual)
    rows = pd.concat([
        bt.method_rows(all_inputs, bt.OURS, rolled, 4000),
        bt.method_rows(all_inputs, bt.BEFORE, [fitting.Bands(fixed)] * len(cutoffs), 4000),
    ])  # fmt: skip
    return bt.summarise(rows)[["method", "weeks", "cutoffs", "coverage_p10_p90", "p50_mape",
                               "p50_above_share"]].round(3)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("databases", nargs="+", type=Path)
    ap.add_argument("--cutoffs", type=int, default=10)
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument(
        "--timing",
        default="km",
        help="km (time to a win; the forecast's), km-any (time to any close)",
    )
    ap.add_argument("--backtest", action="store_true", help="also the backtest's shocked methods")
    ap.add_argument("--rows", type=Path, default=None, help="write every cutoff's parts (CSV)")
    ap.add_argument("--cohorts", action="store_true",
                    help="also the 13-week pipeline part by the week its deals were engaged")  # fmt: skip
    args = ap.parse_args()
    pd.set_option("display.width", 250)
    every = []
    for path in args.databases:
        crm = load(path)
        truth = truth_of(path)
        rows, all_inputs, cohorts = [], [], []
        for c, f, p in scored(crm, path, args.cutoffs, args.cache):
            all_inputs.append(cutoff_inputs_from(crm, c, f, p, args.timing))
            rows += parts(crm, all_inputs[-1], truth)
            if args.cohorts:
                cohorts.append(by_cohort(crm, all_inputs[-1]))
        rows = pd.DataFrame(rows)
        print(f"\n## {path}  ({rows['cutoff'].nunique()} cutoffs)\n")
        print(table(rows).to_string())
        print()
        print(p50_scores(rows).to_string())
        if cohorts:
            print("\nthe pipeline part at 13 weeks by engagement week, over the cutoffs:\n")
            print(cohort_table(pd.concat(cohorts)).to_string())
        if args.backtest:
            print()
            print(backtest_summary(crm, all_inputs).to_string(index=False))
        every.append(rows.assign(database=str(path)))
    if args.rows is not None:
        pd.concat(every).to_csv(args.rows, index=False)


if __name__ == "__main__":
    main()
