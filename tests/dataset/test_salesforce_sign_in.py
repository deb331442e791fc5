"""Signing in to Salesforce from the environment only: each flow against the loopback fake (the
real simple-salesforce login code, its login host sent to the fake by a transport adapter)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from dataset.crm_reader import CrmError, CrmSessionExpired
from dataset.salesforce_reader import SalesforceReader
from tests.fakes.salesforce_api import FakeOrg, FakeSalesforce

pytest.importorskip("simple_salesforce")


@pytest.fixture
def fake(tmp_path):
    with FakeSalesforce(FakeOrg.generate(n=30, seed=3), tmp_path) as server:
        yield server


def read_all(reader: SalesforceReader) -> int:
    return sum(len(p.records) for p in reader.pages(None))


def test_jwt_bearer_flow_signs_in_with_the_private_key(fake, tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "server.key"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))  # fmt: skip
    fake.jwt_public_key = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    env = {"SALESFORCE_USERNAME": fake.username, "SALESFORCE_CONSUMER_KEY": fake.client_id,
           "SALESFORCE_PRIVATE_KEY_FILE": str(pem)}  # fmt: skip
    assert read_all(SalesforceReader.from_env(env, session=fake.session())) == 30

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # not the app's key
    pem.write_bytes(other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))  # fmt: skip
    with pytest.raises(CrmError, match="refused the sign-in"):
        read_all(SalesforceReader.from_env(env, session=fake.session()))


def test_username_password_and_security_token(fake):
    env = {"SALESFORCE_USERNAME": fake.username, "SALESFORCE_PASSWORD": fake.password,
           "SALESFORCE_SECURITY_TOKEN": fake.security_token}  # fmt: skip
    assert read_all(SalesforceReader.from_env(env, session=fake.session())) == 30
    wrong = {**env, "SALESFORCE_PASSWORD": "not-it"}
    with pytest.raises(CrmError, match="refused the sign-in") as caught:
        read_all(SalesforceReader.from_env(wrong, session=fake.session()))
    assert "not-it" not in str(caught.value) and fake.security_token not in str(caught.value)


def test_a_refresh_token_that_was_revoked_is_a_plain_error(fake):
    env = {"SALESFORCE_CONSUMER_KEY": fake.client_id, "SALESFORCE_REFRESH_TOKEN": "revoked"}
    with pytest.raises(CrmError, match="refused the sign-in.*invalid_grant"):
        read_all(SalesforceReader.from_env(env, session=fake.session()))


def test_a_session_opened_elsewhere_works_until_it_expires(fake):
    env = {"SALESFORCE_INSTANCE_URL": fake.base_url, "SALESFORCE_ACCESS_TOKEN": fake.issue_token()}
    reader = SalesforceReader.from_env(env, session=fake.session())
    assert read_all(reader) == 30 and reader.today() == fake.org.now.date()
    fake.expire_sessions()
    with pytest.raises(CrmSessionExpired, match="session expired"):
        read_all(reader)


@pytest.mark.parametrize(
    "env",
    [{}, {"SALESFORCE_USERNAME": "a@b.c"}, {"SALESFORCE_CONSUMER_KEY": "k"},
     {"SALESFORCE_USERNAME": "a@b.c", "SALESFORCE_PASSWORD": "p"}],
)  # fmt: skip
def test_an_incomplete_environment_names_what_to_set(env):
    with pytest.raises(CrmError) as caught:
        SalesforceReader.from_env(env)
    message = str(caught.value)
    assert message.startswith("no Salesforce sign-in configured")
    for name in ("SALESFORCE_PRIVATE_KEY_FILE", "SALESFORCE_REFRESH_TOKEN", "SALESFORCE_SECURITY_TOKEN"):  # fmt: skip
        assert name in message


def test_the_tls_certificate_is_checked(fake):
    """The fake is trusted only through the test CA: without it, nothing is read."""
    session = fake.session()
    session.verify = True  # the system's CAs, which never signed the fake's certificate
    env = {"SALESFORCE_INSTANCE_URL": fake.base_url, "SALESFORCE_ACCESS_TOKEN": fake.issue_token()}
    with pytest.raises(CrmError, match="certificate was not trusted"):
        read_all(SalesforceReader.from_env(env, session=session))
