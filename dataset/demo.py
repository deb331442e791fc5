"""Deterministic demo CRM: a pipeline in the MavenTech shape plus the exports a CRM would give.

Why: a fresh clone must run with no download, and the models must be shown to learn where there is
something to learn (the MavenTech outcomes carry almost no signal). Same seed, same files.

What is written (MavenTech columns, plus `last_activity`, which Salesforce and HubSpot exports have):
- accounts.csv, products.csv, sales_teams.csv: reference tables;
- sales_pipeline.csv: every deal as of the last day (`end`);
- exports/pipeline_YYYY-MM-DD.csv: earlier snapshots, weekly (Mondays) over the whole span and
  daily for the last days, so deal history exists (stage changes, close-date pushes, activity);
- truth/deals.csv: what the generator knows and a model must not see: each deal's true win
  probability, its cause of risk and its outcome (closed or not yet);
- truth/probabilities.csv: the best win probability a model could reach for each deal open on
  each export day (`true_probability`), for `revbot train --truth`.

How a deal lives (all vectorised over deals):
- created on a day of the span, prospects 0-20 days (stage Prospecting, no engage date), then is
  Engaging from its engage date until it closes (Won or Lost) on its close date;
- its planned cycle grows with the product's price: bigger deals take longer (median 21 days for
  the cheapest product, about 95 for the dearest); the expected close date (shown for open deals,
  as Salesforce's Close Date) is engage date + planned cycle, plus any pushes;
- a worked deal logs activity every 1-3 days from its creation;
- cause of risk, drawn at creation: none (66%), *stagnation* (18%: no activity after the day it
  was created; it drags on 20-60 days past its planned close) or *pushed* (16%: the expected close
  date is pushed 1-3 times by 14-35 days, the first push the day after the deal first appears in
  an export, so that the next export shows it);
- outcome: Won with probability sigmoid(0.6 + rep skill + product + sector + cause), cause = 0,
  -2.0 (stagnation) or -1.3 (pushed): stagnation and pushes hurt, reps and products differ.
- the cause shows in the exports early (a stall after 4 days without activity, a push at the
  deal's second export), and `true_probability` gives the best probability a model could reach
  on a given day from what the exports showed by then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from dataset.demo_config import DemoConfig

REGIONS = {"Central": ("Dana Whitfield", "Omar Castillo"), "East": ("Grace Okafor", "Ivan Petrov"),
           "West": ("Mei Tanaka", "Lucas Moreau")}  # fmt: skip
FIRST = ("Ava", "Ben", "Chloe", "Diego", "Elena", "Farid", "Gwen", "Hugo", "Iris", "Jonas",
         "Kira", "Liam", "Maya", "Nikhil", "Olga", "Pablo", "Quinn", "Rosa", "Sami", "Tess",
         "Umar", "Vera", "Wes", "Xena", "Yusuf", "Zoe", "Arjun", "Bea", "Cole", "Dina")  # fmt: skip
LAST = ("Alder", "Brandt", "Cruz", "Dahl", "Ekwueme", "Fischer", "Gallo", "Horvat", "Ishikawa",
        "Jensen", "Kowal", "Lindqvist", "Mensah", "Novak", "Ortiz", "Pereira", "Quist", "Rahman",
        "Silva", "Thorne", "Ueda", "Varga", "Weiss", "Xu", "Yilmaz", "Zeller", "Abbott", "Bishop",
        "Carver", "Dunn")  # fmt: skip
# name, series, list price, effect on win odds (logit)
PRODUCTS = (
    ("Nimbus Starter", "Nimbus", 480.0, 0.35),
    ("Nimbus Pro", "Nimbus", 2900.0, 0.15),
    ("Stratus Team", "Stratus", 1250.0, 0.25),
    ("Stratus Enterprise", "Stratus", 8600.0, -0.25),
    ("Cumulus Core", "Cumulus", 19500.0, -0.35),
    ("Cumulus Suite", "Cumulus", 42000.0, -0.5),
)
PRODUCT_WEIGHTS = (0.26, 0.2, 0.22, 0.14, 0.11, 0.07)
SECTORS = {"technology": 0.1, "medical": 0.0, "retail": -0.15, "software": 0.15, "finance": -0.05,
           "telecommunications": -0.1, "marketing": 0.05, "entertainment": 0.0,
           "employment": -0.05, "services": 0.0}  # fmt: skip
OFFICES = ("United States", "United States", "United States", "Germany", "Japan", "Brazil",
           "Kenya", "Canada", "Norway", "India")  # fmt: skip
SYLLABLES = ("ac", "bel", "cor", "dex", "en", "fin", "gal", "hex", "ion", "jet", "kin", "lum",
             "mar", "nov", "opt", "pax", "quo", "ral", "sol", "tri", "umb", "vex", "wyn", "zen")  # fmt: skip
SUFFIXES = ("tech", "soft", "labs", "works", "corp", "ware", "ify", "net", "data", "co")

CAUSES = np.array(["none", "stagnation", "pushed"])
CAUSE_SHARES = (0.66, 0.18, 0.16)
CAUSE_EFFECTS = (0.0, -2.0, -1.3)  # on the win odds (logit)
STALL_VISIBLE_AFTER = 4  # days: healthy deals log activity at least every 3 days
MAX_PUSHES = 3


@dataclass
class DemoWorld:
    """Everything generated, as arrays over deals (days are integers from `start`)."""

    config: DemoConfig
    accounts: pd.DataFrame
    products: pd.DataFrame
    teams: pd.DataFrame
    deal_id: np.ndarray
    owner: np.ndarray
    product: np.ndarray
    account: np.ndarray
    sector: np.ndarray
    created: np.ndarray
    engage: np.ndarray
    close: np.ndarray
    planned_close: np.ndarray
    push_day: np.ndarray  # (deals, MAX_PUSHES), a large number where no push
    push_days_added: np.ndarray  # (deals, MAX_PUSHES)
    activity_gap: np.ndarray
    activity_stop: np.ndarray  # last day with activity (close, or the stall day)
    value: np.ndarray
    cause: np.ndarray
    p_win: np.ndarray
    p_cause: np.ndarray  # (deals, 3): win probability had the cause been none/stagnation/pushed
    stall_seen_from: np.ndarray  # day from which a stall shows in the exports
    push_seen_from: np.ndarray  # day from which a first push shows in the exports
    won: np.ndarray


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _reference(cfg: DemoConfig, rng: np.random.Generator) -> tuple[pd.DataFrame, ...]:
    reps, managers, regions = [], [], []
    k = 0
    for region, mgrs in REGIONS.items():
        for manager in mgrs:
            for _ in range(5):
                reps.append(f"{FIRST[k % len(FIRST)]} {LAST[(k * 7) % len(LAST)]}")
                managers.append(manager)
                regions.append(region)
                k += 1
    teams = pd.DataFrame({"sales_agent": reps, "manager": managers, "regional_office": regions})
    products = pd.DataFrame(
        {
            "product": [p[0] for p in PRODUCTS],
            "series": [p[1] for p in PRODUCTS],
            "sales_price": [p[2] for p in PRODUCTS],
        }
    )
    names: list[str] = []
    while len(names) < cfg.accounts:
        a, b = rng.choice(SYLLABLES, 2)
        name = (a + b).capitalize() + rng.choice(SUFFIXES)
        if name not in names:
            names.append(name)
    sector = rng.choice(list(SECTORS), cfg.accounts)
    employees = np.round(np.exp(rng.normal(7.0, 1.3, cfg.accounts))).astype(int) + 10
    accounts = pd.DataFrame(
        {
            "account": names,
            "sector": sector,
            "year_established": rng.integers(1975, 2019, cfg.accounts),
            "revenue": np.round(employees * rng.uniform(0.15, 0.45, cfg.accounts), 2),
            "employees": employees,
            "office_location": rng.choice(OFFICES, cfg.accounts),
            "subsidiary_of": "",
        }
    )
    parents = rng.random(cfg.accounts) < 0.12
    accounts.loc[parents, "subsidiary_of"] = rng.choice(names[:20], int(parents.sum()))
    accounts.loc[accounts["subsidiary_of"] == accounts["account"], "subsidiary_of"] = ""
    return accounts, products, teams


def _all_export_days(cfg: DemoConfig) -> np.ndarray:
    return np.array([*export_days(cfg), (cfg.end - cfg.start).days])


def generate(cfg: DemoConfig = DemoConfig()) -> DemoWorld:
    """Draw the whole world from `cfg.seed`: same config, same world."""
    rng = np.random.default_rng(cfg.seed)
    accounts, products, teams = _reference(cfg, rng)
    n = cfg.deals
    span = (cfg.end - cfg.start).days + 1
    exports = _all_export_days(cfg)
    rep_skill = rng.normal(0.0, 0.4, len(teams))
    rep_share = rng.dirichlet(np.full(len(teams), 6.0))
    rep = rng.choice(len(teams), n, p=rep_share)
    prod = rng.choice(len(PRODUCTS), n, p=PRODUCT_WEIGHTS)
    acct = rng.integers(0, len(accounts), n)
    sector = accounts["sector"].to_numpy()[acct]

    created = rng.integers(-30, span, n)
    engage = created + rng.integers(0, 21, n)
    price = np.array([p[2] for p in PRODUCTS])[prod]
    median_cycle = 21.0 * (price / 480.0) ** 0.34
    planned = np.maximum(5, np.round(median_cycle * np.exp(rng.normal(0, 0.3, n)))).astype(int)
    planned_close = engage + planned

    cause_idx = rng.choice(3, n, p=CAUSE_SHARES)
    stalled = cause_idx == 1
    pushed = cause_idx == 2
    # the first push comes the day after the deal's first export, so that exports show it
    first_seen = exports[np.minimum(np.searchsorted(exports, created), len(exports) - 1)]
    n_push = np.where(pushed, np.minimum(MAX_PUSHES, 1 + rng.poisson(0.6, n)), 0)
    gaps = rng.integers(7, 21, (n, MAX_PUSHES))
    gaps[:, 0] = np.maximum(first_seen, created) + 1 - engage
    push_day = engage[:, None] + np.cumsum(gaps, axis=1)
    has_push = np.arange(MAX_PUSHES)[None, :] < n_push[:, None]
    push_day = np.where(has_push, push_day, np.iinfo(np.int32).max)
    push_added = np.where(has_push, rng.integers(14, 36, (n, MAX_PUSHES)), 0)
    final_expected = planned_close + push_added.sum(axis=1)
    last_push = np.where(has_push, push_day, -1).max(axis=1)
    close = final_expected + np.round(rng.normal(0, 3, n)).astype(int)
    close = np.where(stalled, planned_close + rng.integers(20, 61, n), close)
    close = np.maximum.reduce([close, engage + 2, last_push + 2])

    activity_stop = np.where(stalled, created, close)
    activity_gap = rng.integers(1, 4, n)

    base_logit = (
        0.6
        + rep_skill[rep]
        + np.array([p[3] for p in PRODUCTS])[prod]
        + np.array([SECTORS[s] for s in sector])
    )
    p_cause = _sigmoid(base_logit[:, None] + np.array(CAUSE_EFFECTS)[None, :])
    p_win = p_cause[np.arange(n), cause_idx]
    won = rng.random(n) < p_win
    value = np.round(price * rng.normal(1.0, 0.08, n))
    push_seen_from = exports[
        np.minimum(np.searchsorted(exports, np.maximum(first_seen, created) + 1), len(exports) - 1)
    ]

    return DemoWorld(
        config=cfg,
        accounts=accounts,
        products=products,
        teams=teams,
        deal_id=np.array([f"D{cfg.seed % 100:02d}{i:07d}" for i in range(n)]),
        owner=teams["sales_agent"].to_numpy()[rep],
        product=products["product"].to_numpy()[prod],
        account=accounts["account"].to_numpy()[acct],
        sector=sector,
        created=created,
        engage=engage,
        close=close,
        planned_close=planned_close,
        push_day=push_day,
        push_days_added=push_added,
        activity_gap=activity_gap,
        activity_stop=activity_stop,
        value=value,
        cause=CAUSES[cause_idx],
        p_win=p_win,
        p_cause=p_cause,
        stall_seen_from=created + STALL_VISIBLE_AFTER,
        push_seen_from=push_seen_from,
        won=won,
    )


def true_probability(world: DemoWorld, day: int) -> pd.Series:
    """The Bayes-optimal win probability of each deal open on `day` given what the exports show
    by then: a cause already visible counts fully; before that, the causes still possible are
    weighed by their prior shares. This is what a perfect model could reach."""
    live = (world.created <= day) & (world.close > day)
    stall_seen = day >= world.stall_seen_from
    push_seen = day >= world.push_seen_from
    cause = world.cause
    possible = (
        np.column_stack([np.ones_like(live), ~stall_seen, ~push_seen])
        * np.array(CAUSE_SHARES)[None, :]
    )
    mixed = (possible * world.p_cause).sum(axis=1) / possible.sum(axis=1)
    known = ((cause == "stagnation") & stall_seen) | ((cause == "pushed") & push_seen)
    p = np.where(known, world.p_win, mixed)
    return pd.Series(p[live], index=world.deal_id[live], name="p_true")


def _dates(cfg: DemoConfig, days: np.ndarray) -> np.ndarray:
    return np.datetime64(cfg.start, "D") + days.astype("timedelta64[D]")


def snapshot(world: DemoWorld, day: int) -> pd.DataFrame:
    """The CRM export as it would have looked on `day` (days from start): deals created by then."""
    cfg = world.config
    live = world.created <= day
    idx = np.flatnonzero(live)
    engage, close = world.engage[idx], world.close[idx]
    prospecting = day < engage
    closed = close <= day
    stage = np.where(prospecting, "Prospecting", "Engaging").astype(object)
    stage[closed] = np.where(world.won[idx][closed], "Won", "Lost")
    pushes_so_far = (world.push_day[idx] <= day) * world.push_days_added[idx]
    expected = world.planned_close[idx] + pushes_so_far.sum(axis=1)
    close_day = np.where(closed, close, expected)
    gap = world.activity_gap[idx]
    created = world.created[idx]
    worked_until = np.minimum(day, world.activity_stop[idx])
    last_activity = created + ((worked_until - created) // gap) * gap
    engage_s = pd.Series(_dates(cfg, engage)).dt.strftime("%Y-%m-%d").to_numpy()
    close_s = pd.Series(_dates(cfg, close_day)).dt.strftime("%Y-%m-%d").to_numpy()
    frame = pd.DataFrame(
        {
            "opportunity_id": world.deal_id[idx],
            "sales_agent": world.owner[idx],
            "product": world.product[idx],
            "account": world.account[idx],
            "deal_stage": stage,
            "engage_date": np.where(prospecting, "", engage_s),
            "close_date": close_s,
            "close_value": world.value[idx].astype(np.int64),
            "last_activity": pd.Series(_dates(cfg, last_activity)).dt.strftime("%Y-%m-%d"),
        }
    )
    return frame


def export_days(cfg: DemoConfig) -> list[int]:
    """Days (from start) of the earlier exports: Mondays over the span, then the last days daily."""
    last = (cfg.end - cfg.start).days
    days: set[int] = set()
    if cfg.weekly_exports:
        first_monday = (7 - cfg.start.weekday()) % 7
        days.update(range(first_monday + 28, last, 7))
    days.update(range(max(0, last - cfg.daily_exports), last))
    return sorted(days)


def truth(world: DemoWorld) -> pd.DataFrame:
    """What the generator knows: true win probability, cause of risk, outcome where closed."""
    last = (world.config.end - world.config.start).days
    closed = world.close <= last
    return pd.DataFrame(
        {
            "deal_id": world.deal_id,
            "p_win": np.round(world.p_win, 6),
            "cause": world.cause,
            "pushes": (world.push_days_added > 0).sum(axis=1),
            "outcome": np.where(closed, np.where(world.won, "won", "lost"), ""),
        }
    )


def write_demo(out: Path, cfg: DemoConfig = DemoConfig()) -> dict[str, int]:
    """Write the demo CRM files under `out`; returns row counts by file."""
    world = generate(cfg)
    out = Path(out)
    (out / "exports").mkdir(parents=True, exist_ok=True)
    (out / "truth").mkdir(exist_ok=True)
    counts = {}
    for name, frame in (
        ("accounts.csv", world.accounts),
        ("products.csv", world.products),
        ("sales_teams.csv", world.teams),
        ("truth/deals.csv", truth(world)),
    ):
        frame.to_csv(out / name, index=False)
        counts[name] = len(frame)
    last = (cfg.end - cfg.start).days
    final = snapshot(world, last)
    final.to_csv(out / "sales_pipeline.csv", index=False)
    counts["sales_pipeline.csv"] = len(final)
    truths = []
    for day in [*export_days(cfg), last]:
        stamp = (cfg.start + timedelta(days=day)).isoformat()
        p = true_probability(world, day)
        truths.append(pd.DataFrame({"export_day": stamp, "deal_id": p.index, "p_true": p.round(6)}))
        if day == last:
            break
        frame = snapshot(world, day)
        frame.to_csv(out / "exports" / f"pipeline_{stamp}.csv", index=False)
        counts[f"exports/pipeline_{stamp}.csv"] = len(frame)
    probabilities = pd.concat(truths, ignore_index=True)
    probabilities.to_csv(out / "truth" / "probabilities.csv", index=False)
    counts["truth/probabilities.csv"] = len(probabilities)
    return counts
