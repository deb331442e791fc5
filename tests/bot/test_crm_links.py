"""Deals one click away: the CRM URL of a deal, its id percent-encoded so no CRM text can end or
split a Slack link, the link in the digest, `/deal` and an account's list, and the "Open in CRM"
button, which the served app acknowledges and nothing more."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest

from bot import crm_links
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
from bot.listeners import ACTION_OPEN_CRM

TEMPLATE = "https://crm.example.com/deals/{id}"
HOSTILE = "a>b|c <!channel> *x*"
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
