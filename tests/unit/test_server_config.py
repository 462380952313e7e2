"""server_config validation: every rule, messages a person can act on."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetscaler.errors import InvalidServerConfig, NoEndpointAvailable
from fleetscaler.logic.server_config import KNOWN_ATTRIBUTES, validate_routing_config, validate_server_config


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
    # A null stands for a missing attribute, in both views (it used to end in an AssertionError)
    assert problems_of(valid(weights=None)) == ["weights: is required (one whole number >= 0 per server)"]
    with pytest.raises(InvalidServerConfig, match="weights: is required"):
        validate_routing_config(valid(weights=None))


def test_endpoint_name_longer_than_sagemaker_allows() -> None:
    problems = problems_of(valid(servers=["1", "2", "x" * 60]), resource_name="endpoint")
    assert any("longer than 63 characters" in p for p in problems)


def test_all_problems_reported_at_once() -> None:
    problems = problems_of(valid(weights=[1, -1, 2], capacity_units=[0, 1, 1]))
    assert len(problems) == 2


def test_large_weights_are_valid() -> None:
    # Weights adding up to a million route with a bounded period (see test_wrr), so they are not refused.
    assert validate_server_config(valid(weights=[500_000, 499_999, 1])).weights == (500_000, 499_999, 1)


@pytest.mark.parametrize(
    ("overrides", "engine_problem"),
    [
        ({"strategy": "balancd"}, "strategy: must be one of balanced, prioritized, race, got 'balancd'"),
        ({"capacity_units": [0, 1, 1]}, "capacity_units[0]: must be a whole number >= 1, got 0"),
        ({"max_instance_count": [1, "x", 1]}, "max_instance_count[1]: must be a whole number >= 0, got 'x'"),
        (
            {"max_instance_count": [1, 1]},
            "max_instance_count: has 2 entries but servers has 3 (one per server, same order)",
        ),
        ({"current_instance_count": [1, -1, 1]}, "current_instance_count[1]: must be a whole number >= 0, got -1"),
    ],
)
def test_an_engine_only_mistake_leaves_the_routing_view_valid(
    overrides: dict[str, object], engine_problem: str
) -> None:
    # Given a config whose only mistake is in an attribute the router does not use
    raw = valid(**overrides)
    # Then the full validation reports it, and the router's view is valid and routes by the weights
    assert engine_problem in problems_of(raw)
    routing = validate_routing_config(raw, "endpoint")
    assert routing.routing_weights == (5, 3, 2)


def test_the_router_keeps_the_valid_cap_entries() -> None:
    # Given endpoint 1 capped at 0 and a broken cap on endpoint 2, every weight 0 (a fleet at zero)
    routing = validate_routing_config(valid(weights=[0, 0, 0], max_instance_count=[0, -5, None]), "endpoint")
    # Then requests wait on endpoint 2: the broken cap is no reason to skip it
    assert routing.max_instance_count == (0, None, None)
    assert routing.choose(7, "endpoint").primary == 1


def test_unknown_attributes_are_reported_with_the_likely_name() -> None:
    # Given a hand edit that misspelt an optional attribute (so it would otherwise just be missing)
    raw = valid(capacity_unit=[1, 2, 4], zzz=1)
    # Then the full validation names each unknown attribute, the router's view does not care
    assert problems_of(raw) == [
        "capacity_unit: is not an attribute of server_config (did you mean capacity_units?)",
        "zzz: is not an attribute of server_config (known: " + ", ".join(KNOWN_ATTRIBUTES) + ")",
    ]
    assert validate_routing_config(raw).servers == ("1", "2", "3")


def test_the_items_own_bookkeeping_attributes_are_known() -> None:
    raw = valid(id="server_config", request_count=12, config_version=3, draining_since=[["3", 1700000000]])
    assert validate_server_config(raw).extra == {
        "id": "server_config",
        "request_count": 12,
        "config_version": 3,
        "draining_since": [["3", 1700000000]],
    }


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        (
            {"draining": ["1", "2", "3"]},
            "endpoint-1 is draining; endpoint-2 is draining; endpoint-3 is draining",
        ),
        (
            {"weights": [0, 0, 0], "draining": ["1", "3"], "max_instance_count": [None, 0, None]},
            "endpoint-1 is draining; endpoint-2 is capped at 0 instances (max_instance_count); endpoint-3 is draining",
        ),
    ],
)
def test_no_endpoint_taking_requests_is_refused_with_the_reason(overrides: dict[str, object], reason: str) -> None:
    routing = validate_routing_config(valid(**overrides), "endpoint")
    with pytest.raises(NoEndpointAvailable) as caught:
        routing.choose(0, "endpoint")
    assert caught.value.message == f"no endpoint of the fleet takes requests: {reason}"


def test_a_fleet_at_zero_waits_on_the_wake_up_endpoint_with_no_fallback() -> None:
    routing = validate_routing_config(valid(weights=[0, 0, 0], draining=["1"]), "endpoint")
    assert (routing.choose(3, "endpoint").primary, routing.choose(3, "endpoint").fallback) == (1, None)


# Values a hand edit might leave in each attribute: valid ones, wrong types, wrong lengths, out of range.
_values = st.one_of(
    st.none(),
    st.integers(-2, 3),
    st.text(alphabet="12ab -", max_size=3),
    st.lists(st.one_of(st.integers(-1, 3), st.sampled_from(["1", "2", "x", None]), st.just(1.5)), max_size=4),
)
_raw_configs = st.dictionaries(st.sampled_from([*KNOWN_ATTRIBUTES, "wieghts"]), _values, max_size=8)


@settings(max_examples=300, deadline=None)
@given(raw=_raw_configs)
def test_the_router_refuses_only_what_the_full_validation_refuses_and_in_the_same_words(raw: dict[str, Any]) -> None:
    # Given any config, however broken
    routing_problems: list[str] = []
    full_problems: list[str] = []
    try:
        validate_routing_config(raw, "endpoint")
    except InvalidServerConfig as exc:
        routing_problems = exc.problems
    try:
        validate_server_config(raw, "endpoint")
    except InvalidServerConfig as exc:
        full_problems = exc.problems
    # Then every problem the router reports is one the full validation reports word for word
    assert set(routing_problems) <= set(full_problems)
    # And the router reports exactly the problems of the attributes it reads
    routing_names = ("servers", "weights", "draining")
    assert routing_problems == [p for p in full_problems if p.split("[")[0].split(":")[0] in routing_names]


def test_the_known_attributes_are_exactly_those_of_the_table_item() -> None:
    # The validation and the pynamodb model must not drift apart: a new attribute is added to both
    from fleetscaler.dal.models import ServerConfigItem

    assert set(ServerConfigItem.get_attributes()) == set(KNOWN_ATTRIBUTES)
