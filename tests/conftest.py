"""Shared fixtures: real SQLite files under tmp_path, the real MavenTech files beside the repo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dataset import store

ROOT = Path(__file__).resolve().parents[1]


def maventech_dir() -> Path:
    return Path(os.environ.get("REVBOT_MAVENTECH", ROOT.parent / "shared/datasets/maventech"))


@pytest.fixture(scope="session")
def maventech() -> Path:
    path = maventech_dir()
    if not (path / "sales_pipeline.csv").exists():
        pytest.skip(f"MavenTech data set not found at {path} (set REVBOT_MAVENTECH)")
    return path


@pytest.fixture
def db(tmp_path: Path):
    database = store.connect(tmp_path / "revbot.db")
    yield database
    database.close()
