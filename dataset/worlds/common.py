"""What both known-truth worlds share: the World record, calendar sums, observation codes, names,
file writing, the truth files and the calibration check.

Why shared: both worlds compute the truth the same way (a forward filter over a few hidden
hypotheses per deal, fed only with what the weekly exports show, then the exact win probability of
each hypothesis), so the bookkeeping around it is common. Mechanics stay in each world's module.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

# A stage can change on day `entry + DWELL` at the earliest. With exports exactly 7 days apart this
# puts at most one stage change between two exports, so the exports show every change and its day
# (the "last stage change" column), which keeps the posterior exact.
DWELL = 8
NEVER = np.iinfo(np.int32).max // 2


@dataclass
class World:
    """A generated world. Days are integers from `origin` (day 0); arrays run over deals."""

    config: object
    origin: date
    exports: np.ndarray  # day of each export
    stamps: list[datetime]  # local time each export was taken
    deal_id: np.ndarray
    cause: np.ndarray
    created: np.ndarray
    won: np.ndarray
    close_day: np.ndarray  # the day the deal closed (after the last export for some)
    value: np.ndarray
    p_true: np.ndarray  # (exports, deals) float, NaN where the deal is not open in that export
    visible: np.ndarray  # (exports, deals) bool: the cause has shown in that export
    snap: dict[str, np.ndarray]  # (exports, deals) observable state at each export
    static: dict[str, np.ndarray]  # per-deal observable attributes
    # for checking the truth (NaN where not open): "posterior" (exports, deals, causes), each
    # cause's posterior; "v_true" (exports, deals), the win chance given the full hidden state
    check: dict[str, np.ndarray] = field(default_factory=dict)


def to_date(world: World, day: int | np.integer) -> date:
    return world.origin + timedelta(days=int(day))


def export_days(world: World) -> list[date]:
    """The days the weekly exports were taken."""
    return [to_date(world, d) for d in world.exports]


def export_index(world: World, day: date) -> int:
    hits = np.flatnonzero(world.exports == (day - world.origin).days)
    if not len(hits):
        raise ValueError(f"no export was taken on {day}; export days: {export_days(world)[:3]}...")
    return int(hits[0])


def truth_at(world: World, day: date) -> pd.DataFrame:
    """deal_id, p_true, cause, cause_visible for every deal open in the export of `day`."""
    k = export_index(world, day)
    open_ = ~np.isnan(world.p_true[k])
    return pd.DataFrame(
        {
            "deal_id": world.deal_id[open_],
            "p_true": world.p_true[k, open_].astype(float),
            "cause": world.cause[open_],
            "cause_visible": world.visible[k, open_],
        }
    )


def outcomes(world: World) -> pd.DataFrame:
    """Every deal's cause, outcome, close day (may be after the last export), final value and the
    first export day its cause showed in (NaT if it never did while the deal was open)."""
    shown = world.visible & ~np.isnan(world.p_true)
    first = np.where(shown.any(axis=0), world.exports[shown.argmax(axis=0)], -1)
    origin = np.datetime64(world.origin, "D")
    return pd.DataFrame(
        {
            "deal_id": world.deal_id,
            "cause": world.cause,
            "won": world.won,
            "closed_on": pd.to_datetime(origin + world.close_day.astype("timedelta64[D]")),
            "value": world.value,
            "first_visible": pd.to_datetime(
                np.where(first >= 0, origin + first.astype("timedelta64[D]"), np.datetime64("NaT"))
            ),
        }
    )


class Calendar:
    """Weekends and weekday counts over days 0..n-1 from `origin`."""

    def __init__(self, origin: date, n: int, weekend_factor: float):
        self.weekday = (origin.weekday() + np.arange(n)) % 7
        self.weekend = self.weekday >= 5
        self.weight = np.where(self.weekend, weekend_factor, 1.0)
        self._wd = np.concatenate([[0], np.cumsum(~self.weekend)])

    def counts(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weekdays and weekend days in [lo, hi] (inclusive; empty when hi < lo)."""
        lo = np.asarray(lo)
        hi = np.maximum(np.asarray(hi), lo - 1)
        wd = self._wd[hi + 1] - self._wd[lo]
        return wd, (hi - lo + 1) - wd


