"""The deal hygiene rules (pure): each fires exactly on the deals that break it, thresholds and
`off` are honoured, a rule whose data the CRM lacks fires on nothing, and every sentence is true
of the numbers it states (random deals, a seeded loop)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from dataset import database, deal_history
from dataset.demo import DemoConfig, write_demo
from dataset.ingest import ingest_files
from dataset.money import money
from scoring.features import features_at, prepare
from scoring.hygiene import (
    FLAG_COLUMNS,
    NOT_AVAILABLE,
    ON,
    RULE_NAMES,
    RULES,
    HygieneConfig,
    check,
    evaluate,
    stage_limits,
)

AS_OF = pd.Timestamp("2025-02-14")
LIMITS = pd.DataFrame({"stays": [40, 3], "days": [38.0, np.nan]}, index=["Negotiation", "Demo"])


def deal(**kw) -> dict:
    """A deal that breaks no rule, with `kw` changed (`close_in`: days to its expected close)."""
    close_in = kw.pop("close_in", 30)
    base = {
        "expected_close": AS_OF + pd.Timedelta(days=close_in) if close_in is not None else pd.NaT,
        "days_to_expected_close": float(close_in) if close_in is not None else np.nan,
        "has_next_step": 1.0,
        "days_since_activity": 2.0,
        "stage": "Negotiation",
        "days_in_stage": 5.0,
        "value_known": True,
        "value_used": 12_000.0,
        "value_source": "amount",
        "product": "Nimbus Pro",
        "close_pushes": 0.0,
    }
    return base | kw


def frame(deals: dict[str, dict]) -> pd.DataFrame:
    return pd.DataFrame.from_dict(deals, orient="index").rename_axis("deal_id")


def flagged(flags: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(flags["deal_id"], flags["rule"], strict=True))


# one deal just over each rule's line, one just under it, and one the rule cannot judge
DEALS = {
    "CLEAN": deal(),
    "PAST1": deal(close_in=-1),
    "CLOSES_TODAY": deal(close_in=0),
    "NO_CLOSE": deal(close_in=None),
    "NO_STEP": deal(has_next_step=0.0),
    "STEP_UNKNOWN": deal(has_next_step=np.nan),
    "QUIET14": deal(days_since_activity=14.0),
    "QUIET13": deal(days_since_activity=13.0),
    "QUIET_UNKNOWN": deal(days_since_activity=np.nan),
    "STAGE39": deal(days_in_stage=39.0),
    "STAGE38": deal(days_in_stage=38.0),
    "FEW_WON": deal(stage="Demo", days_in_stage=400.0),
    "NEW_STAGE": deal(stage="Legal", days_in_stage=400.0),
    "NO_STAGE": deal(stage=np.nan, days_in_stage=400.0),
    "NO_AMOUNT": deal(value_known=False, value_used=2900.0, value_source="list price"),
    "PUSHED2": deal(close_pushes=2.0),
    "PUSHED1": deal(close_pushes=1.0),
}
BREAKS = {
    ("PAST1", "close_date_passed"),
    ("NO_STEP", "no_next_step"),
    ("QUIET14", "no_activity"),
    ("STAGE39", "stage_too_long"),
    ("NO_AMOUNT", "amount_missing"),
    ("PUSHED2", "close_date_pushed"),
}


def test_each_rule_fires_exactly_on_the_deals_that_break_it():
    flags = check(frame(DEALS), AS_OF, HygieneConfig(), LIMITS)
    assert list(flags.columns) == FLAG_COLUMNS
    assert flagged(flags) == BREAKS
    by_rule = flags.set_index("rule")
    assert by_rule.loc["close_date_passed", "detail"] == (
        "expected close date 2025-02-13 passed 1 day ago"
    )
    assert by_rule.loc["no_next_step", "detail"] == "no next step recorded"
    assert by_rule.loc["no_activity", "detail"] == (
        "no activity for 14 days (the rule flags 14 days or more)"
    )
    assert by_rule.loc["stage_too_long", "detail"] == (
        "in Negotiation for 39 days; 90% of won deals left it within 38 days"
    )
    assert by_rule.loc["amount_missing", "detail"] == (
        f"no amount in the CRM; scored at {money(2900)}, the list price of Nimbus Pro"
    )
    assert by_rule.loc["close_date_pushed", "detail"] == (
        "close date pushed twice (the rule flags twice or more)"
    )
    values = dict(zip(flags["rule"], zip(flags["value"], flags["threshold"], strict=True), strict=True))  # fmt: skip
    assert values["close_date_passed"] == (1, 0) and values["stage_too_long"] == (39, 38)
    assert values["amount_missing"][0] == 2900 and np.isnan(values["no_next_step"][0])


def test_the_example_sentences_of_the_brief():
    deals = frame({
        "A": deal(expected_close=pd.Timestamp("2025-01-10"), days_to_expected_close=-35.0),
        "B": deal(days_in_stage=61.0),
        "C": deal(close_pushes=3.0),
    })  # fmt: skip
    details = set(check(deals, AS_OF, HygieneConfig(), LIMITS)["detail"])
    assert details == {
        "expected close date 2025-01-10 passed 35 days ago",
        "in Negotiation for 61 days; 90% of won deals left it within 38 days",
        "close date pushed 3 times (the rule flags twice or more)",
    }


def test_thresholds_are_honoured():
    config = HygieneConfig(close_date_grace_days=7, no_activity_days=30, close_pushes=3)
    deals = frame({
        "PAST7": deal(close_in=-7), "PAST8": deal(close_in=-8),
        "QUIET29": deal(days_since_activity=29.0), "QUIET30": deal(days_since_activity=30.0),
        "PUSHED2": deal(close_pushes=2.0), "PUSHED3": deal(close_pushes=3.0),
    })  # fmt: skip
    flags = check(deals, AS_OF, config, LIMITS)
    assert flagged(flags) == {("PAST8", "close_date_passed"), ("QUIET30", "no_activity"),
                              ("PUSHED3", "close_date_pushed")}  # fmt: skip
    assert set(flags["detail"]) == {
        "expected close date 2025-02-06 passed 8 days ago (grace: 7 days)",
        "no activity for 30 days (the rule flags 30 days or more)",
        "close date pushed 3 times (the rule flags 3 times or more)",
    }


def test_the_stage_percentile_is_honoured():
    stays = pd.DataFrame({"stage": ["Negotiation"] * 10, "days": [float(d) for d in range(1, 11)]})
    deals = frame({f"IN{n}": deal(days_in_stage=float(n)) for n in range(0, 12)})
    for percentile, first in ((90, 9), (50, 5), (100, 10), (95, 10), (10, 1)):
        limits = stage_limits(stays, percentile)
        flags = check(deals, AS_OF, HygieneConfig(stage_percentile=percentile), limits)
        assert set(flags["deal_id"]) == {f"IN{n}" for n in range(first + 1, 12)}, percentile
        assert flags["threshold"].eq(first).all()


def test_a_stage_with_too_few_won_stays_is_not_checked():
    stays = pd.DataFrame({"stage": ["Negotiation"] * 9, "days": [1.0] * 9})
    limits = stage_limits(stays, 90)
    assert limits.loc["Negotiation", "stays"] == 9 and np.isnan(limits.loc["Negotiation", "days"])
    assert check(frame({"SLOW": deal(days_in_stage=900.0)}), AS_OF, HygieneConfig(), limits).empty


def test_rules_switched_off_do_not_fire():
    for rule in RULE_NAMES:
        flags = check(frame(DEALS), AS_OF, HygieneConfig(off=frozenset({rule})), LIMITS)
        assert flagged(flags) == {b for b in BREAKS if b[1] != rule}, rule
    everything = HygieneConfig(off=frozenset(RULE_NAMES))
    none = check(frame(DEALS), AS_OF, everything, LIMITS)
    assert none.empty and list(none.columns) == FLAG_COLUMNS


def test_rules_the_crm_cannot_judge_do_not_fire():
    missing = {"no_next_step": "its exports have no next-step column",
               "no_activity": "its exports have no last-activity date"}  # fmt: skip
    flags = check(frame(DEALS), AS_OF, HygieneConfig(), LIMITS, missing)
    assert flagged(flags) == {b for b in BREAKS if b[1] not in missing}


def test_every_rule_is_described_with_its_default():
    config = HygieneConfig()
    assert [r.name for r in RULES] == list(RULE_NAMES)
    assert {r.name: r.default for r in RULES if r.setting} == {
        "close_date_passed": 0, "no_activity": 14, "stage_too_long": 90, "close_date_pushed": 2,
    }  # fmt: skip
    assert config.threshold("no_next_step") is None and config.threshold("no_activity") == 14
    assert RULES[0].describe(0) == "expected close date before the run's day"
    assert RULES[0].describe(3) == "expected close date more than 3 days before the run's day"


# --- real CRM data: what a CRM lacks is "not available", never a flag on every deal ------------


@pytest.fixture(scope="module")
def one_export(tmp_path_factory):
    """A small demo CRM as one export (no history of exports): last activity, close dates and
    amounts, but no next step, no stage history, no push can be seen."""
    folder = tmp_path_factory.mktemp("one-export")
    write_demo(folder / "crm", DemoConfig(deals=400, daily_exports=0, weekly_exports=False))
    db = database.connect(folder / "one.db")
    ingest_files(db, [folder / "crm"])
    crm = prepare(deal_history.load_crm(db))
    db.close()
    return crm


def test_a_single_export_says_which_rules_it_cannot_judge(one_export):
    crm = one_export
    features = features_at(crm, crm.data_end)
    found = evaluate(crm, features, crm.data_end, HygieneConfig())
    states = found.rules.set_index("rule")
    assert states.loc["no_next_step", "state"] == NOT_AVAILABLE
    assert states.loc["no_next_step", "note"] == "its exports have no next-step column"
    assert states.loc["close_date_pushed", "state"] == NOT_AVAILABLE
    assert states.loc["stage_too_long", "state"] == NOT_AVAILABLE
    assert states.loc["no_activity", "state"] == ON and states.loc["close_date_passed", "state"] == ON  # fmt: skip
    assert set(found.flags["rule"]) <= {"no_activity", "close_date_passed", "amount_missing"}
    counts = found.flags["rule"].value_counts()
    assert (states["flagged"] == counts.reindex(states.index).fillna(0)).all()


def test_maventech_has_none_of_the_data(maventech, tmp_path):
    """MavenTech's open deals have no close date, no amount, no activity, no next step, and it is
    one export: every rule is not available, none fires on every deal."""
    db = database.connect(tmp_path / "m.db")
    ingest_files(db, [maventech])
    crm = prepare(deal_history.load_crm(db))
    features = features_at(crm, crm.data_end)
    found = evaluate(crm, features, crm.data_end, HygieneConfig())
    assert found.flags.empty and len(features) > 1000
    assert found.rules["state"].eq(NOT_AVAILABLE).all(), found.rules
    assert found.rules.set_index("rule").loc["amount_missing", "note"] == (
        "no open deal has an amount"
    )


# --- property: every sentence is true of its numbers --------------------------------------------

WORDS = {"once": 1, "twice": 2}
PATTERNS = {
    "close_date_passed": re.compile(
        r"expected close date (\d{4}-\d\d-\d\d) passed ([\d,]+) days? ago(?: \(grace: ([\d,]+) days?\))?"  # noqa: E501
    ),
    "no_next_step": re.compile(r"no next step recorded"),
    "no_activity": re.compile(
        r"no activity for ([\d,]+) days? \(the rule flags ([\d,]+) days? or more\)"
    ),
    "stage_too_long": re.compile(
        r"in (.+) for ([\d,]+) days?; ([\d.]+)% of won deals left it "
        r"(?:within ([\d,]+) days?|the same day)"
    ),
    "amount_missing": re.compile(
        r"no amount in the CRM; scored at (\S+), "
        r"(?:the list price of (.+)|the product's list price|a median of open deals' amounts)"
        r"|no amount in the CRM, and none to estimate it from"
    ),
    "close_date_pushed": re.compile(
        r"close date pushed (once|twice|[\d,]+ times) \(the rule flags (once|twice|[\d,]+ times) "
        r"or more\)"
    ),
}


def _n(text: str) -> int:
    return int(text.replace(",", ""))


def _times(text: str) -> int:
    return WORDS.get(text) or _n(text.split()[0])


def random_case(rng: np.random.Generator):
    """Random deals, won stays and thresholds: whole days as the features count them, gaps
    (NaN) where a CRM says nothing, stages with many and with few won stays."""
    n = int(rng.integers(1, 150))
    as_of = pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(rng.integers(0, 700)))
    stages = np.array(["Discovery", "Demo", "Negotiation", "Legal & Review"])

    def gaps(x, share=0.15):
        x = np.asarray(x, dtype=float)
        return np.where(rng.random(len(x)) < share, np.nan, x)

    close_in = gaps(rng.integers(-200, 200, n))
    source = rng.choice(["list price", "median"], n)
    known = rng.random(n) < 0.7
    deals = pd.DataFrame(
        {
            "expected_close": as_of + pd.to_timedelta(close_in, unit="D"),
            "days_to_expected_close": close_in,
            "has_next_step": gaps(rng.integers(0, 2, n)),
            "days_since_activity": gaps(rng.integers(0, 120, n)),
            "stage": np.where(rng.random(n) < 0.1, None, rng.choice(stages, n)),
            "days_in_stage": gaps(rng.integers(0, 300, n)),
            "value_known": known,
            "value_used": gaps(rng.gamma(2.0, 20_000, n), 0.05),
            "value_source": np.where(known, "amount", source),
            "product": np.where(rng.random(n) < 0.2, None, rng.choice(["Nimbus Pro", "GTX"], n)),
            "close_pushes": gaps(rng.integers(0, 6, n)),
        },
        index=pd.Index([f"D{i:04d}" for i in range(n)], name="deal_id"),
    )
    stays = pd.DataFrame(
        {"stage": rng.choice(stages[:3], int(rng.integers(0, 80))), "days": 0.0}
    )  # Legal & Review: never a won stay
    stays["days"] = rng.integers(0, 150, len(stays)).astype(float)
    config = HygieneConfig(
        close_date_grace_days=int(rng.integers(0, 15)),
        no_activity_days=int(rng.integers(1, 60)),
        stage_percentile=float(rng.choice([50, 75, 90, 92.5, 99, 100])),
        close_pushes=int(rng.integers(1, 5)),
        off=frozenset(r for r in RULE_NAMES if rng.random() < 0.15),
    )
    return deals, stays, as_of, config


def breaks(rule: str, d: dict, config: HygieneConfig, limits: dict) -> bool:
    """The rule, written again from its definition (`limits`: stage -> days)."""
    if rule == "close_date_passed":
        return d["days_to_expected_close"] < -config.close_date_grace_days
    if rule == "no_next_step":
        return d["has_next_step"] == 0
    if rule == "no_activity":
        return d["days_since_activity"] >= config.no_activity_days
    if rule == "stage_too_long":
        return d["days_in_stage"] > limits.get(d["stage"], np.nan)
    if rule == "amount_missing":
        return not d["value_known"]
    return d["close_pushes"] >= config.close_pushes


def check_sentence(flag, d, as_of, config, stays) -> None:
    """The flag's sentence states the deal's numbers, and its comparison holds for them."""
    m = PATTERNS[flag.rule].fullmatch(flag.detail)
    assert m, flag.detail
    if flag.rule == "close_date_passed":
        day, n, grace = pd.Timestamp(m[1]), _n(m[2]), _n(m[3]) if m[3] else 0
        assert day == d["expected_close"] and (as_of - day).days == n == flag.value
        assert grace == config.close_date_grace_days and n > grace
    elif flag.rule == "no_next_step":
        assert d["has_next_step"] == 0
    elif flag.rule == "no_activity":
        n, limit = _n(m[1]), _n(m[2])
        assert n == d["days_since_activity"] == flag.value and limit == config.no_activity_days
        assert n >= limit
    elif flag.rule == "stage_too_long":
        stage, n, share = m[1], _n(m[2]), float(m[3])
        within = _n(m[4]) if m[4] else 0
        assert stage == d["stage"] and n == d["days_in_stage"] == flag.value
        assert share == config.stage_percentile and n > within == flag.threshold
        won = stays.loc[stays["stage"] == stage, "days"]
        assert len(won) >= 10, "a stage with fewer than 10 won stays is not checked"
        assert (won <= within).mean() >= share / 100  # "P% of won deals left it within L days"
    elif flag.rule == "amount_missing":
        assert not d["value_known"]
        if m[1] is None:
            assert np.isnan(d["value_used"]) and np.isnan(flag.value)
        else:
            assert m[1] == money(d["value_used"]) and flag.value == d["value_used"]
        if m[2] is not None:
            assert m[2] == d["product"] and d["value_source"] == "list price"
        elif "median" in flag.detail:
            assert d["value_source"] == "median"
    else:
        n, limit = _times(m[1]), _times(m[2])
        assert n == d["close_pushes"] == flag.value and limit == config.close_pushes
        assert n >= limit


def test_every_sentence_is_true_of_its_numbers():
    rng = np.random.default_rng(20250214)
    seen = set()
    for _ in range(120):
        deals, stays, as_of, config = random_case(rng)
        limits = stage_limits(stays, config.stage_percentile)
        flags = check(deals, as_of, config, limits)
        rows = deals.to_dict("index")
        for flag in flags.itertuples(index=False):
            check_sentence(flag, rows[flag.deal_id], as_of, config, stays)
            seen.add(flag.rule)
        # and the rules fire on exactly the deals that break them
        by_stage = limits["days"].to_dict()
        expected = {
            (i, rule)
            for i, d in rows.items()
            for rule in RULE_NAMES
            if rule not in config.off and breaks(rule, d, config, by_stage)
        }
        assert flagged(flags) == expected
    assert seen == set(RULE_NAMES)
