"""The metadata store's optimistic locking on server_config, and the router's counter."""

from __future__ import annotations

import boto3
import pytest

from fleetscaler.dal.router_table import get_router_table
from fleetscaler.dal.store import get_store
from fleetscaler.errors import ConcurrentModification, ConfigurationUnusable
from tests.conftest import TABLE


def test_conditional_update_bumps_version_and_refuses_stale_writers(table: str) -> None:
    # Given the seed config at version 1
    store = get_store()
    read = store.get_versioned_server_config()
    assert read is not None and read.version == 1
    # When one writer updates the weights
    assert store.update_server_config({"weights": [2, 1, 1]}, expected_version=1) == 2
    # Then a second writer holding version 1 is refused and nothing of its change lands
    with pytest.raises(ConcurrentModification, match="changed since version 1"):
        store.update_server_config({"weights": [9, 9, 9]}, expected_version=1)
    after = store.get_versioned_server_config()
    assert after is not None and (after.config["weights"], after.version) == ([2, 1, 1], 2)


def test_router_counter_does_not_conflict_with_config_writers(table: str) -> None:
    store, router = get_store(), get_router_table()
    router.next_route()
    router.next_route()
    assert store.update_server_config({"strategy": "prioritized"}, expected_version=1) == 2
    assert router.next_route().counter == 2


def test_the_router_reads_the_config_as_the_engine_does(table: str) -> None:
    # Given server_config with every attribute the router hands on, numbers whole and not
    boto3.resource("dynamodb").Table(TABLE).update_item(
        Key={"id": "server_config"},
        UpdateExpression="SET #routing = :routing, draining_since = :since, draining = :draining",
        ExpressionAttributeNames={"#routing": "routing"},
        ExpressionAttributeValues={
            ":routing": {"backlog": [3, 0, 1], "counter": 7, "at": __import__("decimal").Decimal("1.5")},
            ":since": [["2", 1764640800]],
            ":draining": ["2"],
        },
    )
    # When the router takes a ticket / Then it sees what the pynamodb store reads, value for value
    ticket = get_router_table().next_route()
    assert ticket.config == get_store().get_server_config()
    assert ticket.config["routing"] == {"backlog": [3, 0, 1], "counter": 7, "at": 1.5}


def test_a_router_attribute_of_the_wrong_dynamodb_type_is_named(table: str) -> None:
    # Given weights written as a string by a hand edit
    boto3.resource("dynamodb").Table(TABLE).update_item(
        Key={"id": "server_config"}, UpdateExpression="SET weights = :w", ExpressionAttributeValues={":w": "5,3,2"}
    )
    # When the router reads it / Then the config is unusable, naming the attribute and both types
    with pytest.raises(ConfigurationUnusable, match=r"server_config.weights is stored as S, expected L"):
        get_router_table().next_route()


def test_unversioned_seed_item_can_be_claimed_once(seed_sample_table: str) -> None:
    store = get_store()
    assert store.update_server_config({"weights": [1, 1, 1]}, expected_version=None) == 1
    with pytest.raises(ConcurrentModification):
        store.update_server_config({"weights": [0, 0, 1]}, expected_version=None)


def test_none_removes_an_optional_attribute(table: str) -> None:
    store = get_store()
    store.update_server_config({"max_instance_count": None}, expected_version=1)
    read = store.get_versioned_server_config()
    assert read is not None and "max_instance_count" not in read.config


def test_a_counter_value_goes_back_only_while_no_later_one_was_taken(table: str) -> None:
    # Given two requests that took values 0 and 1, both failing
    router = get_router_table()
    first, second = router.next_route(), router.next_route()
    # When the first gives its value back / Then it cannot: value 1 is taken, going back would hand it out twice
    assert router.give_back_route(first) is False
    # When the second gives its value back / Then it can: the next request takes 1 again, as if it never came
    assert router.give_back_route(second) is True
    assert router.give_back_route(second) is False  # and only once
    assert router.next_route().counter == 1
    # And config writers are not disturbed: the version is untouched
    read = get_store().get_versioned_server_config()
    assert read is not None and read.version == 1
