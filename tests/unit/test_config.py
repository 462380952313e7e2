from __future__ import annotations

import pytest

from fleetscaler.config import Settings, SettingsError


def test_settings_parse_lists_and_numbers() -> None:
    settings = Settings.from_env(
        {"TABLE_NAME": "meta", "ALLOWED_INPUT_PREFIXES": " s3://a/in/ , s3://b ", "SCALING_TIMEOUT_SECONDS": "60"}
    )
    assert settings.allowed_input_prefixes == ("s3://a/in/", "s3://b")
    assert settings.scaling_timeout_seconds == 60
    assert settings.failover_backoff_seconds == 600


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "TABLE_NAME"),
        ({"TABLE_NAME": "meta", "ALLOWED_INPUT_PREFIXES": "https://x"}, "ALLOWED_INPUT_PREFIXES"),
        ({"TABLE_NAME": "meta", "SCALING_TIMEOUT_SECONDS": "-1"}, "SCALING_TIMEOUT_SECONDS"),
        ({"TABLE_NAME": "meta", "MIN_CAPACITY": "-1"}, "MIN_CAPACITY"),
        ({"TABLE_NAME": "meta", "MAX_CAPACITY": "2.5"}, "MAX_CAPACITY"),
        ({"TABLE_NAME": "meta", "MIN_CAPACITY": "4", "MAX_CAPACITY": "3"}, r"MAX_CAPACITY \(3\) is below"),
    ],
)
def test_bad_environment_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_capacity_bounds_default_to_zero_and_the_caps() -> None:
    # Given no bounds in the environment / Then the minimum is 0 and the maximum comes from the caps
    settings = Settings.from_env({"TABLE_NAME": "meta"})
    assert (settings.min_capacity, settings.max_capacity) == (0, None)
    bounded = Settings.from_env({"TABLE_NAME": "meta", "MIN_CAPACITY": "1", "MAX_CAPACITY": "12"})
    assert (bounded.min_capacity, bounded.max_capacity) == (1, 12)
