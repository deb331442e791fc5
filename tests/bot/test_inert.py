"""CRM text cannot link, mention or format in anything the bot renders: every hostile string,
and generated ones, through the digest, the `/deal` and "Why?" reply, the other `/deal` answers
and the `/forecast` comment, compared with the same message on harmless names."""

from __future__ import annotations

import html
import json

import pandas as pd
import pytest

from bot.blocks import digest_message
from bot.digest import build
from bot.inert import JOINER, fold, inert
from bot.replies import (
    closed_reply,
    deal_reply,
    forecast_summary,
    match_scope,
    not_found_reply,
    several_reply,
)
from bot.settings import Scope
from tests.bot.hostile import HOSTILE, assert_inert, formatting, generated, live, texts

RUN = {"run_id": 7, "as_of": "2017-12-31", "confidence": "model confidence: low"}
NO_MARKS = pd.DataFrame(columns=["deal_id", "kind", "risk", "until", "user_id"])


def _scores(name: str, n: int = 3) -> pd.DataFrame:
    reasons = [{"key": "rep", "text": f"{name}'s win rate 20%", "points": -9.0, "risk": 12.0,
                "money": 900}]  # fmt: skip
    return pd.DataFrame({
        "deal_id": [f"{name}{i}" for i in range(n)], "rank": range(1, n + 1),
        "account": [name] * n, "product": [name] * n, "owner": [name] * n,
        "manager": [name] * n, "region": [name] * n, "value": [4821.0 + i for i in range(n)],
        "win_prob": [0.21] * n, "risk": [75.0] * n, "expected_close": ["2018-01-15"] * n,
        "drivers": [json.dumps(reasons)] * n, "actions": [json.dumps([f"Call {name}"])] * n,
    })  # fmt: skip


def digest(name: str, scope_kind: str = "region") -> dict:
    """A digest with every CRM field (and the channel's scope) named `name`, with news."""
    scores = _scores(name)
    previous = scores.assign(risk=20.0, expected_close="2017-12-20").iloc[:2]
    closed = pd.DataFrame({"deal_id": [f"{name}-won"], "status": ["won"], "account": [name],
                           "value": [1000.0], "close_date": ["2017-12-30"]})  # fmt: skip
    d = build(run=RUN, scores=scores, scope=Scope(scope_kind, name), top=10, min_risk=0,
              marks=NO_MARKS, previous=previous, closed=closed,
              quarter=("2018-Q1", 1e5, 2e5, 3e5))  # fmt: skip
    return digest_message(d)


def deal(name: str) -> dict:
    """The `/deal` and "Why?" answer with every CRM field named `name`."""
    row = _scores(name).iloc[0].to_dict() | {"stage": name, "value_known": True}
    drivers = json.loads(row["drivers"])
    history = pd.DataFrame({"risk": [40.0, 75.0]})
    return deal_reply(row, drivers, [f"Ask {name}"], history, f"confidence {name}", "2017-12-31")


def forecast(name: str) -> dict:
    table = pd.DataFrame({"kind": ["quarter"], "period": ["2018-Q1"], "p10": [1e5],
                          "p50": [2e5], "p90": [3e5], "won_to_date": [5e4]})  # fmt: skip
    return {"initial_comment": forecast_summary(table, "2018-Q1", Scope("manager", name), "2017-12-31")}  # fmt: skip


def others(name: str) -> list[dict]:
    """The other `/deal` answers that quote CRM text (or the user's words)."""
    return [
        several_reply(name, _scores(name)),
        not_found_reply(name, [name, f"{name}2"]),
        closed_reply({"deal_id": name, "account": name, "status": "lost", "close_date": name}),
    ]


RENDERERS = {
    "digest by region": lambda n: digest(n, "region"),
    "digest by manager": lambda n: digest(n, "manager"),
    "/deal and Why?": deal,
    "/forecast": forecast,
    "other /deal answers": others,
}


def _same_as_harmless(render, name: str) -> None:
    """The message on `name` shows no more live syntax or formatting than on a plain name: our
    own `*bold*` labels are the only formatting, and nothing links."""
    hostile, plain = texts(render(name)), texts(render("Plain"))
    assert len(hostile) == len(plain)
    for h, p in zip(hostile, plain, strict=True):
        assert live(h) == live(p), (name, live(h), h)
        assert formatting(h) == formatting(p), (name, h)


@pytest.mark.parametrize("where", RENDERERS)
@pytest.mark.parametrize("name", HOSTILE)
def test_every_hostile_string_is_inert_everywhere(where, name):
    render = RENDERERS[where]
    _same_as_harmless(render, name)
    assert_inert(render(name), name)


@pytest.mark.parametrize("where", RENDERERS)
def test_generated_hostile_strings_are_inert(where):
    render = RENDERERS[where]
    for name in generated(seed=11, n=60):
        _same_as_harmless(render, name)


@pytest.mark.parametrize("name", HOSTILE + generated(seed=12, n=100))
def test_the_text_still_reads_the_same_and_folds_back(name):
    shown = inert(name)
    readable = html.unescape(shown).replace(JOINER, "")
    assert fold(shown) == " ".join(name.split())
    assert len(readable) == len(" ".join(name.split()))  # look-alikes, one for one
    # what a user types back: as shown, or as Slack sends slash-command text (&, <, > escaped)
    escaped = name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for typed in (shown, escaped, name.upper()):
        assert match_scope(typed, ["West", name], []) == Scope("region", name)


def test_the_notification_text_is_inert_too():
    """The fallback `text` is not a block, so `verbatim` does not cover it: inert must."""
    m = digest("<!channel> http://evil.example/login")
    assert "http://" not in m["text"] and "<!channel>" not in m["text"]
    assert all(o.get("verbatim") is True for o in _mrkdwn_objects(m["blocks"]))
    assert all(o.get("verbatim") is True for o in _mrkdwn_objects(deal("x")["blocks"]))


def _mrkdwn_objects(node) -> list[dict]:
    if isinstance(node, list):
        return [o for item in node for o in _mrkdwn_objects(item)]
    if isinstance(node, dict):
        own = [node] if node.get("type") == "mrkdwn" else []
        return own + [o for v in node.values() for o in _mrkdwn_objects(v)]
    return []


def test_plain_text_fields_only_lose_their_links():
    """A file's title is plain text: entities would show as `&amp;`, so only links are broken."""
    title = "Forecast, R&D <b> region: http://evil.example/login @here"
    shown = inert(title, plain=True)
    assert "R&D <b>" in shown and [what for what, _ in live(shown)] == ["angle bracket"]
    assert shown.replace(JOINER, "") == title
