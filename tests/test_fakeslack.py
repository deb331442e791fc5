"""The fake Slack server, driven by the real slack_sdk clients (so it keeps matching what they send)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from tests.fakeslack import FakeSlack, validate_blocks

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> WebClient:
    return WebClient(token="xoxb-test", base_url=slack.base_url, timeout=5)


def section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def test_auth_test(slack: FakeSlack, client: WebClient) -> None:
    resp = client.auth_test()
    assert resp["user_id"] == "UBOT" and resp["team_id"] == "T0001" and resp["bot_id"]
    [call] = slack.calls_to("auth.test")
    assert call.headers["authorization"] == "Bearer xoxb-test" and call.ok


def test_bad_or_missing_token_is_refused(slack: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as err:
        WebClient(token="xoxp-user", base_url=slack.base_url).auth_test()
    assert err.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as err:
        WebClient(base_url=slack.base_url).auth_test()
    assert err.value.response["error"] == "not_authed"


def test_post_message_records_parsed_blocks(slack: FakeSlack, client: WebClient) -> None:
    blocks = [section("*Deal 42* is at risk")]
    first = client.chat_postMessage(channel="C1", text="Deal 42 is at risk", blocks=blocks)
    with pytest.warns(UserWarning, match="top-level `text` argument is missing"):
        second = client.chat_postMessage(channel="C1", blocks=blocks)
    assert first["ts"] == "1700000000.000100"
    assert float(second["ts"]) > float(first["ts"])
    one, two = slack.wait_for("chat.postMessage", count=2)
    assert one.params["blocks"] == blocks and one.params["channel"] == "C1"
    assert one.warnings == [] and two.warnings == ["no fallback text"]

    client.chat_update(channel="C1", ts=first["ts"], text="resolved")
    assert slack.messages[("C1", first["ts"])]["text"] == "resolved"
    with pytest.raises(SlackApiError, match="message_not_found"):
        client.chat_update(channel="C1", ts="1.000000", text="x")


def test_invalid_blocks_are_refused(slack: FakeSlack, client: WebClient) -> None:
    too_many_fields = {"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(
            channel="C1", text="t", blocks=[section("x" * 3001), too_many_fields]
        )
    assert err.value.response["error"] == "invalid_blocks"
    assert len(err.value.response["errors"]) == 2
    assert slack.calls_to("chat.postMessage")[0].status == 200  # Slack answers 200 with ok=false
    assert validate_blocks([{"text": "no type"}]) == ["block 0: missing type"]
    assert validate_blocks([section("x")] * 51) == ["too many blocks: 51 > 50"]
    long_field = {"type": "section", "fields": [{"type": "mrkdwn", "text": "y" * 2001}]}
    header = {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}
    context = {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}
    assert len(validate_blocks([long_field, header, context])) == 3


def test_files_upload_v2_goes_through_all_three_steps(slack: FakeSlack, client: WebClient) -> None:
    resp = client.files_upload_v2(
        channel="C1",
        file=PNG,
        filename="x.png",
        title="Forecast",
        initial_comment="P10/P50/P90",
    )
    assert resp["file"]["title"] == "Forecast"
    [url_call] = slack.calls_to("files.getUploadURLExternal")
    assert url_call.params["filename"] == "x.png" and url_call.params["length"] == str(len(PNG))
    [upload] = slack.calls_to("upload")
    assert upload.body == PNG and "authorization" not in upload.headers and upload.warnings == []
    [done] = slack.wait_for("files.completeUploadExternal")
    assert done.params["channel_id"] == "C1" and done.params["initial_comment"] == "P10/P50/P90"
    assert done.params["files"] == [{"id": resp["file"]["id"], "title": "Forecast"}]
    assert slack.uploads[resp["file"]["id"]] == PNG


def test_not_member_fails_upload_but_dm_works(slack: FakeSlack, client: WebClient) -> None:
    slack.not_member("C2")
    with pytest.raises(SlackApiError) as err:
        client.files_upload_v2(channel="C2", file=PNG, filename="x.png", title="t")
    assert err.value.response["error"] == "not_in_channel"
    with pytest.raises(SlackApiError, match="not_in_channel"):
        client.chat_postMessage(channel="C2", text="hi")
    with pytest.raises(SlackApiError, match="channel_not_found"):  # names are not channel IDs
        client.files_upload_v2(channel="#general", file=PNG, filename="x.png")

    dm = client.conversations_open(users="U7")["channel"]["id"]
    assert dm == "DU7"
    client.files_upload_v2(channel=dm, file=PNG, filename="x.png", title="t")
    assert slack.wait_for("files.completeUploadExternal")[0].params["channel_id"] == "DU7"


def test_rate_limit_is_retried_after_retry_after(slack: FakeSlack, client: WebClient) -> None:
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=1))
    slack.rate_limit("chat.postMessage", retry_after=1)
    started = time.monotonic()
    assert client.chat_postMessage(channel="C1", text="hi")["ok"]
    first, second = slack.calls_to("chat.postMessage")
    assert (first.status, first.error) == (429, "ratelimited") and second.ok
    assert second.at - first.at >= 1.0 and time.monotonic() - started < 2.5


def test_rate_limit_without_retry_handler_raises(slack: FakeSlack, client: WebClient) -> None:
    slack.rate_limit("chat.postMessage", retry_after=30)
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C1", text="hi")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "30"


def test_fail_injects_an_error_once(slack: FakeSlack, client: WebClient) -> None:
    slack.fail("chat.postMessage", "channel_not_found", channel="C9")
    client.chat_postMessage(channel="C1", text="other channel is unaffected")
    with pytest.raises(SlackApiError, match="channel_not_found"):
        client.chat_postMessage(channel="C9", text="hi")
    client.chat_postMessage(channel="C9", text="hi")
    assert [c.ok for c in slack.calls_to("chat.postMessage")] == [True, False, True]

    slack.reset()
    assert slack.calls == [] and slack.messages == {}


def test_response_url_records_webhook_posts(slack: FakeSlack) -> None:
    url = slack.response_url("forecast")
    assert url.startswith(slack.url + "response/forecast/") and url != slack.response_url(
        "forecast"
    )
    resp = WebhookClient(url).send(text="Rendering…", response_type="ephemeral")
    assert (resp.status_code, resp.body) == (200, "ok")
    [call] = slack.wait_for("response_url")
    assert call.params == {"text": "Rendering…", "response_type": "ephemeral"}

    bad = WebhookClient(url).send(text="t", blocks=[section("x" * 3001)])
    assert (bad.status_code, bad.body) == (400, "invalid_blocks")


def test_unknown_method_and_delay(slack: FakeSlack, client: WebClient) -> None:
    with pytest.raises(SlackApiError, match="unknown_method"):
        client.api_call("chat.nonsense")
    slack.delay("auth.test", 0.2)
    started = time.monotonic()
    client.auth_test()
    assert time.monotonic() - started >= 0.2


def test_wait_for_times_out_with_what_it_saw(slack: FakeSlack, client: WebClient) -> None:
    slack.fail("chat.postMessage", "channel_not_found")
    with pytest.raises(SlackApiError):
        client.chat_postMessage(channel="C1", text="hi")
    with pytest.raises(AssertionError) as err:
        slack.wait_for("chat.postMessage", timeout=0.1)
    message = str(err.value)
    assert "expected 1 successful chat.postMessage" in message
    assert "chat.postMessage 200 channel_not_found" in message


def test_server_error_posts_but_answers_502(slack, client):
    slack.server_error("chat.postMessage")
    with pytest.raises(SlackApiError) as info:
        client.chat_postMessage(channel="C1", text="hello")
    assert info.value.response.status_code == 502
    assert len(slack.messages) == 1  # it went out all the same


def test_users_lookup_by_email_and_info_answer_as_slack_does(slack: FakeSlack, client: WebClient) -> None:  # fmt: skip
    slack.add_user("U0ANN", "Ann.Lee@Acme.com", "Ann Lee")
    slack.add_user("U0GONE", "gone@acme.com", "Gone", deleted=True)
    found = client.users_lookupByEmail(email="ann.lee@acme.com")  # any case, as Slack
    assert found["user"]["id"] == "U0ANN"
    assert found["user"]["profile"]["email"] == "Ann.Lee@Acme.com"
    [call] = slack.calls_to("users.lookupByEmail")
    assert call.params["email"] == "ann.lee@acme.com"  # slack_sdk sends it as a GET query
    with pytest.raises(SlackApiError) as err:
        client.users_lookupByEmail(email="nobody@acme.com")
    assert err.value.response.status_code == 200 and err.value.response["error"] == "users_not_found"  # fmt: skip
    assert client.users_info(user="U0GONE")["user"]["deleted"] is True
    with pytest.raises(SlackApiError) as err:
        client.users_info(user="U0NOBODY")
    assert err.value.response["error"] == "user_not_found"


def test_users_methods_need_their_scopes(slack: FakeSlack, client: WebClient) -> None:
    slack.add_user("U0ANN", "ann@acme.com")
    slack.scopes -= {"users:read.email"}  # an app made from a manifest without it
    with pytest.raises(SlackApiError) as err:
        client.users_lookupByEmail(email="ann@acme.com")
    said = err.value.response
    assert (said["error"], said["needed"]) == ("missing_scope", "users:read.email")
    assert "users:read.email" not in said["provided"] and "chat:write" in said["provided"]
    assert client.users_info(user="U0ANN")["user"]["id"] == "U0ANN"  # users:read is enough here
    assert "users:read.email" not in client.auth_test().headers["X-OAuth-Scopes"]
