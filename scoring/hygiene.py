"""Deal hygiene: the rules a deal's owner should keep in the CRM, each with its own threshold and
each able to be switched off (revbot.toml `[hygiene]`), and which open deals break them.

Pure. Why apart from the risk score: a broken rule is a plain statement about one deal that its
owner can fix today ("expected close date 2025-01-10 passed 24 days ago"), not the model's
opinion; later work nudges owners and lists them. The writer evaluates the rules on the run's
deals right after scoring (`evaluate`) and saves what it found with the run; readers only read.

Each rule reads what `scoring.features` built as of the run's day, never the clock:
- close_date_passed: `days_to_expected_close` below minus the grace (default 0: any day past);
- no_next_step: `has_next_step` is 0; only where the CRM exports a next-step column;
- no_activity: `days_since_activity` at or over N days (default 14); only where the CRM exports
  last-activity dates (a deal with no activity at all counts from its engage date, as the
  features do);
- stage_too_long: `days_in_stage` over the days within which P% (default 90) of the deals won
  before the run's day left that stage (`rates.won_stage_stays`). The limit is an observed stay,
  not an interpolation, so "90% of won deals left it within 38 days" is true as written. A stage
  with fewer than `MIN_STAGE_SPELLS` (10) such stays is not checked, and the run says so: a
  percentile of a handful of deals would flag at random;
- amount_missing: `value_known` is false (the value scored is the list price or a median);
- close_date_pushed: `close_pushes` at or over N (default 2): pushes seen between exports, or the
  CRM's own push count where larger.

A rule whose data the CRM lacks fires on no deal and is saved as "not available", with the
reason, rather than firing on every deal: no next-step or last-activity column; no open deal with
an expected close date or an amount (MavenTech fills both in at close); a single export and no
push count; no stage with enough won stays. Every sentence states the numbers it compares, and the
comparison is true of them (`tests/scoring/test_hygiene.py` checks on random deals).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from fractions import Fraction

import numpy as np
import pandas as pd

from dataset.money import money, plural, times
from scoring.crm import Crm
from scoring.rates import MIN_STAGE_SPELLS, won_stage_stays

FLAG_COLUMNS = ["deal_id", "rule", "detail", "value", "threshold"]
RULE_COLUMNS = ["rule", "state", "threshold", "flagged", "note"]
ON, OFF, NOT_AVAILABLE = "on", "off", "not available"


@dataclass(frozen=True)
class HygieneConfig:
    """The rules' thresholds and the rules switched off ([hygiene] in revbot.toml)."""

    close_date_grace_days: int = 0  # flag an expected close date more than this many days past
    no_activity_days: int = 14  # flag this many days or more without activity
    stage_percentile: float = 90  # flag a stay longer than this share of won deals' stays
    close_pushes: int = 2  # flag a close date pushed this many times or more
    off: frozenset[str] = frozenset()  # rules switched off

    def threshold(self, rule: str) -> float | None:
        """The configured threshold of a rule (None for a rule without one)."""
        setting = RULE_BY_NAME[rule].setting
        return None if setting is None else float(getattr(self, setting))

    @classmethod
    def settings(cls) -> tuple[str, ...]:
        """The keys of `[hygiene]`."""
        return tuple(f.name for f in fields(cls))


@dataclass(frozen=True)
class Rule:
    """One rule as a person reads it: its name, its `[hygiene]` setting, what it flags and what
    it needs from the CRM's data."""

    name: str
    setting: str | None  # the [hygiene] key of its threshold (None: it has none)
    flags: str  # what breaks it: `{t}` the threshold, `{days}` / `{times}` it counted in words
    needs: str  # what it needs from the CRM

    @property
    def default(self) -> float | None:
        return None if self.setting is None else getattr(HygieneConfig(), self.setting)

    def describe(self, threshold: float | None) -> str:
        """What it flags, with its threshold: "no activity for 14 days or more"."""
        if threshold is None:
            return self.flags
        if self.name == "close_date_passed" and threshold == 0:
            return "expected close date before the run's day"
        return self.flags.format(t=f"{threshold:g}", days=plural(int(threshold), "day"),
                                 times=times(int(threshold)))  # fmt: skip


