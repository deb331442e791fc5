"""The one writer and the readers, built together: the composition root of everything that
touches the data (the Slack app, the scheduler, `revbot morning` and the CLI's commands).

Why one place: the readers are handed the writer's `add_scope` here, and nothing else builds
either, so every surface reads what the one refresh saved. For the same reason the configuration's
scopes and roster names are checked against the data here, before anything is built: `revbot
serve` (through `create_app`, before it listens or starts the scheduler), `revbot morning`,
`revbot digest` and the other commands on the data all refuse a name the data lacks
(`bot.scope_check`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot import scope_check
from bot.reader import Reader
from bot.refresh import Refresher
from bot.settings import Settings


@dataclass(frozen=True)
class Services:
    settings: Settings
    refresher: Refresher  # the only writer: ingest, train, score, simulate
    reader: Reader  # everything else


def build(
    db_path: Path,
    artifacts: Path,
    settings: Settings,
    presets: dict | None = None,
    verbose: bool = False,
) -> Services:
    """`verbose`: the writer also says the model's evaluation tables when a refresh trains."""
    scope_check.check(settings, db_path)  # a ConfigError naming every unknown scope or person
    refresher = Refresher(db_path, artifacts, settings, presets, verbose)
    reader = Reader(
        db_path, settings, add_scope=refresher.add_scope, add_reasons=refresher.add_reasons
    )
    return Services(settings, refresher, reader)
