"""Links from revbot's messages to the deal in the CRM: a deal is one click away wherever it is
shown (the digest, `/deal`, an account's list of deals).

`[links]` in revbot.toml gives a URL template with one `{id}` (`bot.settings.links_of` builds it
for Salesforce and HubSpot); without one, deal ids stay inert code, as before. The deal id is
untrusted CRM text: it is percent-encoded into the URL, so an id like `x>|<!channel>` can neither
end nor split a Slack link `<url|label>`, and the label is the id made inert (`bot.inert.short`).

Like the currency (`dataset.money`), the template is a process default that the composition root
(`bot/cli_data.settings_of`) sets once from the settings; `template=None` below means that
default. Renderers read it, never change it; tests use `template_default`. Pure otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, urlsplit

from bot.inert import short
from bot.listeners import ACTION_OPEN_CRM

PLACEHOLDER = "{id}"
MAX_TEMPLATE = 500  # a CRM's deal URL is far shorter; a longer template is a paste gone wrong
# a deal's URL longer than this gets no link (the id is then shown as before): far above any real
# CRM URL, it keeps a linked digest line within a section's 3,000 characters and a button's URL
# within Slack's 3,000
MAX_URL = 1000
OPEN_LABEL = "Open in CRM"
_FORBIDDEN = re.compile(r"[\s<>|]")  # would end, split or break a Slack link `<url|label>`

_default: str | None = None


def check_template(template: object) -> str:
    """A deal URL template as written; ValueError saying what to write instead if it is not one
    (http(s), one `{id}`, nothing that could break a Slack link, no other placeholder)."""
    example = "e.g. https://crm.example.com/deals/{id}"
    if not isinstance(template, str) or not template.strip():
        raise ValueError(f"{template!r} is not a URL: write one with {{id}} where the deal id goes, {example}")  # fmt: skip
    if len(template) > MAX_TEMPLATE:
        raise ValueError(f"{len(template):,} characters is too long for a deal's URL (at most {MAX_TEMPLATE}): {example}")  # fmt: skip
    parts = urlsplit(template)
    if parts.scheme not in ("https", "http") or not template.startswith(f"{parts.scheme}://") or not parts.netloc:  # fmt: skip
        raise ValueError(f"{template!r} must start with https:// (or http://) and a host: {example}")  # fmt: skip
    bad = _FORBIDDEN.search(template)
    if bad:
        what = "a space" if bad.group().isspace() else repr(bad.group())
        raise ValueError(f"{template!r} contains {what}, which would break a Slack link; "
                         f"percent-encode it (a space is %20, | is %7C): {example}")  # fmt: skip
    if not template.isprintable():
        raise ValueError(f"{template!r} contains a control character: {example}")
    count = template.count(PLACEHOLDER)
    if count != 1:
        where = "no {id}" if count == 0 else f"{{id}} {count} times"
        raise ValueError(f"{template!r} has {where}: put {{id}} once, where the deal id goes "
                         f"({example})")  # fmt: skip
    rest = template.replace(PLACEHOLDER, "", 1)
    if "{" in rest or "}" in rest:
        other = re.search(r"\{[^{}]*\}", rest)
        shown = other.group() if other else "a lone { or }"
        raise ValueError(f"{template!r}: {shown} is not a placeholder revbot fills; only {{id}} "
                         "is (percent-encode a literal brace: { is %7B, } is %7D)")  # fmt: skip
    return template


def default_template() -> str | None:
    """The template used where a function is not given one (None: no links)."""
    return _default


def set_default_template(template: str | None) -> None:
    """Set the process default: once, at start-up, by the composition root (None: no links)."""
    global _default
    _default = None if template is None else check_template(template)


@contextmanager
def template_default(template: str | None) -> Iterator[None]:
    """The default set for a block and put back after it (a command run in-process, a test)."""
    before = _default
    set_default_template(template)
    try:
        yield
    finally:
        set_default_template(before)


def deal_url(deal_id: object, template: str | None = None) -> str | None:
    """The URL of one deal in the CRM, its id percent-encoded (every character but letters,
    digits and `_.-~`); None without a template, or when the URL would be absurdly long."""
    template = template or _default
    if not template:
        return None
    url = template.replace(PLACEHOLDER, quote(str(deal_id), safe=""), 1)
    return url if len(url) <= MAX_URL else None


def deal_id_mrkdwn(deal_id: object, template: str | None = None) -> str:
    """A deal id inside mrkdwn: `` `id` `` (inert code) without a link, else a Slack link
    `<url|id>` labelled with the inert, shortened id. The URL's `&` (in a template's query
    string) is written `&amp;`, as Slack's mrkdwn wants its control characters."""
    url = deal_url(deal_id, template)
    if url is None:
        return f"`{short(deal_id)}`"
    return f"<{url.replace('&', '&amp;')}|{short(deal_id)}>"


def open_button(deal_id: object, template: str | None = None) -> dict | None:
    """A Block Kit link button, "Open in CRM", for an actions block (None without a link). Slack
    opens the URL itself; the press still reaches the app, which only acks it."""
    url = deal_url(deal_id, template)
    if url is None:
        return None
    return {
        "type": "button",
        "action_id": ACTION_OPEN_CRM,
        "text": {"type": "plain_text", "text": OPEN_LABEL},
        "url": url,
    }
