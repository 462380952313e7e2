"""The router when the fleet or SageMaker cannot take a request: engine-only config mistakes, every endpoint
leaving, endpoints refusing. What is retried, what the caller hears, and what the counter keeps."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import call_router, request_count, set_config

NOT_FOUND = ("ValidationError", "Endpoint {name} of account 123456789012 not found.")
THROTTLED = ("ThrottlingException", "Rate exceeded")
INTERNAL = ("InternalFailure", "An internal error occurred")  # may have been queued: never sent elsewhere


class FlakySageMaker:
    """The router's real SageMaker runtime client (moto), with endpoints that answer an error instead."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from fleetscaler.aws.sagemaker import runtime_client

        client = runtime_client()
        self._invoke = client.invoke_endpoint_async
        self.errors: dict[str, tuple[str, str]] = {}
        self.attempts: list[str] = []
        monkeypatch.setattr(client, "invoke_endpoint_async", self)

    def __call__(self, **params: Any) -> Any:
        name = params["EndpointName"]
        self.attempts.append(name)
        if name in self.errors:
            code, message = self.errors[name]
            raise ClientError({"Error": {"Code": code, "Message": message.format(name=name)}}, "InvokeEndpointAsync")
        return self._invoke(**params)


@pytest.fixture
def sagemaker(table: str, monkeypatch: pytest.MonkeyPatch) -> FlakySageMaker:
    return FlakySageMaker(monkeypatch)


def routed_to(event: dict[str, Any], context: Any) -> str:
    status, body, _ = call_router(event, context)
    assert status == 202, body
    return str(body["endpointName"])


@pytest.mark.parametrize(
    "mistake",
    [
        {"strategy": "balancd"},
        {"capacity_units": [0, 1, 1]},
        {"max_instance_count": ["ten", 10, 10]},
        {"current_instance_count": [1, 1]},
    ],
)
def test_a_mistake_in_an_attribute_only_the_engine_uses_does_not_stop_routing(
    sagemaker: FlakySageMaker, router_event: Any, lambda_context: Any, mistake: dict[str, Any]
) -> None:
    # Given a hand edit that broke an attribute only the scaling engine reads (weights 1,1,1 are fine)
    set_config(**mistake)
    # When requests arrive / Then they are routed by the weights as before
    assert [routed_to(router_event(), lambda_context) for _ in range(3)] == ["endpoint-1", "endpoint-2", "endpoint-3"]


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({"draining": ["1", "2", "3"]}, "endpoint-1 is draining; endpoint-2 is draining; endpoint-3 is draining"),
        (
            {"weights": [0, 0, 0], "draining": ["1", "2"], "max_instance_count": [10, 10, 0]},
            "endpoint-1 is draining; endpoint-2 is draining; endpoint-3 is capped at 0 instances (max_instance_count)",
        ),
    ],
)
def test_no_endpoint_taking_requests_is_503_naming_the_reason_and_costs_no_counter(
    sagemaker: FlakySageMaker, router_event: Any, lambda_context: Any, config: dict[str, Any], reason: str
) -> None:
    # Given every endpoint on its way out
    set_config(**config)
    # When a request arrives / Then it is refused with the reason, nothing is queued on a leaving endpoint
    status, body, _ = call_router(router_event(), lambda_context)
    assert (status, body) == (503, {"message": f"no endpoint of the fleet takes requests: {reason}"})
    assert sagemaker.attempts == []
    # And its counter value was given back
    assert request_count() == 0


def test_an_endpoint_that_refuses_sends_the_request_to_the_next_one_for_one_dynamodb_call(
    sagemaker: FlakySageMaker,
    router_event: Any,
    lambda_context: Any,
    lambda_output: Any,
    dynamodb_calls: list[str],
) -> None:
    # Given weights 1,1,1 and endpoint-1 deleted behind the fleet's back
    sagemaker.errors["endpoint-1"] = NOT_FOUND
    # When the request whose turn is endpoint-1 arrives
    endpoint = routed_to(router_event(), lambda_context)
    # Then it is queued on the next endpoint of the sequence, with one DynamoDB call as always
    assert (endpoint, sagemaker.attempts) == ("endpoint-2", ["endpoint-1", "endpoint-2"])
    assert dynamodb_calls == ["UpdateItem"]
    # And its counter value is spent (the request was served), the next request takes the next turn
    assert request_count() == 1
    assert routed_to(router_event(), lambda_context) == "endpoint-2"
    # And the refusal is a WARNING naming the endpoint and SageMaker's reason, and a metric per endpoint
    lines = [json.loads(line) for line in lambda_output().splitlines() if line.startswith("{")]
    (refused,) = [line for line in lines if line.get("message") == "endpoint refused the request; sent to the next one"]
    assert (refused["level"], refused["refused_by"]) == ("WARNING", "endpoint-1")
    assert "Endpoint endpoint-1 of account 123456789012 not found." in refused["reason"]
    assert [line["EndpointName"] for line in lines if "RefusedRequests" in line] == ["endpoint-1"]