RULES: tuple[Rule, ...] = (
    Rule("close_date_passed", "close_date_grace_days",
         "expected close date more than {days} before the run's day",
         "an expected close date (Close Date) on open deals"),
    Rule("no_next_step", None, "no next step recorded", "a next-step column in the export"),
    Rule("no_activity", "no_activity_days", "no activity for {days} or more",
         "a last-activity date column in the export"),
    Rule("stage_too_long", "stage_percentile",
         "in its stage longer than {t}% of won deals stayed there",
         f"exports over time: at least {MIN_STAGE_SPELLS} won deals' stays seen in a stage"),
    Rule("amount_missing", None, "no amount (the value scored is an estimate)",
         "amounts on open deals"),
    Rule("close_date_pushed", "close_pushes", "close date pushed {times} or more",
         "more than one export over time, or a push-count column"),
)  # fmt: skip
RULE_BY_NAME = {r.name: r for r in RULES}
RULE_NAMES = tuple(RULE_BY_NAME)


@dataclass(frozen=True)
class Hygiene:
    """What a run found: the broken rules (`FLAG_COLUMNS`, one row per deal and rule) and each
    rule's state (`RULE_COLUMNS`: on, off or not available, its threshold, how many deals it
    flagged and a note saying what it could not check)."""

    flags: pd.DataFrame
    rules: pd.DataFrame


def stage_limits(stays: pd.DataFrame, percentile: float, min_stays: int = MIN_STAGE_SPELLS) -> pd.DataFrame:  # fmt: skip
    """By stage: how many won stays (`stays`) and the fewest days within which `percentile`% of
    them ended (`days`; NaN where fewer than `min_stays`): an observed stay, not an
    interpolation, so that "90% of won deals left it within 38 days" is true as written."""
    g = stays["days"].groupby(stays["stage"])
    out = pd.DataFrame({"stays": g.size()})
    out["days"] = g.agg(lambda days: _within(days.to_numpy(), percentile)).astype(float)
    out.loc[out["stays"] < min_stays, "days"] = np.nan
    return out


def _within(days: np.ndarray, percentile: float) -> float:
    """The smallest of `days` that at least `percentile`% of them are at or under (counted
    exactly: 90% of 10 stays is 9 of them, not 9.000000000000002)."""
    rank = math.ceil(Fraction(percentile) * len(days) / 100)
    return float(np.sort(days)[max(rank, 1) - 1])


def unavailable(crm: Crm, features: pd.DataFrame, as_of: pd.Timestamp, limits: pd.DataFrame) -> dict[str, str]:  # fmt: skip
    """The rules the CRM's data cannot break, and why: a rule that cannot tell must not fire on
    every deal."""
    out = {}
    if not crm.has("next_step"):
        out["no_next_step"] = "its exports have no next-step column"
    if not crm.has("last_activity"):
        out["no_activity"] = "its exports have no last-activity date"
    if len(features) and features["expected_close"].isna().all():
        out["close_date_passed"] = "no open deal has an expected close date"
    if len(features) and not features["value_known"].astype(bool).any():
        out["amount_missing"] = "no open deal has an amount"
    exports = crm.history.loc[crm.history["as_of"] <= as_of, "as_of"].nunique()
    if exports < 2 and not crm.has("push_count"):
        out["close_date_pushed"] = "one export and no push count: a push cannot be seen"
    if limits["days"].isna().all():
        out["stage_too_long"] = (
            f"no stage has {MIN_STAGE_SPELLS} won deals' stays in it before "
            f"{as_of.date().isoformat()}"
        )
    return out


