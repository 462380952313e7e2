"""The full loop under moto: PATCH -> updates -> events / GETs -> Successful -> routing weights.

SageMaker is moto's, with the `ProvisioningSageMaker` patch (see conftest): an update leaves the endpoint
Updating until the test completes it, as the real service does; moto alone would finish it instantly.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from fleetscaler.handlers import endpoint_state, scaling_api
from tests.integration.scaling.conftest import ProvisioningSageMaker, scaling_event, set_config, table_item


def api(
    method: str, context: Any, body: Any = None, dimension_id: str = "custom-resource:ResourceType:Property"
) -> tuple[int, dict[str, Any]]:
    response = scaling_api.handler(scaling_event(method, body, dimension_id), context)
    return response["statusCode"], json.loads(response["body"])


def patch(context: Any, desired: Any) -> dict[str, Any]:
    status, body = api("PATCH", context, {"desiredCapacity": desired})
    assert status == 200, body
    return body


def get(context: Any) -> dict[str, Any]:
    status, body = api("GET", context)
    assert status == 200, body
    return body


def deliver(events: list[dict[str, Any]], context: Any) -> list[dict[str, Any]]:
    return [endpoint_state.handler(event, context) for event in events]


def weights() -> list[int]:
    return [int(w) for w in table_item("server_config")["weights"]]


def test_scale_out_with_events(fleet: ProvisioningSageMaker, lambda_context: Any) -> None:
    # Given 3 endpoints x 1 instance, Successful at 3
    assert get(lambda_context)["scalingStatus"] == "Successful"
    # When Application Auto Scaling asks for 6 (a float, as it sends it)
    body = patch(lambda_context, 6.0)
    # Then it answers with the new desired value, updates went out to all endpoints at once, InProgress
    assert body["desiredCapacity"] == 6
    assert body["actualCapacity"] == 3
    assert body["scalingStatus"] == "InProgress"
    assert sorted(fleet.calls) == [("endpoint-1", 2), ("endpoint-2", 2), ("endpoint-3", 2)]
    assert "failureReason" not in body
    # When two endpoints finish and their events arrive
    deliver([fleet.complete("endpoint-1"), fleet.complete("endpoint-2")], lambda_context)
    # Then weights follow the capacity that serves or is on its way: 2,2,2 (the updating endpoint serves its 1
    # and has one more coming, counted behind its target backlog in the routing snapshot)
    assert weights() == [1, 1, 1]
    assert [int(a) for a in table_item("server_config")["routing"]["ahead"]] == [0, 0, 5]
    assert get(lambda_context)["scalingStatus"] == "InProgress"
    # When the last one finishes
    result = deliver([fleet.complete("endpoint-3")], lambda_context)[0]
    # Then the scaling is Successful at 6 with even weights, and nothing more was asked of SageMaker
    assert result["handled"] and result["scalingStatus"] == "Successful"
    final = get(lambda_context)
    assert (final["scalingStatus"], final["actualCapacity"], final["desiredCapacity"]) == ("Successful", 6, 6)
    assert weights() == [1, 1, 1]
    assert [int(n) for n in table_item("server_config")["current_instance_count"]] == [2, 2, 2]
    assert len(fleet.calls) == 3


def test_scale_in_removes_where_there_is_most(fleet: ProvisioningSageMaker, lambda_context: Any) -> None:
    # Given the fleet at 3,2,1 instances
    patch(lambda_context, 6)
    for name, count in (("endpoint-1", 3), ("endpoint-2", 2), ("endpoint-3", 1)):
        fleet.complete(name, reached=count)
    get(lambda_context)
    fleet.calls.clear()
    # When desired drops to 4
    assert patch(lambda_context, 4)["scalingStatus"] == "InProgress"
    # Then instances go from the fullest endpoint only
    assert fleet.calls == [("endpoint-1", 2), ("endpoint-2", 1)]
    fleet.complete_all()
    final = get(lambda_context)
    assert (final["scalingStatus"], final["actualCapacity"]) == ("Successful", 4)
    assert fleet.counts() == {"endpoint-1": 2, "endpoint-2": 1, "endpoint-3": 1}
    assert weights() == [2, 1, 1]


def test_lost_events_gets_alone_converge(fleet: ProvisioningSageMaker, lambda_context: Any) -> None:
    # Given a scale-out to 5 whose events are all lost
    patch(lambda_context, 5)
    fleet.complete_all()
    # When Application Auto Scaling polls / Then the GET sees the endpoints InService and reports Successful
    final = get(lambda_context)
    assert (final["scalingStatus"], final["actualCapacity"]) == ("Successful", 5)
    assert sum(fleet.counts().values()) == 5
    assert sorted(weights()) == [1, 2, 2]


def test_patch_during_in_progress_is_recorded_and_wins(fleet: ProvisioningSageMaker, lambda_context: Any) -> None:
    # Given a scale-out to 6 in progress
    patch(lambda_context, 6)
    # When a new desired 9 arrives while every endpoint is still Updating
    body = patch(lambda_context, 9)
    # Then it is accepted and recorded at once; the updating endpoints cannot take it yet
    assert (body["desiredCapacity"], body["scalingStatus"]) == (9, "InProgress")
    assert int(table_item("custom-resource:ResourceType:Property")["desiredCapacity"]) == 9
    assert len(fleet.calls) == 3
    # When the first updates finish / Then the queued part of the plan goes out
    deliver(fleet.complete_all(), lambda_context)
    assert sorted(fleet.calls[3:]) == [("endpoint-1", 3), ("endpoint-2", 3), ("endpoint-3", 3)]
    deliver(fleet.complete_all(), lambda_context)
    final = get(lambda_context)
    assert (final["scalingStatus"], final["actualCapacity"], final["desiredCapacity"]) == ("Successful", 9, 9)


def test_repeated_patch_is_a_no_op(fleet: ProvisioningSageMaker, lambda_context: Any) -> None:
    # Given a scaling to 6 in progress
    patch(lambda_context, 6)
    before = table_item("custom-resource:ResourceType:Property")
    # When Application Auto Scaling repeats the same call
    body = patch(lambda_context, 6.0)
    # Then nothing new is issued or recorded
    assert body["scalingStatus"] == "InProgress"
    assert len(fleet.calls) == 3
    after = table_item("custom-resource:ResourceType:Property")
    assert after["lockVersion"] == before["lockVersion"]


def test_scale_to_zero_and_back(fleet: ProvisioningSageMaker, lambda_context: Any) -> None:
    # When desired goes to 0 / Then every endpoint goes to 0 instances and the fleet reports Successful
    patch(lambda_context, 0)
    deliver(fleet.complete_all(), lambda_context)
    final = get(lambda_context)
    assert (final["scalingStatus"], final["actualCapacity"]) == ("Successful", 0)
    assert weights() == [0, 0, 0]
    # When the backlog wakes it with desired 1 / Then the first endpoint (where requests queue) gets it
    fleet.calls.clear()
    patch(lambda_context, 1)
    assert fleet.calls == [("endpoint-1", 1)]
    deliver(fleet.complete_all(), lambda_context)
    assert get(lambda_context)["scalingStatus"] == "Successful"
    assert weights() == [1, 0, 0]


def test_update_that_ends_below_target_fails_over(fleet: ProvisioningSageMaker, lambda_context: Any) -> None:
    # Given a scale-out to 6
    patch(lambda_context, 6)
    # When endpoint-1 rolls back to 1 instance (no capacity) and the others succeed
    events = [
        fleet.complete("endpoint-1", reached=1, failure="CapacityError: Unable to provision requested ML compute"),
        fleet.complete("endpoint-2"),
        fleet.complete("endpoint-3"),
    ]
    deliver(events, lambda_context)
    # Then its missing instance is placed on another endpoint
    assert fleet.calls[3:] == [("endpoint-2", 3)]
    deliver(fleet.complete_all(), lambda_context)
    final = get(lambda_context)
    assert (final["scalingStatus"], final["actualCapacity"]) == ("Successful", 6)
    assert fleet.counts() == {"endpoint-1": 1, "endpoint-2": 3, "endpoint-3": 2}
    state = json.loads(table_item("custom-resource:ResourceType:Property")["scalingState"])
    assert "CapacityError" in state["endpoints"]["1"]["unavailable_reason"]


def test_failed_endpoint_gets_weight_zero_and_others_absorb(fleet: ProvisioningSageMaker, lambda_context: Any) -> None:
    # Given a scale-out to 6 where endpoint-3 ends Failed
    patch(lambda_context, 6)
    deliver([fleet.complete("endpoint-3", failure="ClientError: container crashed")], lambda_context)
    # Then it gets weight 0 and its share goes to the others
    assert weights()[2] == 0
    deliver(fleet.complete_all(), lambda_context)
    assert sorted(fleet.calls[3:]) == [("endpoint-1", 3), ("endpoint-2", 3)]
    deliver(fleet.complete_all(), lambda_context)
    final = get(lambda_context)
    assert (final["scalingStatus"], final["actualCapacity"]) == ("Successful", 6)
    assert weights() == [1, 1, 0]


def test_quota_error_on_update_fails_over_at_once(fleet: ProvisioningSageMaker, lambda_context: Any) -> None:
    # Given endpoint-2 at its instance quota
    fleet.refuse_next["endpoint-2"] = "ResourceLimitExceeded"
    # When scaling to 6 / Then endpoint-2 is backed off and the others get their updates
    body = patch(lambda_context, 6)
    assert body["scalingStatus"] == "InProgress"
    assert sorted(fleet.calls) == [("endpoint-1", 2), ("endpoint-3", 2)]
    # And endpoint-2's share goes to an other endpoint as soon as it can take an update
    deliver(fleet.complete_all(), lambda_context)
    assert len(fleet.calls) == 3 and fleet.calls[2][1] == 3 and fleet.calls[2][0] != "endpoint-2"
    deliver(fleet.complete_all(), lambda_context)
    final = get(lambda_context)
    assert (final["scalingStatus"], final["actualCapacity"]) == ("Successful", 6)
    assert fleet.counts()["endpoint-2"] == 1


def test_not_enough_capacity_left_places_the_most_and_succeeds(
    fleet: ProvisioningSageMaker, lambda_context: Any
) -> None:
    # Given caps of 2 per endpoint and endpoint-1 Failed after a scale-out to 6
    set_config(max_instance_count=[2, 2, 2])
    patch(lambda_context, 6)
    deliver([fleet.complete("endpoint-1", failure="ClientError: container crashed")], lambda_context)
    body = get(lambda_context)
    # Then the scaling is not Failed: the others carry what they can
    assert body["scalingStatus"] == "InProgress"
    # When they finish / Then it is Successful at the 4 units the endpoints can give, desired stays 6
    deliver(fleet.complete_all(), lambda_context)
    body = get(lambda_context)
    assert (body["scalingStatus"], body["actualCapacity"], body["desiredCapacity"]) == ("Successful", 4, 6)
    assert "failureReason" not in body


def test_desired_above_the_caps_is_accepted_and_the_most_is_placed(
    fleet: ProvisioningSageMaker, lambda_context: Any
) -> None:
    # Given caps 10 x 3 endpoints (30 units) / When Application Auto Scaling asks for 40
    body = patch(lambda_context, 40)
    # Then it is recorded, every endpoint goes to its cap, and the activity is not refused
    assert (body["desiredCapacity"], body["scalingStatus"]) == (40, "InProgress")
    assert sorted(fleet.calls) == [("endpoint-1", 10), ("endpoint-2", 10), ("endpoint-3", 10)]
    deliver(fleet.complete_all(), lambda_context)
    body = get(lambda_context)
    assert (body["scalingStatus"], body["actualCapacity"], body["desiredCapacity"]) == ("Successful", 30, 40)
    # When it scales in again / Then normally
    patch(lambda_context, 12)
    deliver(fleet.complete_all(), lambda_context)
    assert get(lambda_context)["actualCapacity"] == 12


def test_patch_while_server_config_is_invalid_is_recorded_and_converges_once_fixed(
    fleet: ProvisioningSageMaker, lambda_context: Any
) -> None:
    # Given a typo in server_config
    set_config(weights=[1, -1, 1])
    # When Application Auto Scaling asks for 6
    body = patch(lambda_context, 6)
    # Then the desired capacity is recorded, and the scaling says Failed naming the field
    assert (body["desiredCapacity"], body["scalingStatus"]) == (6, "Failed")
    assert "weights[1]: must be a whole number >= 0, got -1" in body["failureReason"]
    assert int(table_item("custom-resource:ResourceType:Property")["desiredCapacity"]) == 6
    status, answer = api("GET", lambda_context)
    assert status == 200 and answer["scalingStatus"] == "Failed"
    assert fleet.calls == []
    # When the config is fixed / Then the next GET carries the plan out and it converges
    set_config(weights=[1, 1, 1])
    assert get(lambda_context)["scalingStatus"] == "InProgress"
    deliver(fleet.complete_all(), lambda_context)
    final = get(lambda_context)
    assert (final["scalingStatus"], final["actualCapacity"]) == ("Successful", 6)


def test_timeout_fails_the_scaling(fleet: ProvisioningSageMaker, lambda_context: Any, manual_clock: Any) -> None:
    # Given a scale-out whose endpoints never finish
    patch(lambda_context, 6)
    # When 25 minutes pass / Then the scaling is Failed with the reason
    manual_clock.advance(1501)
    body = get(lambda_context)
    assert body["scalingStatus"] == "Failed"
    assert "did not finish within 1500 seconds" in body["failureReason"]


def test_duplicate_and_out_of_order_events_change_nothing(fleet: ProvisioningSageMaker, lambda_context: Any) -> None:
    # Given a scale-out where endpoint-1 rolled back (an older ROLLING_BACK event) then went InService
    patch(lambda_context, 6)
    rolling_back = fleet.event("endpoint-1", "ROLLING_BACK")
    in_service = fleet.complete("endpoint-1")
    # When the newer event arrives, then again, then the older one
    first = endpoint_state.handler(in_service, lambda_context)
    before = table_item("custom-resource:ResourceType:Property")
    again = endpoint_state.handler(in_service, lambda_context)
    late = endpoint_state.handler(rolling_back, lambda_context)
    # Then only the first is applied; the repeat and the late one change nothing (no back-off either)
    assert first["handled"] is True
    assert again["handled"] is False and late["handled"] is False
    assert table_item("custom-resource:ResourceType:Property") == before
    assert json.loads(before["scalingState"])["endpoints"]["1"]["unavailable_until"] == 0


def test_events_of_other_endpoints_are_ignored(fleet: ProvisioningSageMaker, lambda_context: Any) -> None:
    event = fleet.event("endpoint-1")
    event["detail"]["EndpointName"] = "other-model-1"
    before = table_item("custom-resource:ResourceType:Property")
    result = endpoint_state.handler(event, lambda_context)
    assert result == {"handled": False, "reason": "endpoint 'other-model-1' is not in fleet 'endpoint'"}
    assert table_item("custom-resource:ResourceType:Property") == before
    assert endpoint_state.handler({"detail-type": "Something else", "detail": {}}, lambda_context)["handled"] is False


@pytest.mark.parametrize("strategy", ["prioritized", "race"])
def test_other_strategies_converge(fleet: ProvisioningSageMaker, lambda_context: Any, strategy: str) -> None:
    # Given the strategy chosen in server_config, at most 3 instances per endpoint
    set_config(strategy=strategy, max_instance_count=[3, 3, 3])
    # When scaling to 5 and endpoints finishing (race: endpoint-3 first)
    patch(lambda_context, 5)
    if strategy == "race":
        # Then every endpoint was asked for the whole shortfall of 2
        assert sorted(fleet.calls) == [("endpoint-1", 3), ("endpoint-2", 3), ("endpoint-3", 3)]
        deliver([fleet.complete("endpoint-3")], lambda_context)
    deliver(fleet.complete_all(), lambda_context)
    deliver(fleet.complete_all(), lambda_context)
    final = get(lambda_context)
    assert (final["scalingStatus"], final["actualCapacity"]) == ("Successful", 5)
    if strategy == "prioritized":
        # Then the first endpoints are filled up to their cap, in servers order
        assert fleet.counts() == {"endpoint-1": 3, "endpoint-2": 2, "endpoint-3": 0}
    else:
        # Then the first to arrive kept its capacity and the late arrivals were trimmed
        assert fleet.counts()["endpoint-3"] == 3
        assert sum(fleet.counts().values()) == 5


def test_draining_an_endpoint_moves_its_share(fleet: ProvisioningSageMaker, lambda_context: Any) -> None:
    # Given a settled fleet of 3 x 1 instance
    assert get(lambda_context)["scalingStatus"] == "Successful"
    # When an operator drains endpoint-2 (max_instance_count 0) and AAS polls
    set_config(max_instance_count=[10, 0, 10])
    body = get(lambda_context)
    # Then a replacement is asked for on another endpoint first
    assert body["scalingStatus"] == "InProgress"
    assert fleet.calls == [("endpoint-1", 2)]
    # And endpoint-2's instance is retired only once the replacement serves: capacity never drops below 3
    deliver(fleet.complete_all(), lambda_context)
    assert fleet.calls[1:] == [("endpoint-2", 0)]
    assert get(lambda_context)["actualCapacity"] == 4
    deliver(fleet.complete_all(), lambda_context)
    final = get(lambda_context)
    assert (final["scalingStatus"], final["actualCapacity"]) == ("Successful", 3)
    assert weights() == [2, 0, 1]


def test_a_corrupted_engine_record_is_dropped_with_a_warning_and_rebuilt(
    fleet: ProvisioningSageMaker, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the engine's memory on the dimension item broken by hand (a timestamp written as text)
    warnings: list[str] = []
    monkeypatch.setattr(scaling_api.logger, "warning", lambda message, *_, **__: warnings.append(message))
    boto3.resource("dynamodb").Table("fleetscaler-test").update_item(
        Key={"id": "custom-resource:ResourceType:Property"},
        UpdateExpression="SET scalingState = :s",
        ExpressionAttributeValues={":s": '{"startedAt": 1, "endpoints": {"1": {"unavailable_until": "tomorrow"}}}'},
    )
    # When Application Auto Scaling polls and then scales out
    body = get(lambda_context)
    # Then it answers 200, says what it dropped, and works from what SageMaker shows
    assert body["scalingStatus"] == "Successful" and body["actualCapacity"] == 3
    assert any("endpoints.1: unavailable_until" in w and "rebuilt from SageMaker" in w for w in warnings)
    assert patch(lambda_context, 6)["scalingStatus"] == "InProgress"
    assert sorted(fleet.calls) == [("endpoint-1", 2), ("endpoint-2", 2), ("endpoint-3", 2)]
