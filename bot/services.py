"""The one writer and the readers, built together: the composition root of everything that
touches the data (the Slack app, the scheduler, `revbot morning` and the CLI's commands).

Why one place: the readers are handed the writer's `add_scope` here, and nothing else builds
either, so every surface reads what the one refresh saved.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
    refresher = Refresher(db_path, artifacts, settings, presets, verbose)
    reader = Reader(
        db_path, settings, add_scope=refresher.add_scope, add_reasons=refresher.add_reasons
    )
    return Services(settings, refresher, reader)
