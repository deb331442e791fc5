"""`[hygiene]` in revbot.toml: every rule's threshold and `off`, read into `Settings.hygiene`;
an unknown key or a bad value is an error naming the table and key and saying what to write."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from bot.cli import HYGIENE_RULES
from bot.config import ConfigError
from bot.settings import settings_from
from scoring.hygiene import RULE_NAMES, RULES, HygieneConfig

ROOT = Path(__file__).resolve().parents[2]


def test_no_table_gives_the_defaults():
    assert settings_from({}, env={}).hygiene == HygieneConfig()
    assert HygieneConfig() == HygieneConfig(0, 14, 90, 2, frozenset())


def test_every_key_is_read():
    raw = {"close_date_grace_days": 3, "no_activity_days": 21, "stage_percentile": 92.5,
           "close_pushes": 3, "off": ["no_next_step", "amount_missing"]}  # fmt: skip
    h = settings_from({"hygiene": raw}, env={}).hygiene
    assert h == HygieneConfig(3, 21, 92.5, 3, frozenset({"no_next_step", "amount_missing"}))
    assert h.threshold("no_activity") == 21 and h.threshold("stage_too_long") == 92.5


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"no_activty_days": 14}, "[hygiene]: unknown keys ['no_activty_days'] (known: "),
        ({"no_activity_days": "two weeks"}, "[hygiene] no_activity_days: 'two weeks' is not a "
         "whole number of days, 1 or more; e.g. no_activity_days = 14"),
        ({"no_activity_days": 0}, "[hygiene] no_activity_days: 0 is not a whole number"),
        ({"no_activity_days": 14.5}, "[hygiene] no_activity_days: 14.5 is not a whole number"),
        ({"no_activity_days": True}, "[hygiene] no_activity_days: True is not a whole number"),
        ({"close_date_grace_days": -1}, "[hygiene] close_date_grace_days: -1 is not a whole "
         "number of days, 0 or more (0: any day past); e.g. close_date_grace_days = 0"),
        ({"stage_percentile": 40}, "[hygiene] stage_percentile: 40 is not a percentage from 50 "
         "to 100 (90: slower than 90% of won deals); e.g. stage_percentile = 90"),
        ({"stage_percentile": 101}, "[hygiene] stage_percentile: 101 is not a percentage"),
        ({"stage_percentile": float("nan")}, "[hygiene] stage_percentile: nan is not a percentage"),
        ({"close_pushes": 0}, "[hygiene] close_pushes: 0 is not a whole number of pushes, 1 or "
         "more; e.g. close_pushes = 2"),
        ({"off": "no_next_step"}, "[hygiene] off: 'no_next_step' is not a list of rule names; "
         'e.g. off = ["no_next_step"]'),
        ({"off": ["no_next_steps"]}, "[hygiene] off: unknown rules ['no_next_steps'] (the rules: "
         "close_date_passed, no_next_step, no_activity, stage_too_long, amount_missing, "
         "close_date_pushed)"),
    ],
)  # fmt: skip
def test_bad_hygiene_settings_are_named(raw, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        settings_from({"hygiene": raw}, env={})


def test_hygiene_must_be_a_table():
    with pytest.raises(ConfigError, match=re.escape("[hygiene] must be a table")):
        settings_from({"hygiene": 14}, env={})


def test_the_cli_knows_every_rule():
    """`revbot hygiene --rule` spells the names out (its help loads no pandas)."""
    assert HYGIENE_RULES == RULE_NAMES


def test_the_example_configuration_and_the_readme_document_every_rule():
    """deploy/revbot.example.toml's [hygiene] is valid, at the defaults, and names every rule
    with its setting; the README's table names every rule."""
    path = ROOT / "deploy" / "revbot.example.toml"
    with path.open("rb") as fh:
        config = tomllib.load(fh)
    assert settings_from(config, env={}).hygiene == HygieneConfig()
    text = path.read_text(encoding="utf-8")
    section = text[text.index("[hygiene]") :]
    for rule in RULES:
        assert rule.name in section, rule.name
        if rule.setting:
            assert re.search(rf"^{rule.setting} = {rule.default:g}\b", section, re.M), rule
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for rule in RULES:
        assert f"| `{rule.name}` |" in readme, rule.name
        if rule.setting:
            assert re.search(rf"^{rule.setting} = {rule.default:g}\b", readme, re.M), rule
