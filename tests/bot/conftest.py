"""The bot under test: a real small pipeline (trained once a session), a fresh copy of its
database per test, the loopback fake Slack, and the Bolt app served over HTTP on 127.0.0.1."""

from __future__ import annotations

import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from filelock import FileLock

from bot.app import create_app
from bot.services import Services
from bot.settings import Settings
from bot.wsgi import serve_background, wsgi_app
from tests.bot.slackenv import build_crm, settings_for
from tests.fakeslack import FakeSlack


@pytest.fixture(scope="session")
def small_crm(tmp_path_factory, worker_id: str) -> dict:
    """Built once per test run, not once per worker: the bot tests are spread over every worker
    by file, and each built its own (10 s of training and scoring each). The first worker to
    need it builds it in the run's shared temporary folder under a file lock (pytest-xdist's
    recipe, with the maintained `filelock`); the others wait and read what it built. Tests only
    read it (each gets its own copy of the database: `db_copy`)."""
    if worker_id == "master":  # one process: nothing to share
        return build_crm(tmp_path_factory.mktemp("small-crm"))
    shared = tmp_path_factory.getbasetemp().parent  # the same for every worker of this run
    built = shared / "small-crm" / "built.pickle"
    with FileLock(str(shared / "small-crm.lock")):
        if not built.exists():
            data = build_crm(shared / "small-crm")
            built.write_bytes(pickle.dumps(data))
    return pickle.loads(built.read_bytes())


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