def evaluate(crm: Crm, features: pd.DataFrame, as_of, config: HygieneConfig) -> Hygiene:
    """The rules on a run's deals (`features`: `scoring.features.features_at` on `as_of`)."""
    as_of = pd.Timestamp(as_of)
    limits = stage_limits(won_stage_stays(crm, as_of), config.stage_percentile)
    missing = unavailable(crm, features, as_of, limits)
    flags = check(features, as_of, config, limits, missing)
    return Hygiene(flags, rule_states(config, missing, flags, limits, features))


def summary(found: Hygiene) -> str:
    """For the person waiting on a refresh: deals flagged per rule, and the rules not checked
    ("close_date_passed 42, no_activity 65; not available in this CRM's data: no_next_step")."""
    r = found.rules
    on = r[r["state"] == ON]
    text = ", ".join(f"{rule} {n:,}" for rule, n in zip(on["rule"], on["flagged"], strict=True))
    text = text or "no rule on"
    for state, words in ((NOT_AVAILABLE, "not available in this CRM's data"), (OFF, "off")):
        names = r.loc[r["state"] == state, "rule"].tolist()
        if names:
            text += f"; {words}: {', '.join(names)}"
    return text


def rule_states(config: HygieneConfig, missing: dict[str, str], flags: pd.DataFrame,
                limits: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:  # fmt: skip
    """Each rule's row of `RULE_COLUMNS` for the run."""
    counts = flags["rule"].value_counts()
    rows = []
    for rule in RULES:
        state = OFF if rule.name in config.off else NOT_AVAILABLE if rule.name in missing else ON
        note = missing.get(rule.name)
        if rule.name == "stage_too_long" and state == ON:
            note = _skipped_stages(limits, features)
        rows.append((rule.name, state, config.threshold(rule.name),
                     int(counts.get(rule.name, 0)), note))  # fmt: skip
    return pd.DataFrame(rows, columns=RULE_COLUMNS)


def _skipped_stages(limits: pd.DataFrame, features: pd.DataFrame) -> str | None:
    """The open deals' stages the stage rule could not check, with their won stays."""
    stages = features["stage"].dropna().unique()
    known = limits["days"].reindex(stages)
    skipped = sorted(known.index[known.isna()], key=str)
    if not skipped:
        return None
    stays = limits["stays"].reindex(skipped).fillna(0).astype(int)
    parts = ", ".join(f"{s} ({n:,})" for s, n in stays.items())
    return f"not checked in {parts}: fewer than {MIN_STAGE_SPELLS} won deals' stays known there"


def check(
    features: pd.DataFrame,
    as_of,
    config: HygieneConfig = HygieneConfig(),
    stage_limits: pd.DataFrame | None = None,
    unavailable: dict[str, str] | None = None,
) -> pd.DataFrame:
    """One row per (deal, rule) broken, `FLAG_COLUMNS`: deal_id, rule, detail (a sentence stating
    the numbers), value (the number behind it) and threshold (what it was compared with). Rules
    switched off or `unavailable` are not checked; `stage_limits` as `stage_limits` returns (none:
    the stage rule checks nothing)."""
    as_of = pd.Timestamp(as_of)
    skip = set(config.off) | set(unavailable or {})
    limits = stage_limits if stage_limits is not None else pd.DataFrame({"days": []}, dtype=float)
    parts = [
        _CHECKS[rule.name](features, config, limits).assign(rule=rule.name)
        for rule in RULES
        if rule.name not in skip
    ]
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=float if c in ("value", "threshold") else object)
                             for c in FLAG_COLUMNS})  # fmt: skip
    out = pd.concat(parts).rename_axis("deal_id").reset_index()
    out["deal_id"] = out["deal_id"].astype(str)
    return out[FLAG_COLUMNS].reset_index(drop=True)


