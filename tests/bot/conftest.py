"""The bot under test: a real small pipeline (trained once a session), a fresh copy of its
database per test, the loopback fake Slack, and the Bolt app served over HTTP on 127.0.0.1."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.app import create_app
from bot.services import Services
from bot.settings import Settings
from bot.wsgi import serve_background, wsgi_app
from tests.bot.slackenv import build_crm, settings_for
from tests.fakeslack import FakeSlack


@pytest.fixture(scope="session")
def small_crm(tmp_path_factory) -> dict:
    return build_crm(tmp_path_factory.mktemp("small-crm"))


@dataclass
class Served:
    slack: FakeSlack
    url: str  # POST here: http://127.0.0.1:PORT/slack/events
    root: str
    services: Services
    settings: Settings
    data: dict
    db_path: Path
    client: object  # the app's WebClient, for calling the morning run directly


@pytest.fixture
def db_copy(small_crm, tmp_path) -> Path:
    path = tmp_path / "revbot.db"
    shutil.copy(small_crm["db_path"], path)
    return path


@pytest.fixture
def served(small_crm, db_copy, request):
    """Options by marker: @pytest.mark.bot(roster=False, channels=[...])."""
    marker = request.node.get_closest_marker("bot")
    options = marker.kwargs if marker else {}
    with FakeSlack() as slack:
        settings = settings_for(slack.base_url, small_crm["who"], **options)
        app, services = create_app(settings, db_copy, small_crm["artifacts"])
        server, _ = serve_background(wsgi_app(app, services.reader), "127.0.0.1", 0)
        root = f"http://127.0.0.1:{server.server_port}"
        try:
            yield Served(
                slack,
                root + "/slack/events",
                root,
                services,
                settings,
                small_crm,
                db_copy,
                app.client,
            )
        finally:
            server.shutdown()
            server.server_close()
