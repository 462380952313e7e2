"""Parsing at the scaling engine's edges: event times and capacity bounds."""

from __future__ import annotations

import pytest

from fleetscaler.config import Settings
from fleetscaler.errors import InvalidRequest
from fleetscaler.logic.server_config import validate_server_config
from fleetscaler.services.scaling import ENGINE_MAX_CAPACITY, capacity_bounds, event_time_ms


def test_event_time_in_epoch_ms_or_iso() -> None:
    # Given the documented epoch ms, an ISO string, or only the envelope's time / Then all give epoch ms
    assert event_time_ms(1795316645000, None) == 1795316645000
    assert event_time_ms("2026-11-22T03:04:05.250Z", None) == 1795316645250
    assert event_time_ms(None, "2026-11-22T03:04:05Z") == 1795316645000
    with pytest.raises(InvalidRequest, match=r"detail\.LastModifiedTime"):
        event_time_ms("yesterday", None)


def test_default_maximum_is_caps_times_units_and_uncapped_is_the_engine_limit() -> None:
    settings = Settings.from_env({"TABLE_NAME": "meta"})
    capped = validate_server_config(
        {"servers": ["1", "2"], "weights": [1, 1], "capacity_units": [1, 4], "max_instance_count": [3, 2]}
    )
    assert capacity_bounds(settings, capped) == (0, 11)
    uncapped = validate_server_config({"servers": ["1", "2"], "weights": [1, 1], "max_instance_count": [3, None]})
    assert capacity_bounds(settings, uncapped) == (0, ENGINE_MAX_CAPACITY)
    explicit = Settings.from_env({"TABLE_NAME": "meta", "MIN_CAPACITY": "1", "MAX_CAPACITY": "40"})
    assert capacity_bounds(explicit, capped) == (1, 40)