def poisson_binomial(nwd: np.ndarray, nwe: np.ndarray, p: float, pw: float, kmax: np.ndarray):
    """P(min(events, kmax) = m), m = 0..7, for nwd days at p and nwe days at pw (counts <= 7)."""
    comb = np.array([[math.comb(n, k) if k <= n else 0 for k in range(8)] for n in range(8)], float)
    m = np.arange(8)

    def binom(n, q):
        return comb[n] * q ** m[None, :] * (1 - q) ** np.maximum(n[:, None] - m[None, :], 0)

    a, b = binom(np.asarray(nwd), p), binom(np.asarray(nwe), pw)
    out = np.zeros_like(a)
    for j in range(8):
        out[:, j:] += a[:, [j]] * b[:, : 8 - j]
    kmax = np.asarray(kmax)[:, None]
    capped = np.where(m[None, :] < kmax, out, 0.0)
    tail = np.where(m[None, :] >= kmax, out, 0.0).sum(axis=1)
    capped[np.arange(len(out)), kmax[:, 0]] += tail
    return capped


def draw(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """One categorical draw per row of `p` (chances of mutually exclusive events); len(p[0]) means
    none of them."""
    return (rng.random(len(p))[:, None] > np.cumsum(p, axis=1)).sum(axis=1)


def activity_code(day: int, last_in_window: np.ndarray) -> np.ndarray:
    """What an export window says about activity on `day`: 2 logged (it is the window's latest
    activity), 1 none (after the latest, or none in the window), 0 unknown (before the latest:
    only the latest activity date is exported)."""
    return np.where(
        last_in_window < 0, 1, np.where(day > last_in_window, 1, (day == last_in_window) * 2)
    )


def activity_factor(code: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Likelihood of the activity code for a deal still worked (daily activity chance alpha)."""
    return np.choose(code, [np.ones_like(alpha), 1 - alpha, alpha])


def hashed(i: np.ndarray, day: np.ndarray | int, salt: int, mod: int) -> np.ndarray:
    """A deterministic pseudo-random integer in [0, mod) per (deal, day): cosmetic times of day."""
    x = (np.asarray(i, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ (
        np.asarray(day, dtype=np.uint64) * np.uint64(0xBF58476D1CE4E5B9) + np.uint64(salt)
    )
    x ^= x >> np.uint64(31)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(29)
    return (x % np.uint64(mod)).astype(np.int64)


FIRST = ("Adaeze", "Bruno", "Camille", "Dmitri", "Esther", "Felipe", "Greta", "Haruto", "Ines",
         "Jamal", "Katja", "Leon", "Marisol", "Nils", "Oksana", "Priya", "Rafael", "Sofia",
         "Tobias", "Uma", "Viktor", "Wanjiru", "Yara", "Zane", "Anouk", "Bashir", "Carmen", "Declan")  # fmt: skip
LAST = ("Achebe", "Bergström", "Castillo", "Duarte", "Eriksen", "Fontaine", "Goldberg", "Hakimi",
        "Iversen", "Jovanovic", "Kaplan", "Lindgren", "Moreno", "Nakamura", "O'Neill", "Petrova",
        "Quintero", "Rossi", "Sandoval", "Takahashi", "Urquhart", "Vasquez", "Whitaker", "Yamada")  # fmt: skip
_PREFIX = ("Blue", "North", "Silver", "Granite", "Harbor", "Summit", "Cedar", "Pioneer", "Atlas",
           "Beacon", "Crescent", "Evergreen", "Falcon", "Iron", "Juniper", "Keystone", "Lakeside",
           "Meridian", "Oak", "Prairie", "Redwood", "Sterling", "Tidewater", "Vantage")  # fmt: skip
_NOUN = ("Logistics", "Health", "Foods", "Analytics", "Energy", "Capital", "Dental", "Robotics",
         "Media", "Freight", "Pharma", "Outdoor", "Legal", "Insurance", "Labs", "Textiles")  # fmt: skip
_SUFFIX = ("Inc.", "LLC", "Group", "Co.", "Ltd", "Partners", "Holdings", "", "", "")


def people(rng: np.random.Generator, n: int) -> list[str]:
    """n distinct "First Last" names."""
    pairs = rng.permutation(len(FIRST) * len(LAST))[:n]
    return [f"{FIRST[p // len(LAST)]} {LAST[p % len(LAST)]}" for p in pairs]


def companies(rng: np.random.Generator, n: int) -> list[str]:
    """n distinct company names, a few with commas (quoted in the files, as CRMs do)."""
    out: dict[str, None] = {}
    while len(out) < n:
        a, b, s = rng.choice(_PREFIX), rng.choice(_NOUN), rng.choice(_SUFFIX)
        name = f"{a} {b}" + ((", " if s == "Inc." and rng.random() < 0.5 else " ") + s if s else "")
        out[name] = None
    return list(out)


def salesforce_ids(rng: np.random.Generator, n: int, prefix: str) -> np.ndarray:
    """18-character Salesforce ids (`prefix` = the object's key prefix), increasing, with the
    case-safe suffix Salesforce appends to the 15-character id."""
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    out = []
    for v in (int(rng.integers(62**5, 62**6)) + np.cumsum(rng.integers(1, 40, n))).tolist():
        body = ""
        for _ in range(9):
            v, r = divmod(v, 62)
            body = digits[r] + body
        id15 = prefix + "Hs0" + body
        bits = [
            sum(1 << j for j, c in enumerate(id15[k : k + 5]) if c.isupper()) for k in (0, 5, 10)
        ]
        out.append(id15 + "".join("ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[b] for b in bits))
    return np.array(out)


def csv_bytes(header: Sequence[str], rows: pd.DataFrame, newline: str, footer: Sequence[str] = ()):
    """Every field quoted, as Salesforce and HubSpot write them."""
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator=newline)
    writer.writerow(header)
    writer.writerows(rows.itertuples(index=False, name=None))
    if footer:
        buf.write(newline)
        for line in footer:
            writer.writerow([line])
    return buf.getvalue().encode("utf-8")


def write_truth(world: World, out: Path) -> list[Path]:
    """truth/probabilities.csv (export_day, deal_id, p_true) and truth/deals.csv (outcomes)."""
    (out / "truth").mkdir(parents=True, exist_ok=True)
    k, j = np.nonzero(~np.isnan(world.p_true))
    days = np.array([d.isoformat() for d in export_days(world)])
    probs = pd.DataFrame(
        {"export_day": days[k], "deal_id": world.deal_id[j], "p_true": world.p_true[k, j]}
    )
    paths = [out / "truth" / "probabilities.csv", out / "truth" / "deals.csv"]
    probs.to_csv(paths[0], index=False, float_format="%.6f", lineterminator="\n")
    deals = outcomes(world)
    for c in ("closed_on", "first_visible"):
        deals[c] = deals[c].dt.strftime("%Y-%m-%d").fillna("")
    deals.to_csv(paths[1], index=False, lineterminator="\n")
    return paths


def calibration(world: World, every: int = 12, bins: int = 10) -> pd.DataFrame:
    """Deciles of p_true over the deals open at every `every`-th export (from the 10th on; weeks
    apart, so few deals appear twice) against the realised win rate, with its standard error."""
    ks = np.arange(min(9, len(world.exports) - 1), len(world.exports), every)
    p = np.concatenate([world.p_true[k][~np.isnan(world.p_true[k])] for k in ks])
    y = np.concatenate([world.won[~np.isnan(world.p_true[k])] for k in ks]).astype(float)
    edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)))
    b = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
    frame = pd.DataFrame({"bin": b, "p": p, "y": y, "v": p * (1 - p)}).groupby("bin")
    table = frame.agg(rows=("p", "size"), mean_p=("p", "mean"), won=("y", "mean"), v=("v", "sum"))
    table["se"] = np.sqrt(table.pop("v")) / table["rows"]
    table["z"] = (table["won"] - table["mean_p"]) / table["se"].clip(lower=1e-9)
    return table.reset_index(drop=True)


def martingale(world: World, bins: int = 5) -> pd.DataFrame:
    """The truth's sharpest check: an exact p_true is a martingale, so next week's p_true (or the
    outcome, if the deal closed) minus this week's averages 0 in every band of this week's p_true.
    Rows: all deals open at some export but the last, then by band of p_true."""
    step, now = [], []
    for k in range(len(world.exports) - 1):
        o = ~np.isnan(world.p_true[k])
        later = np.where(np.isnan(world.p_true[k + 1]), world.won, world.p_true[k + 1])
        step.append(later[o] - world.p_true[k, o])
        now.append(world.p_true[k, o])
    d, p = np.concatenate(step), np.concatenate(now)
    band = np.minimum((p * bins).astype(int), bins - 1)
    rows = [("all", d)] + [
        (f"{b / bins:.1f}-{(b + 1) / bins:.1f}", d[band == b]) for b in range(bins)
    ]
    out = pd.DataFrame(
        [(name, len(x), x.mean(), x.std() / np.sqrt(len(x))) for name, x in rows if len(x) > 1],
        columns=["p_true", "rows", "mean_step", "se"],
    )
    out["z"] = out["mean_step"] / out["se"]
    return out


def trap(world: World) -> pd.DataFrame:
    """Per export: mean p_true of the open deals against the win rate of the deals closed so far."""
    rows = []
    for k, day in enumerate(world.exports):
        open_ = ~np.isnan(world.p_true[k])
        closed = world.close_day < day
        rate = world.won[closed].mean() if closed.any() else np.nan
        rows.append((day, open_.sum(), world.p_true[k, open_].mean(), rate))
    return pd.DataFrame(rows, columns=["day", "open", "open_mean_p", "closed_win_rate"])


def cli(
    name: str, config: Callable, generate: Callable, write: Callable, argv: Sequence[str] | None
) -> None:
    """`python -m dataset.worlds.<name> --out DIR --deals N --seed S [--weeks W]`."""
    parser = argparse.ArgumentParser(prog=f"python -m dataset.worlds.{name}", description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--deals", type=int, default=config().deals)
    parser.add_argument("--seed", type=int, default=config().seed)
    parser.add_argument("--weeks", type=int, default=config().weeks)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    world = generate(config(deals=args.deals, seed=args.seed, weeks=args.weeks))
    t1 = time.perf_counter()
    paths = write(world, args.out)
    t2 = time.perf_counter()
    print(f"{name}: {args.deals} deals, {len(world.exports)} exports: generated in {t1 - t0:.2f} s, "
          f"{len(paths)} files written to {args.out} in {t2 - t1:.2f} s")  # fmt: skip
    print("calibration: deciles of p_true of the deals open at every 12th export from the 10th")
    print(calibration(world).to_string(float_format=lambda v: f"{v:.3f}"))
    print("martingale: next week's p_true (or outcome) minus this week's, by band of p_true")
    print(martingale(world).to_string(index=False, float_format=lambda v: f"{v:.5f}"))
    t = trap(world).iloc[12:]
    print(f"open deals' mean p_true {t['open_mean_p'].mean():.3f} vs closed deals' win rate "
          f"{t['closed_win_rate'].mean():.3f} (mean over exports 13..{len(world.exports)})")  # fmt: skip


def date_text(origin: date, days: np.ndarray, style: str) -> np.ndarray:
    """Days from `origin` as text: "us" M/D/YYYY, "iso" YYYY-MM-DD; blank where the day is < 0."""
    days = np.asarray(days)
    uniq, inv = np.unique(np.maximum(days, 0), return_inverse=True)
    base = origin.toordinal()
    as_date = [date.fromordinal(base + int(u)) for u in uniq]
    text = [f"{d.month}/{d.day}/{d.year}" if style == "us" else d.isoformat() for d in as_date]
    return np.where(days < 0, "", np.array(text, dtype=str)[inv.reshape(days.shape)])
