"""CRM text made inert for Slack: the one way an account, deal id, name or product enters a message.

CRM text is untrusted: anyone who can edit a CRM record can name an account `<!channel>`,
`<http://evil.example|Log in>`, `http://evil.example/login` or `*URGENT*`. Slack would turn those
into a channel ping, a disguised link, an auto-linked URL or bold type in our digest. `inert`
renders such text so that it reads the same but cannot link, mention or format:

- `&`, `<` and `>` become entities (Slack's own escaping rule), so no `<...>` control sequence
  survives;
- the formatting characters `*`, `~`, a backtick and `_` at a word's edge become look-alikes,
  since mrkdwn has no backslash escape (`_` inside a word, as in `OPP_12`, formats nothing);
- an invisible WORD JOINER (U+2060) goes after the `:` of a URL scheme, after `@` and `#`, and
  after a dot that is followed by a letter, so Slack's auto-linker sees no URL, e-mail address,
  domain, `@here` or `#channel`;
- line breaks and control characters become spaces, and a leading `>` gets a joiner in front,
  so a name cannot open a quote or a code block on a line of its own.

`fold` undoes all of that for matching what a user types (or pastes back from a message) against
CRM names. Renderers also mark their mrkdwn objects `verbatim` (see `bot.blocks.mrkdwn`), so Slack
skips its own auto-parsing there; `inert` covers the places `verbatim` does not reach (the
notification `text`, a file's comment).
"""

from __future__ import annotations

import re

MAX_NAME = 80  # CRM names and ids shown in lists and labels
JOINER = "\u2060"  # WORD JOINER: zero width, no line break, invisible in Slack's clients
LOOKALIKES = {"*": "\u2217", "_": "\u02cd", "~": "\u223c", "`": "\u02cb"}  # ∗ ˍ ∼ ˋ
_TO_LOOKALIKE = str.maketrans({k: v for k, v in LOOKALIKES.items() if k != "_"})
# `_` formats only at a word's edge: snake_case ids, paths and error codes keep theirs
_LONE_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")
_FROM_LOOKALIKE = str.maketrans({v: k for k, v in LOOKALIKES.items()} | {JOINER: None})
_DECODE = {"&amp;": "&", "&lt;": "<", "&gt;": ">"}
_ENTITY = re.compile("|".join(_DECODE))
_SPACES = re.compile(r"[\s\x00-\x1f\x7f]+")
_BREAK = re.compile(
    r"(?<=:)(?=//)"  # http://, ftp://, any scheme://
    r"|(?<=\b(?:mailto|callto):)(?=\S)|(?<=\b(?:tel|sms):)(?=\S)"
    r"|(?<=[@#])(?=\S)"  # @here, x@domain, #channel
    r"|(?<=[\w-]\.)(?=[^\W\d_])",  # evil.example, www.x: a dot before a letter (not 3.5)
    re.IGNORECASE,
)


def inert(text: object, *, plain: bool = False) -> str:
    """`text` as mrkdwn that Slack shows literally: no link, mention, formatting or new line.
    `plain` for fields Slack shows as plain text (a file's title): only what the auto-linker
    acts on is broken there, since entities and look-alikes would show as such."""
    s = _SPACES.sub(" ", str(text)).strip()
    if plain:
        return _BREAK.sub(JOINER, s)
    s = _LONE_UNDERSCORE.sub(LOOKALIKES["_"], s).translate(_TO_LOOKALIKE)
    s = _BREAK.sub(JOINER, s)
    if s.startswith(">"):  # a quote when it opens a line, as a field's value does
        s = JOINER + s
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fold(text: str) -> str:
    """What a user typed or pasted, back to the CRM's own spelling: entities decoded (Slack sends
    slash-command text with `&`, `<` and `>` escaped), joiners dropped, look-alikes undone.
    Only Slack's three entities are decoded, once: a CRM name may contain `&lt;` literally."""
    return _ENTITY.sub(lambda m: _DECODE[m.group()], text).translate(_FROM_LOOKALIKE)


def cut(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, the last one an ellipsis when anything was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short(text: object, limit: int = MAX_NAME) -> str:
    """CRM text made inert and cut to a readable length (a 5,000-character account name exists
    somewhere). Here rather than in `bot.blocks` so that `bot.crm_links`, which `bot.blocks`
    imports, can label links with it."""
    return inert(cut(str(text), limit))