def test_a_throttled_endpoint_sends_the_request_to_the_next_one(
    sagemaker: FlakySageMaker, router_event: Any, lambda_context: Any
) -> None:
    sagemaker.errors["endpoint-1"] = THROTTLED
    assert routed_to(router_event(), lambda_context) == "endpoint-2"


def test_when_the_next_endpoint_refuses_too_the_answer_names_both_and_the_counter_is_given_back(
    sagemaker: FlakySageMaker, router_event: Any, lambda_context: Any
) -> None:
    # Given endpoints 1 and 2 missing
    sagemaker.errors.update({"endpoint-1": NOT_FOUND, "endpoint-2": NOT_FOUND})
    # When the request whose turn is endpoint-1 arrives / Then it was tried once on each and refused with both reasons
    status, body, _ = call_router(router_event(), lambda_context)
    assert status == 502
    assert body["message"] == (
        "SageMaker rejected InvokeEndpointAsync on endpoint-2: ValidationError: Endpoint endpoint-2 of account "
        "123456789012 not found. (retried there after endpoint-1 refused: SageMaker rejected InvokeEndpointAsync "
        "on endpoint-1: ValidationError: Endpoint endpoint-1 of account 123456789012 not found.)"
    )
    assert sagemaker.attempts == ["endpoint-1", "endpoint-2"]
    assert request_count() == 0


def test_an_error_after_which_the_request_may_be_queued_is_not_sent_elsewhere(
    sagemaker: FlakySageMaker, router_event: Any, lambda_context: Any
) -> None:
    # Given endpoint-1 failing in a way that does not say whether it queued the request
    sagemaker.errors["endpoint-1"] = INTERNAL
    # When its request arrives / Then it is not tried again elsewhere (it could run twice): 502, slot given back
    status, body, _ = call_router(router_event(), lambda_context)
    assert (status, sagemaker.attempts) == (502, ["endpoint-1"])
    assert "InternalFailure" in body["message"]
    assert request_count() == 0


def test_a_fleet_at_zero_does_not_queue_elsewhere_than_its_wake_up_endpoint(
    sagemaker: FlakySageMaker, router_event: Any, lambda_context: Any
) -> None:
    # Given a fleet at zero whose wake-up endpoint refuses
    set_config(weights=[0, 0, 0])
    sagemaker.errors["endpoint-1"] = NOT_FOUND
    # Then the request is refused rather than left where no wake-up alarm looks
    assert call_router(router_event(), lambda_context)[0] == 502
    assert sagemaker.attempts == ["endpoint-1"]


def test_failed_requests_do_not_shift_the_round_robin(
    sagemaker: FlakySageMaker, router_event: Any, lambda_context: Any
) -> None:
    # Given weights 5,3,2, and requests that fail after taking their turn between the ones that succeed
    set_config(weights=[5, 3, 2])
    served = []
    for i in range(10):
        served.append(routed_to(router_event(), lambda_context))
        if i % 3 == 0:
            # a moment when SageMaker fails every call in a way that is not retried
            sagemaker.errors.update(dict.fromkeys(("endpoint-1", "endpoint-2", "endpoint-3"), INTERNAL))
            assert call_router(router_event(), lambda_context)[0] == 502
            sagemaker.errors.clear()
    # Then the ten that were served split exactly 5,3,2, and the counter counts only them
    assert Counter(served) == {"endpoint-1": 5, "endpoint-2": 3, "endpoint-3": 2}
    assert request_count() == 10


def test_a_config_the_router_cannot_use_gives_the_counter_value_back(
    sagemaker: FlakySageMaker, router_event: Any, lambda_context: Any
) -> None:
    set_config(weights=[1, -1, 1])
    status, body, _ = call_router(router_event(), lambda_context)
    assert (status, body["message"]) == (503, "invalid server_config: weights[1]: must be a whole number >= 0, got -1")
    assert request_count() == 0


def test_weights_adding_up_to_a_million_route_by_their_shares(
    sagemaker: FlakySageMaker, router_event: Any, lambda_context: Any
) -> None:
    # Given weights whose exact period is a million requests
    set_config(weights=[500_000, 499_999, 1])
    # Then requests alternate between the two heavy endpoints, as their shares say
    assert [routed_to(router_event(), lambda_context) for _ in range(4)] == ["endpoint-1", "endpoint-2"] * 2
