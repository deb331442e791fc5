"""One rule for money everywhere: three significant figures, compact, the currency's symbol or
code; and the setting it comes from."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bot.config import ConfigError
from bot.settings import currency_of, settings_from
from dataset.money import (
    chance,
    compact,
    currency_default,
    default_currency,
    money,
    plural,
    set_default_currency,
    symbol,
    times,
)

SHOWN = [
    (0, "$0"),
    (0.4, "$0"),
    (-0.4, "$0"),  # never "-$0"
    (45.67, "$46"),
    (920, "$920"),
    (999.4, "$999"),
    (999.6, "$1k"),  # rounds up into the next unit, not "$1000"
    (1000, "$1k"),
    (1234, "$1.23k"),
    (1500, "$1.5k"),  # no trailing zero
    (45_789, "$45.8k"),
    (-45_789, "-$45.8k"),
    (99_950, "$100k"),
    (123_456, "$123k"),
    (999_500, "$1M"),
    (1_310_000, "$1.31M"),
    (3_504_324, "$3.5M"),
    (2e9, "$2B"),
    (1e12, "$1T"),
    (1.5e15, "$1,500T"),
    (np.float64(45_789.0), "$45.8k"),
    (np.int64(920), "$920"),
    (None, "-"),
    (float("nan"), "-"),
    (float("inf"), "-"),
    (-float("inf"), "-"),
]


@pytest.mark.parametrize(("x", "shown"), SHOWN)
def test_money_to_three_significant_figures(x, shown):
    assert money(x, "USD") == shown


def test_what_is_shown_is_within_half_a_unit_of_its_last_digit():
    for x in np.random.default_rng(7).lognormal(8, 4, 5000):
        text = compact(x)
        unit = {"k": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}.get(text[-1], 1.0)
        digits = text.rstrip("kMBT").replace(",", "")
        value = float(digits) * unit
        last = 10 ** (-len(digits.split(".")[1]) if "." in digits else 0) * unit
        assert abs(value - x) <= last / 2 * (1 + 1e-9), (x, text)
        assert len(digits.replace(".", "").lstrip("0")) <= 3 or unit == 1e12, (x, text)


def test_symbols_and_codes():
    assert [money(45_789, c) for c in ("EUR", "GBP", "JPY", "CAD", "CHF", "SEK")] == [
        "€45.8k", "£45.8k", "¥45.8k", "CA$45.8k", "CHF 45.8k", "SEK 45.8k",
    ]  # fmt: skip
    assert money(-1234, "CHF") == "-CHF 1.23k" and symbol("USD") == "$"


def test_the_default_is_usd_and_set_for_a_block_only():
    assert default_currency() == "USD" and money(920) == "$920"
    with currency_default("eur"):
        assert default_currency() == "EUR" and money(920) == "€920"
        assert money(920, "GBP") == "£920"  # given explicitly, it wins
    assert default_currency() == "USD"
    with pytest.raises(ValueError, match="not a currency code"):
        set_default_currency("dollars")
    assert default_currency() == "USD"


def test_plurals_and_how_often():
    assert [plural(n, "deal") for n in (0, 1, 2, 2500)] == ["0 deals", "1 deal", "2 deals",
                                                             "2,500 deals"]  # fmt: skip
    assert plural(1, "more open deal", "more open deals") == "1 more open deal"
    assert [times(n) for n in (1, 2, 3, 1000)] == ["once", "twice", "3 times", "1,000 times"]


def test_the_currency_setting():
    assert currency_of({}) == "USD" and settings_from({}).currency == "USD"
    assert settings_from({"exports": {"currency": " gbp "}}).currency == "GBP"
    for bad in ("€", "EURO", 978, True, ""):
        with pytest.raises(ConfigError, match=r"\[exports\] currency: .* is not a currency code"):
            settings_from({"exports": {"currency": bad}})
    assert math.isfinite(settings_from({"exports": {"currency": "JPY"}}).import_limits.max_amount)


@pytest.mark.parametrize(
    ("p", "shown"),
    [(0, "0%"), (-0.0, "0%"), (0.0001, "under 1%"), (0.00499, "under 1%"), (0.0051, "1%"), (0.344, "34%"),
     (0.9949, "99%"), (0.995, "over 99%"), (0.99999, "over 99%"), (1, "100%"),
     (None, "-"), (math.nan, "-"), (np.float32(0.002), "under 1%")],
)  # fmt: skip
def test_a_chance_is_never_rounded_to_a_certainty(p, shown):
    assert chance(p) == shown


def test_every_chance_shown_holds_the_probability():
    """The words are true of the number: 'under 1%' is under 1%, 'N%' is within half a point."""
    for p in np.linspace(0, 1, 20001):
        text = chance(p)
        if text == "under 1%":
            assert 0 < p < 0.01
        elif text == "over 99%":
            assert 0.99 < p < 1
        else:
            n = int(text.rstrip("%"))
            assert abs(p * 100 - n) <= 0.5 + 1e-9
            assert (n == 0) == (p == 0) and (n == 100) == (p == 1)


def test_a_base_rate_model_says_its_average_as_each_deal_shows_it():
    """A model that ships the base rate alone gives every deal that rate: the confidence line
    under `/deal` says it as the deal's own line does."""
    from scoring import model as wm
    from scoring.scorer import confidence_text

    for rate in (0.004, 0.3, 0.996):
        m = wm.WinModel(None, wm.Calibrator(), 0.0, rate, {c: [] for c in wm.CATEGORICAL}, 0.0)
        p = float(m.from_raw(np.zeros(1))[0])
        assert p == rate and f"win chance of {chance(p)})" in confidence_text(m)
