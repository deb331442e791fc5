"""`[dask]` in revbot.toml and `--dask`: read where the other settings are, checked for shape (a
scheduler's address), the flag over the file."""

from __future__ import annotations

import pytest

from bot.config import ConfigError
from bot.settings import DaskConfig, dask_of, settings_from


def test_no_dask_table_scores_here():
    assert settings_from({}, env={}).dask is None
    assert dask_of({}) is None


def test_the_address_and_timeout_are_read():
    config = {"dask": {"address": " tcp://10.0.0.5:8786 ", "connect_timeout": 2}}
    assert settings_from(config, env={}).dask == DaskConfig("tcp://10.0.0.5:8786", 2.0)
    assert dask_of({"dask": {"address": "tls://scheduler.internal:8786"}}) == DaskConfig(
        "tls://scheduler.internal:8786", 5.0
    )


def test_the_flag_overrides_the_address_and_keeps_the_timeout():
    config = {"dask": {"address": "tcp://10.0.0.5:8786", "connect_timeout": 9}}
    assert dask_of(config, "tcp://[::1]:8786") == DaskConfig("tcp://[::1]:8786", 9.0)
    assert dask_of({}, "tcp://127.0.0.1:8786") == DaskConfig("tcp://127.0.0.1:8786", 5.0)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"address": "10.0.0.5:8786"}, "[dask] address: '10.0.0.5:8786' is not a Dask scheduler"),
        ({"address": "http://10.0.0.5:8787"}, "is not a Dask scheduler address"),
        ({"address": "tcp://10.0.0.5"}, "is not a Dask scheduler address"),
        ({"address": 8786}, "[dask] address: 8786 is not a Dask scheduler address"),
        ({"connect_timeout": 5}, "[dask]: no address"),
        ({"address": "tcp://h:1", "connect_timeout": 0}, "connect_timeout: 0 is not a number"),
        ({"address": "tcp://h:1", "connect_timeout": True}, "connect_timeout: True is not"),
        ({"address": "tcp://h:1", "workers": 4}, "[dask]: unknown keys ['workers']"),
    ],
)
def test_a_wrong_dask_table_names_its_key(raw, message):
    with pytest.raises(ConfigError) as caught:
        settings_from({"dask": raw}, env={})
    assert message in str(caught.value)


def test_a_malformed_flag_names_the_flag():
    with pytest.raises(ConfigError, match="--dask: 'localhost' is not a Dask scheduler address"):
        dask_of({}, "localhost")
