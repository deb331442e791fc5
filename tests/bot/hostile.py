"""Hostile CRM text and a scanner for what Slack would still act on in a message.

The scanner reads a payload the way Slack's parser and auto-linker would: any `<` (a link,
mention or broadcast: every `<` from the CRM must arrive as `&lt;`), a URL, `www.`, `mailto:` or
bare domain that would be auto-linked, an `@here`-style broadcast word, and formatting
characters (counted, so a test can compare them with the same message on harmless names).
"""

from __future__ import annotations

import random
import re
from collections import Counter

HOSTILE = [
    "http://evil.example/login",
    "https://evil.example/a?b=c&d=e",
    "www.evil.example",
    "mailto:x@evil.example",
    "x@evil.example",
    "evil.example",
    "@channel",
    "@here",
    "@everyone",
    "<!channel>",
    "<!here|here>",
    "<@U123>",
    "<#C123>",
    "<http://x|y>",
    "```rm -rf```",
    "`code`",
    "*bold*",
    "_it_",
    "snake_case_id",
    "x _y_z_ w",
    "~s~",
    "*unbalanced",
    "R&D",
    "a < b",
    "c > d",
    "> quote",
    "line\n> quote",
    "&lt;!channel&gt;",
    "#general",
    "$x^{$",
]

LIVE = {
    "angle bracket": re.compile(r"<"),
    "url": re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://"),
    "www": re.compile(r"(?i)\bwww\.[a-z0-9]"),
    "mailto": re.compile(r"(?i)\bmailto:[a-z0-9]"),
    "domain": re.compile(r"(?i)[a-z0-9-]\.[a-z]{2,}\b"),
    "broadcast": re.compile(r"(?i)@(?:channel|here|everyone)\b"),
    "channel link": re.compile(r"#[a-z]"),
    "quote": re.compile(r"(?m)^(?:>|&gt;)"),
}
FORMATTING = "*_~`"
INTRAWORD = re.compile(r"(?<=[^\W_])_(?=[^\W_])")


def texts(node) -> list[str]:
    """Every string Slack shows from a payload: `text` values (top level and in blocks), a
    file's `initial_comment`, `title` and `alt_txt`."""
    if isinstance(node, list):
        return [t for item in node for t in texts(item)]
    if isinstance(node, dict):
        shown = [v for k, v in node.items() if k in ("text", "initial_comment", "title", "alt_txt") and isinstance(v, str)]  # fmt: skip
        return shown + [t for v in node.values() if isinstance(v, (dict, list)) for t in texts(v)]
    return []


def live(text: str) -> list[tuple[str, str]]:
    """(what, where) for everything in `text` that Slack would link, mention or quote."""
    found = []
    for what, pattern in LIVE.items():
        found += [
            (what, text[max(0, m.start() - 20) : m.end() + 20]) for m in pattern.finditer(text)
        ]
    return found


def formatting(text: str) -> Counter:
    """The formatting characters in `text`; `_` inside a word (snake_case) formats nothing."""
    return Counter(c for c in INTRAWORD.sub("", text) if c in FORMATTING)


def assert_inert(payload, hostile: str = "", ours: tuple[str, ...] = ()) -> None:
    """No live syntax anywhere, formatting characters balanced in each text, and none of the
    hostile strings' formatting runs (`*bold*`, ```` ``` ````) present as such. `ours`: the
    member ids revbot itself may @-mention (the roster's, `bot.mentions`): their exact `<@U…>`
    is revbot's own syntax, not CRM text, and is the only `<` allowed."""
    for text in texts(payload):
        for user_id in ours:
            text = text.replace(f"<@{user_id}>", "@member")
        assert live(text) == [], (live(text), text)
        odd = {c: n for c, n in formatting(text).items() if n % 2}
        assert not odd, (odd, text)
        for run in ("*bold*", "_it_", "~s~", "```", "`code`", "*West*", "~s~", "_Mo_"):
            assert run not in text, (run, text)
        for word in hostile.split():
            if any(c in INTRAWORD.sub("", word) for c in "<>&@:.#*_~`"):
                assert word not in text, (word, text)


def generated(seed: int, n: int) -> list[str]:
    """Random hostile strings: pieces of HOSTILE glued with letters, punctuation and spaces."""
    rng = random.Random(seed)
    alphabet = "abcXYZ019 .:/@#!|*_~`<>&;$^{}\n\t-"
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 3)):
            if rng.random() < 0.6:
                parts.append(rng.choice(HOSTILE))
            else:
                parts.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))))
        out.append(rng.choice(["", " ", "x"]).join(parts)[:60] or "x")
    return out
