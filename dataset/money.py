"""Numbers and money as people read them: one rule for every message, reply, reason and chart.

Money is rounded to three significant figures and written compactly, without trailing zeros:
`$920`, `$1.5k`, `$45.8k`, `$1.31M`, `$2B`; below a thousand, whole units (`$0`, `$999`); a
negative amount with a minus sign (`-$45.8k`); a missing or infinite one `-`. A deal worth 45,789
reads `$45.8k` in the Slack digest, the terminal digest, its reasons and the `/deal` reply alike.
Files keep exact figures: CSV exports write raw numbers, the Markdown reports whole units.

The currency is a property of the data: the ISO 4217 code of the exports' amounts, `[exports]
currency` in revbot.toml, else USD (no preset maps a currency column of an export yet). Common
codes are written with their symbol (`$`, `€`, `£`, `¥`, `CA$` ...), any other code with a space
after it (`CHF 45.8k`).

Every formatter takes `currency` explicitly; left out (None), it is the process default, which the
composition root (`bot/cli_data.settings_of`) sets once from the settings before it renders or scores anything
(reasons are worded when a run is scored and saved with it). The default is read, never changed,
by the threads that render.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager

DEFAULT_CURRENCY = "USD"

# English-language symbols (CLDR's short forms); a code not listed is written as the code
SYMBOLS = {
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "JPY": "¥",
    "CNY": "CN¥",
    "INR": "₹",
    "KRW": "₩",
    "CAD": "CA$",
    "AUD": "A$",
    "NZD": "NZ$",
    "HKD": "HK$",
    "SGD": "S$",
    "MXN": "MX$",
    "BRL": "R$",
    "ILS": "₪",
    "PHP": "₱",
    "VND": "₫",
    "NGN": "₦",
    "THB": "฿",
    "UAH": "₴",
    "TRY": "₺",
}
_UNITS = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k"))
_CODE = re.compile(r"[A-Z]{3}")

_default = DEFAULT_CURRENCY


def check_currency(code: object) -> str:
    """An ISO 4217 code as written (`eur` -> `EUR`); ValueError if it is not three letters."""
    text = code.strip().upper() if isinstance(code, str) else ""
    if not _CODE.fullmatch(text):
        raise ValueError(f"{code!r} is not a currency code: use three letters, e.g. USD, EUR, GBP")
    return text


def default_currency() -> str:
    """The currency used where a formatter is not told one."""
    return _default


def set_default_currency(code: str) -> None:
    """Set the process default: once, at start-up, by the composition root."""
    global _default
    _default = check_currency(code)


@contextmanager
def currency_default(code: str) -> Iterator[None]:
    """The default set for a block and put back after it (a command run in-process, a test)."""
    before = _default
    set_default_currency(code)
    try:
        yield
    finally:
        set_default_currency(before)


def symbol(currency: str | None = None) -> str:
    """What goes before an amount: `$`, `€`, or the code and a space (`CHF `)."""
    code = currency or _default
    return SYMBOLS.get(code, f"{code} ")


def compact(x: float) -> str:
    """A number to three significant figures, compactly: 920, 45.8k, 1.31M, -2B (no currency)."""
    a = abs(float(x))
    shown = float(f"{a:.3g}")  # three significant figures; 999.6 is 1.00k, not 1000
    if shown < 1000:
        text = f"{a:.0f}"  # whole units
    else:
        size, unit = next((s, u) for s, u in _UNITS if shown >= s)
        v = shown / size
        text = (f"{v:.3g}" if v < 1000 else f"{v:,.0f}") + unit  # past 999T: 1,500T
    return "-" + text if x < 0 and text != "0" else text  # never "-0"


def _missing(x) -> bool:
    if x is None:
        return True
    try:
        return not math.isfinite(float(x))
    except (TypeError, ValueError):
        return True


def money(x: float | None, currency: str | None = None) -> str:
    """An amount for people: `$45.8k`, `-€1.2M`, `CHF 920`; `-` when missing (None, NaN, inf)."""
    if _missing(x):
        return "-"
    text = compact(x)
    sign, digits = ("-", text[1:]) if text.startswith("-") else ("", text)
    return f"{sign}{symbol(currency)}{digits}"


def chance(p: float | None) -> str:
    """A probability for people, to the whole percent but never rounded to a certainty it is
    not: `34%`; `under 1%` and `over 99%` where rounding would say `0%` or `100%`; those only
    when exact; `-` when missing. A deal the model gives 0.3% is not one it calls lost for sure."""
    if _missing(p):
        return "-"
    p = float(p) + 0.0  # -0.0 is 0
    text = f"{p:.0%}"
    if text == "0%" and p > 0:
        return "under 1%"
    if text == "100%" and p < 1:
        return "over 99%"
    return text


def plural(n: int, word: str, words: str | None = None) -> str:
    """A count with its noun: `1 deal`, `0 deals`, `2,500 deals` (`words`: an irregular plural)."""
    return f"{n:,} {word if n == 1 else (words or word + 's')}"


def times(n: int) -> str:
    """How often, in words: `once`, `twice`, `3 times`."""
    return {1: "once", 2: "twice"}.get(n, f"{n:,} times")