def _flags(hit: pd.Series, detail: list[str], value, threshold) -> pd.DataFrame:
    """The rows of one rule: `hit` a boolean mask over the deals, the rest aligned with its
    True rows."""
    index = hit.index[hit.to_numpy(dtype=bool)]

    def floats(x) -> np.ndarray:
        return np.broadcast_to(np.asarray(x, dtype=float), len(index))

    return pd.DataFrame({"detail": detail, "value": floats(value),
                         "threshold": floats(threshold)}, index=index)  # fmt: skip


def _days(x: float) -> str:
    return plural(int(x), "day")


def _close_date_passed(f: pd.DataFrame, config: HygieneConfig, _) -> pd.DataFrame:
    past = -f["days_to_expected_close"].astype(float)
    grace = config.close_date_grace_days
    hit = past > grace
    dates = pd.to_datetime(f.loc[hit, "expected_close"]).dt.strftime("%Y-%m-%d")
    tail = f" (grace: {_days(grace)})" if grace else ""
    detail = [f"expected close date {d} passed {_days(n)} ago{tail}"
              for d, n in zip(dates, past[hit], strict=True)]  # fmt: skip
    return _flags(hit, detail, past[hit], float(grace))


def _no_next_step(f: pd.DataFrame, config: HygieneConfig, _) -> pd.DataFrame:
    hit = f["has_next_step"].astype(float) == 0
    return _flags(hit, ["no next step recorded"] * int(hit.sum()), np.nan, np.nan)


def _no_activity(f: pd.DataFrame, config: HygieneConfig, _) -> pd.DataFrame:
    quiet, limit = f["days_since_activity"].astype(float), config.no_activity_days
    hit = quiet >= limit
    detail = [f"no activity for {_days(n)} (the rule flags {_days(limit)} or more)" for n in quiet[hit]]  # fmt: skip
    return _flags(hit, detail, quiet[hit], float(limit))


def _stage_too_long(f: pd.DataFrame, config: HygieneConfig, limits: pd.DataFrame) -> pd.DataFrame:  # fmt: skip
    days = f["days_in_stage"].astype(float)
    limit = f["stage"].map(limits["days"]).astype(float)
    hit = days > limit
    share = f"{config.stage_percentile:g}%"
    detail = [
        f"in {stage} for {_days(n)}; {share} of won deals left it "
        + (f"within {_days(m)}" if m >= 1 else "the same day")
        for stage, n, m in zip(f.loc[hit, "stage"], days[hit], limit[hit], strict=True)
    ]
    return _flags(hit, detail, days[hit], limit[hit])


def _amount_missing(f: pd.DataFrame, config: HygieneConfig, _) -> pd.DataFrame:
    hit = ~f["value_known"].astype(bool)
    rows = f.loc[hit, ["value_used", "value_source", "product"]]
    detail = [_estimate(v, source, product) for v, source, product in rows.itertuples(index=False)]
    return _flags(hit, detail, rows["value_used"], np.nan)


def _estimate(value: float, source: str, product) -> str:
    if pd.isna(value):
        return "no amount in the CRM, and none to estimate it from"
    if source == "list price" and isinstance(product, str):
        basis = f"the list price of {product}"
    elif source == "list price":
        basis = "the product's list price"
    else:
        basis = "a median of open deals' amounts"
    return f"no amount in the CRM; scored at {money(value)}, {basis}"


def _close_date_pushed(f: pd.DataFrame, config: HygieneConfig, _) -> pd.DataFrame:
    pushes, limit = f["close_pushes"].astype(float), config.close_pushes
    hit = pushes >= limit
    detail = [f"close date pushed {times(int(n))} (the rule flags {times(limit)} or more)"
              for n in pushes[hit]]  # fmt: skip
    return _flags(hit, detail, pushes[hit], float(limit))


_CHECKS = {
    "close_date_passed": _close_date_passed,
    "no_next_step": _no_next_step,
    "no_activity": _no_activity,
    "stage_too_long": _stage_too_long,
    "amount_missing": _amount_missing,
    "close_date_pushed": _close_date_pushed,
}
