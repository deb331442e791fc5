"""People, not names (issue 15, item 5): Slack members found by the CRM owners' e-mail addresses
over the loopback Slack, `[roster] people_csv`, and `revbot roster --build` / `--check`."""

from __future__ import annotations

import time

import pytest
from slack_sdk.errors import SlackApiError

from bot import slack_api
from bot.config import ConfigError
from bot.settings import Secrets, settings_from
from tests.fakeslack import FakeSlack

TOKEN = "xoxb-test-roster"


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        yield fake


def client_of(slack: FakeSlack):
    return slack_api.make_client(Secrets(bot_token=TOKEN, api_url=slack.base_url), timeout=5)


def test_a_member_is_found_by_e_mail_and_known_by_id(slack):
    slack.add_user("U0ANN", "ann@acme.com", "Ann Lee")
    slack.add_user("W0GONE", "gone@acme.com", deleted=True)
    client = client_of(slack)
    assert slack_api.lookup_by_email(client, "ANN@acme.com") == slack_api.SlackUser("U0ANN")
    assert slack_api.lookup_by_email(client, "gone@acme.com") == slack_api.SlackUser("W0GONE", deleted=True)  # fmt: skip
    assert slack_api.lookup_by_email(client, "nobody@acme.com") is None  # users_not_found
    assert slack_api.user_info(client, "U0ANN") == slack_api.SlackUser("U0ANN")
    assert slack_api.user_info(client, "U0NOBODY") is None  # user_not_found


def test_a_rate_limited_lookup_waits_and_goes_on(slack):
    """users.lookupByEmail is Tier 3: a long list meets 429s, which make_client's client waits
    out (Retry-After) instead of failing the build."""
    slack.add_user("U0ANN", "ann@acme.com")
    slack.rate_limit("users.lookupByEmail", times=2, retry_after=1)
    start = time.monotonic()
    assert slack_api.lookup_by_email(client_of(slack), "ann@acme.com") == slack_api.SlackUser("U0ANN")  # fmt: skip
    assert time.monotonic() - start >= 2
    assert [c.status for c in slack.calls_to("users.lookupByEmail")] == [429, 429, 200]


def test_a_refusal_other_than_not_found_is_raised(slack):
    slack.scopes -= {"users:read.email"}
    with pytest.raises(SlackApiError) as err:
        slack_api.lookup_by_email(client_of(slack), "ann@acme.com")
    assert slack_api.error_code(err.value) == "missing_scope"
    slack.fail("users.info", "invalid_auth")
    with pytest.raises(SlackApiError):
        slack_api.user_info(client_of(slack), "U0ANN")


# --- [roster] people_csv ---------------------------------------------------------------------


def test_people_csv_sits_in_the_roster_table_beside_the_members():
    settings = settings_from({"roster": {"people_csv": "/etc/revbot/people.csv",
                                         "U0ANN": {"role": "rep", "name": "Ann Lee"}}})  # fmt: skip
    assert str(settings.people_csv) == "/etc/revbot/people.csv"
    assert list(settings.roster) == ["U0ANN"]  # the file name is not a member
    assert settings_from({}).people_csv is None
    with pytest.raises(ConfigError, match=r"\[roster\] people_csv: 3 is not a file name"):
        settings_from({"roster": {"people_csv": 3}})
    with pytest.raises(ConfigError, match=r"\[roster\] is a table"):
        settings_from({"roster": "U0ANN"})
