"""Deals one click away: the CRM URL of a deal, its id percent-encoded so no CRM text can end or
split a Slack link, the link in the digest, `/deal` and an account's list, and the "Open in CRM"
button, which the served app acknowledges and nothing more."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import unquote, urlencode

import pandas as pd
import pytest

from bot import crm_links, ledger
from bot.app import create_app
from bot.crm_links import (
    MAX_URL,
    check_template,
    deal_id_mrkdwn,
    deal_url,
    default_template,
    open_button,
    set_default_template,
    template_default,
)
from bot.inert import inert
from bot.listeners import ACTION_OPEN_CRM, ACTION_WHY
from bot.morning import run_channel
from bot.readiness import STARTING, Readiness
from bot.wsgi import serve_background, wsgi_app
from tests.bot.slackenv import LEADER, Reply, action_body, channel, command_body, post, settings_for
from tests.fakeslack import FakeSlack

TEMPLATE = "https://crm.example.com/deals/{id}"
HOSTILE = "a>b|c <!channel> *x*"
DIGEST = channel("C0DIGEST", top=5)
LINK = re.compile(r"<([^<>|]*)\|([^<>]*)>")  # a Slack link <url|label>, as Slack reads one


@pytest.fixture(autouse=True)
def no_default():
    """Every test starts and ends with no process default."""
    with template_default(None):
        yield


def test_the_id_is_percent_encoded_into_the_template():
    assert deal_url("0065g00000ABCDEFGH", TEMPLATE) == "https://crm.example.com/deals/0065g00000ABCDEFGH"  # fmt: skip
    assert deal_url(12345, TEMPLATE) == "https://crm.example.com/deals/12345"
    url = deal_url(HOSTILE, TEMPLATE)
    assert url == "https://crm.example.com/deals/a%3Eb%7Cc%20%3C%21channel%3E%20%2Ax%2A"
    assert unquote(url.rsplit("/", 1)[1]) == HOSTILE  # the CRM gets the id it gave
    assert deal_url("../../admin", TEMPLATE) == "https://crm.example.com/deals/..%2F..%2Fadmin"
    assert deal_url("D1", None) is None  # no template, no default: no link


def test_a_hostile_id_is_one_link_with_a_clean_url_and_an_inert_label():
    text = deal_id_mrkdwn(HOSTILE, TEMPLATE)
    links = LINK.findall(text)
    assert len(links) == 1 and LINK.fullmatch(text), text  # nothing before or after the one link
    url, label = links[0]
    for raw in (">", "|", " ", "<"):
        assert raw not in url
    assert label == inert(HOSTILE) and "<!" not in text and "*x*" not in text
    assert "&lt;!channel&gt;" in label


def test_without_a_template_the_id_is_inert_code_as_before():
    assert deal_id_mrkdwn(HOSTILE) == f"`{inert(HOSTILE)}`"
    assert deal_id_mrkdwn("D1") == "`D1`"
    assert open_button("D1") is None


def test_a_long_id_is_shortened_in_the_label_but_whole_in_the_url():
    deal_id = "X" * 150
    url, label = LINK.fullmatch(deal_id_mrkdwn(deal_id, TEMPLATE)).groups()
    assert url.endswith(deal_id) and len(label) == 80 and label.endswith("…")


def test_an_absurdly_long_url_is_no_link():
    deal_id = "x" * (MAX_URL - len(TEMPLATE) + 5)  # one character too many ({id} is 4)
    assert len(TEMPLATE.replace("{id}", deal_id)) == MAX_URL + 1
    assert deal_url(deal_id, TEMPLATE) is None and open_button(deal_id, TEMPLATE) is None
    assert deal_id_mrkdwn(deal_id, TEMPLATE).startswith("`x")
    assert deal_url(deal_id[1:], TEMPLATE) is not None


def test_an_ampersand_of_the_template_is_escaped_in_mrkdwn_only():
    template = "https://crm.example.com/d?id={id}&tab=activity"
    assert deal_id_mrkdwn("D1", template) == "<https://crm.example.com/d?id=D1&amp;tab=activity|D1>"  # fmt: skip
    assert open_button("D1", template)["url"] == "https://crm.example.com/d?id=D1&tab=activity"


def test_the_open_button_is_a_link_button():
    assert open_button(HOSTILE, TEMPLATE) == {
        "type": "button",
        "action_id": ACTION_OPEN_CRM,
        "text": {"type": "plain_text", "text": "Open in CRM"},
        "url": deal_url(HOSTILE, TEMPLATE),
    }


def test_the_process_default_is_used_and_put_back():
    assert default_template() is None
    with template_default(TEMPLATE):
        assert default_template() == TEMPLATE
        assert deal_url("D1") == "https://crm.example.com/deals/D1"
        assert deal_id_mrkdwn("D1") == "<https://crm.example.com/deals/D1|D1>"
        assert open_button("D1")["url"] == "https://crm.example.com/deals/D1"
        other = "https://other.example/{id}"
        assert deal_url("D1", other) == "https://other.example/D1"  # given beats the default
    assert default_template() is None and deal_url("D1") is None
    with pytest.raises(ValueError, match="has no {id}".replace("{", r"\{").replace("}", r"\}")):
        set_default_template("https://crm.example.com/")
    assert crm_links.default_template() is None  # a bad template is refused, not half-set


@pytest.mark.parametrize("bad", ["https://x/{id}{id}", "javascript:alert(1)//{id}", "https://x/{id}\x00",
                                 "https://x/<{id}>", "https://x/" + "a" * 500 + "{id}", "https:///{id}"])  # fmt: skip
def test_check_template_refuses_what_could_break_a_link(bad):
    with pytest.raises(ValueError):
        check_template(bad)


def test_settings_of_sets_the_default_and_a_command_puts_it_back(tmp_path, monkeypatch, capsys):
    """The composition root sets the template from revbot.toml; `revbot` run in-process leaves the
    default as it found it, as it does the currency."""
    from bot import cli_reports
    from bot.cli import main
    from bot.config import SetupError

    config = tmp_path / "revbot.toml"
    config.write_text('[links]\nsalesforce = "https://acme.my.salesforce.com"\n', encoding="utf-8")
    seen = []

    def no_database(*_, **__):  # the digest's first step after reading the settings
        seen.append(default_template())
        raise SetupError("no database here")

    monkeypatch.setattr(cli_reports, "open_db", no_database)
    assert main(["digest", "--config", str(config), "--db", str(tmp_path / "x.db")]) == 2
    assert seen == ["https://acme.my.salesforce.com/lightning/r/Opportunity/{id}/view"]
    assert default_template() is None  # put back when the command ended
    assert "no database here" in capsys.readouterr().err


# --- the replies: /deal and an account's list of deals --------------------------------------------

DEAL = {"deal_id": HOSTILE, "account": "Acme", "product": "GTX Pro", "owner": "Ann Lee",
        "value": 4821.0, "win_prob": 0.21, "risk": 75.0, "rank": 3, "stage": "Engaging",
        "expected_close": "2018-01-15", "manager": "Mo Park", "region": "West", "drivers": "[]"}  # fmt: skip


def _reply(**kw) -> dict:
    from bot.replies import deal_reply

    return deal_reply(DEAL | kw, [], ["Book a call"], pd.DataFrame({"risk": [70.0, 75.0]}),
                      "model confidence: fair", "2018-01-01")  # fmt: skip


def test_the_deal_reply_links_its_id_and_offers_the_crm():
    from bot.blocks import check_limits

    with template_default(TEMPLATE):
        message = _reply()
    title = message["blocks"][0]["text"]["text"]
    assert title.endswith(f"· <{deal_url(HOSTILE, TEMPLATE)}|{inert(HOSTILE)}>")
    (actions,) = [b for b in message["blocks"] if b["type"] == "actions"]
    assert actions["elements"] == [open_button(HOSTILE, TEMPLATE)]
    assert message["blocks"][-1]["type"] == "context"  # the risk trend stays the footnote
    assert check_limits(message) == [] and "<!channel>" not in json.dumps(message["blocks"])


def test_without_links_the_deal_reply_is_as_before():
    message = _reply(deal_id="D7")
    assert message["blocks"][0]["text"]["text"].endswith("· `D7`")
    assert [b["type"] for b in message["blocks"]] == ["section"] * 4 + ["context"]


def _several(n: int, deal_id=lambda i: f"D{i}") -> pd.DataFrame:
    return pd.DataFrame({"deal_id": [deal_id(i) for i in range(n)], "account": ["Acme"] * n,
                         "product": ["GTX Pro"] * n, "owner": ["Ann Lee"] * n,
                         "win_prob": [0.2] * n, "risk": [60.0] * n})  # fmt: skip


def test_an_accounts_deals_are_listed_with_linked_ids():
    from bot.replies import several_reply

    with template_default(TEMPLATE):
        text = several_reply("acme", _several(3))["blocks"][0]["text"]["text"]
    for i in range(3):
        assert f"• <https://crm.example.com/deals/D{i}|D{i}> Acme" in text
    assert "e.g. `/deal D0`" in text  # what to type stays code
    plain = several_reply("acme", _several(3))["blocks"][0]["text"]["text"]
    assert "• `D0` Acme" in plain and "<http" not in plain


def test_a_long_list_of_linked_deals_is_never_cut_inside_a_link():
    from bot.blocks import MAX_SECTION
    from bot.replies import several_reply

    long_ids = _several(15, lambda i: f"{i:02d}" + "Q|" * 99)
    with template_default("https://crm.example.com/" + "p" * 400 + "/{id}"):
        message = several_reply("acme", long_ids)
    text = message["blocks"][0]["text"]["text"]
    assert len(text) <= MAX_SECTION
    listed = LINK.findall(text)
    assert 0 < len(listed) < 15 and text.count("<") == len(listed)  # whole links only
    assert text.endswith(f"…and {15 - len(listed)} more")


def test_the_terminal_shows_a_link_as_its_label_and_url():
    from bot.terminal import plain

    with template_default("https://crm.example.com/d?id={id}&tab=1"):
        text = plain(_reply(deal_id="D7"))
    assert text.splitlines()[0] == "Acme · GTX Pro · owner Ann Lee · D7 (https://crm.example.com/d?id=D7&tab=1)"  # fmt: skip


# --- served: the digest's and /deal's buttons over real HTTP, against the loopback fake Slack ---


def _press_open(served_url: str, message: dict, button: dict, block_id: str, url: str) -> Reply:
    """Press a link button as Slack sends it: a block_actions payload (with no value)."""
    payload = {
        "type": "block_actions", "user": {"id": LEADER, "username": "u0leader", "team_id": "T0001"},
        "api_app_id": "A0001", "token": "unused", "trigger_id": "1.2.3",
        "team": {"id": "T0001", "domain": "acme"},
        "container": {"type": "message", "message_ts": message["ts"], "channel_id": "C0DIGEST",
                      "is_ephemeral": False},
        "channel": {"id": "C0DIGEST", "name": "digest"}, "message": message, "response_url": url,
        "actions": [{"action_id": button["action_id"], "block_id": block_id, "type": "button",
                     "text": button["text"], "action_ts": str(time.time())}],
    }  # fmt: skip
    return post(served_url, urlencode({"payload": json.dumps(payload)}).encode())


def _quiet(slack: FakeSlack, seconds: float = 0.5) -> list:
    """What reached the fake Slack in `seconds` (a listener keeps running after its ack)."""
    time.sleep(seconds)
    return [(c.method, c.path) for c in slack.calls]


@pytest.mark.bot(channels=[DIGEST])
def test_open_in_crm_in_the_posted_digest_is_acked_and_nothing_more(served):
    with template_default(TEMPLATE):
        assert run_channel(served.services, served.client, DIGEST, "2025-02-17").status == "posted"
    (call,) = served.slack.calls_to("chat.postMessage")
    message = served.slack.messages[("C0DIGEST", call.response["ts"])]
    blocks = [b for b in message["blocks"] if b["type"] == "actions"]
    assert len(blocks) == DIGEST.top
    for block in blocks:  # each deal's buttons end with its link, to its own deal
        deal_id = block["block_id"].split(":", 1)[1]
        assert block["elements"][-1] == open_button(deal_id, TEMPLATE)
        assert f"<{deal_url(deal_id, TEMPLATE)}|{inert(deal_id)}>" in json.dumps(message)
    served.slack.reset()
    started = time.monotonic()
    reply = _press_open(served.url, message, blocks[0]["elements"][-1], blocks[0]["block_id"],
                        served.slack.response_url("open"))  # fmt: skip
    assert (reply.status, reply.body) == (200, "") and time.monotonic() - started < 2.5
    assert _quiet(served.slack) == []  # no answer, no post, no edit of the digest
    assert ledger.marks(served.services.reader.db(), "C0DIGEST").empty


def test_deal_answers_with_its_link_and_the_button(served):
    deal_id = served.data["scores"].iloc[0]["deal_id"]
    url = served.slack.response_url("deal")
    with template_default(TEMPLATE):
        assert post(served.url, command_body("/deal", deal_id, LEADER, url)).status == 200
        answer = served.slack.answer_at(url)
    assert f"· <https://crm.example.com/deals/{deal_id}|{deal_id}>" in answer["blocks"][0]["text"]["text"]  # fmt: skip
    actions = [b for b in answer["blocks"] if b["type"] == "actions"]
    assert actions == [{"type": "actions", "elements": [open_button(deal_id, TEMPLATE)]}]
    served.slack.reset()
    button = actions[0]["elements"][0]
    message = {"ts": "1700000000.000100", "text": answer["text"], "blocks": answer["blocks"]}
    reply = _press_open(served.url, message, button, "x", served.slack.response_url("open"))
    assert reply.status == 200 and _quiet(served.slack) == []


def test_open_in_crm_while_starting_is_acked_without_the_starting_note(small_crm, db_copy):
    """During the warm-up other buttons get a private "starting" note; a link has nothing to
    wait for: the browser opened it already."""
    with FakeSlack() as slack:
        app, services = create_app(settings_for(slack.base_url, small_crm["who"]), db_copy,
                                   small_crm["artifacts"], ready=Readiness())  # fmt: skip
        server, _ = serve_background(wsgi_app(app, services.reader), "127.0.0.1", 0)
        events = f"http://127.0.0.1:{server.server_port}/slack/events"
        slack.reset()  # Bolt's auth.test as the app was built
        try:
            message = {"ts": "1700000000.000100", "text": "digest", "blocks": []}
            button = open_button("D1", TEMPLATE)
            reply = _press_open(events, message, button, "deal:D1", slack.response_url("open"))
            assert (reply.status, reply.body) == (200, "") and _quiet(slack) == []
            why = slack.response_url("why")  # the proof that the app was indeed starting
            assert post(events, action_body(ACTION_WHY, "1:D1", LEADER, why, message)).status == 200
            assert slack.answer_at(why)["text"] == STARTING
        finally:
            server.shutdown()
            server.server_close()


# --- the documentation's [links] examples are valid and give the documented URLs ----------------


def test_the_documented_links_examples_are_valid():
    import tomllib
    from pathlib import Path

    from bot.settings import settings_from

    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text(encoding="utf-8")
    block = next(b for b in readme.split("```toml")[1:] if b.lstrip().startswith("[links]"))
    config = tomllib.loads(block.split("```")[0])
    assert settings_from(config, env={}).deal_url == (
        "https://acme.my.salesforce.com/lightning/r/Opportunity/{id}/view"
    )
    example = (root / "deploy" / "revbot.example.toml").read_text(encoding="utf-8")
    lines = {m[1]: m[0] for m in re.findall(r"^# ((\w+) = .+?)(?:\s+#.*)?$", example, re.M)}
    for keys, template in (
        (["salesforce"], "https://acme.my.salesforce.com/lightning/r/Opportunity/{id}/view"),
        (["hubspot_portal"], "https://app.hubspot.com/contacts/1234567/record/0-3/{id}"),
        (["hubspot_portal", "hubspot_site"],
         "https://app-eu1.hubspot.com/contacts/1234567/record/0-3/{id}"),
        (["deal_url"], "https://crm.example.com/deals/{id}"),
    ):  # fmt: skip
        config = tomllib.loads("[links]\n" + "\n".join(lines[k] for k in keys))
        assert settings_from(config, env={}).deal_url == template, keys
