"""Read revbot.toml once. Secrets never live here: they come from the environment only."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = "revbot.toml"


class ConfigError(ValueError):
    """The configuration file cannot be read; the message names the file and the problem."""


class SetupError(RuntimeError):
    """Something the bot needs is missing (a token, data); the message says how to fix it."""


def config_path(explicit: str | None = None) -> Path | None:
    """`--config`, else REVBOT_CONFIG, else ./revbot.toml if it exists, else none."""
    if explicit:
        return Path(explicit)
    if os.environ.get("REVBOT_CONFIG"):
        return Path(os.environ["REVBOT_CONFIG"])
    local = Path(DEFAULT_CONFIG)
    return local if local.exists() else None


def load_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such configuration file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
