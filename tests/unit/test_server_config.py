"""server_config validation: every rule, messages a person can act on."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fleetscaler.errors import InvalidServerConfig
from fleetscaler.logic.server_config import validate_server_config


def valid(**overrides: object) -> dict[str, object]:
    raw: dict[str, object] = {"servers": ["1", "2", "3"], "weights": [5, 3, 2], "current_instance_count": [1, 1, 1]}
    raw.update(overrides)
    return raw


def problems_of(raw: dict[str, object], resource_name: str | None = "endpoint") -> list[str]:
    with pytest.raises(InvalidServerConfig) as caught:
        validate_server_config(raw, resource_name)
    return caught.value.problems


def test_seed_layout_is_valid_and_gets_defaults() -> None:
    config = validate_server_config(valid(weights=[Decimal(0), 0.0, 1]), "endpoint")
    assert config.weights == (0, 0, 1)
    assert config.capacity_units == (1, 1, 1)
    assert config.max_instance_count == (None, None, None)
    assert config.strategy == "balanced"
    assert config.endpoint_names("endpoint") == ["endpoint-1", "endpoint-2", "endpoint-3"]


def test_new_optional_lists_are_read() -> None:
    config = validate_server_config(valid(capacity_units=[1, 2, 4], max_instance_count=[4, 2, None]))
    assert config.capacity_units == (1, 2, 4)
    assert config.max_instance_count == (4, 2, None)
    assert config.capacity == 7


def test_draining_endpoints_take_no_requests_and_move_the_wake_up() -> None:
    # Given endpoint 1 draining and endpoint 2 capped at 0
    config = validate_server_config(valid(draining=[Decimal(1)], max_instance_count=[None, 0, None]))
    # Then only endpoint 3 takes requests, so a fleet at zero queues them there
    assert config.draining == frozenset({"1"})
    assert [config.takes_requests(i) for i in range(3)] == [False, False, True]
    assert config.wake_up_index == 2
    # And without draining the first endpoint is the wake-up one, as in the seed sample
    assert validate_server_config(valid()).wake_up_index == 0


def test_numeric_server_suffixes_are_accepted_as_strings() -> None:
    assert validate_server_config(valid(servers=[1, 2, 3])).servers == ("1", "2", "3")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"weights": [1, 2]}, "weights: has 2 entries but servers has 3"),
        ({"weights": [1, -1, 2]}, "weights[1]: must be a whole number >= 0, got -1"),
        ({"weights": [1, 1.5, 2]}, "weights[1]: must be a whole number >= 0, got 1.5"),
        ({"weights": [1, True, 2]}, "weights[1]: must be a whole number >= 0"),
        ({"servers": ["1", "1", "3"]}, "servers[1]: '1' appears more than once"),
        ({"servers": ["1", "a b", "3"]}, "servers[1]: 'a b' is not valid in a SageMaker endpoint name"),
        ({"servers": ["1", "-2", "3"]}, "servers[1]: '-2' is not valid"),
        ({"servers": []}, "servers: must be a non-empty list"),
        ({"servers": "1,2,3"}, "servers: must be a non-empty list"),
        ({"capacity_units": [1, 0, 1]}, "capacity_units[1]: must be a whole number >= 1, got 0"),
        ({"max_instance_count": [1, -1, 1]}, "max_instance_count[1]: must be a whole number >= 0, got -1"),
        ({"current_instance_count": [1, 1]}, "current_instance_count: has 2 entries"),
        ({"strategy": "cheapest"}, "strategy: must be one of balanced, prioritized, race, got 'cheapest'"),
        ({"draining": "3"}, "draining: must be a list of server suffixes"),
        ({"draining": ["4"]}, "draining[0]: '4' is not one of servers (1, 2, 3)"),
        ({"draining": ["3", "3"]}, "draining[1]: '3' appears more than once"),
    ],
)
def test_each_rule_names_the_field(overrides: dict[str, object], expected: str) -> None:
    assert any(expected in p for p in problems_of(valid(**overrides))), problems_of(valid(**overrides))


def test_missing_weights_is_reported() -> None:
    raw = valid()
    del raw["weights"]
    assert "weights: is required (one whole number >= 0 per server)" in problems_of(raw)


def test_endpoint_name_longer_than_sagemaker_allows() -> None:
    problems = problems_of(valid(servers=["1", "2", "x" * 60]), resource_name="endpoint")
    assert any("longer than 63 characters" in p for p in problems)


def test_all_problems_reported_at_once() -> None:
    problems = problems_of(valid(weights=[1, -1, 2], capacity_units=[0, 1, 1]))
    assert len(problems) == 2


def test_large_weights_are_valid() -> None:
    # Weights adding up to a million route with a bounded period (see test_wrr), so they are not refused.
    assert validate_server_config(valid(weights=[500_000, 499_999, 1])).weights == (500_000, 499_999, 1)
