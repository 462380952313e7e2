"""The router at its ceiling: DynamoDB or SageMaker throttling (botocore stubs), one short jittered retry inside
the request's time budget, then 429 with Retry-After, and the metrics the throttled alarm watches."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from fleetscaler.services.routing import THROTTLE_RETRY_PAUSE, FleetRouter, jittered_pause
from tests.conftest import TABLE, FakeLambdaContext
from tests.integration.conftest import call_router, request_count

DYNAMODB_THROTTLE = "ProvisionedThroughputExceededException"
SAGEMAKER_THROTTLE = "ThrottlingException"


@dataclass
class Pauses:
    """The router's pauses before a retry, recorded instead of slept."""

    taken: list[float]


@pytest.fixture
def pauses(table: str, monkeypatch: pytest.MonkeyPatch) -> Pauses:
    """The handler's router, its sleep recorded (the pause itself is the real jittered one)."""
    from fleetscaler.config import get_settings
    from fleetscaler.dal.router_table import get_router_table
    from fleetscaler.handlers import router as router_module

    recorded = Pauses([])
    built = FleetRouter(get_settings(), get_router_table(), sleep=recorded.taken.append)
    monkeypatch.setattr(router_module, "get_router", functools.cache(lambda: built))
    return recorded


@pytest.fixture
def dynamodb_stub(pauses: Pauses) -> Iterator[Stubber]:
    """Stubbed answers for the router's DynamoDB client (every call must be stubbed, in order)."""
    from fleetscaler.dal.router_table import get_router_table

    with Stubber(get_router_table().client) as stub:  # type: ignore[attr-defined]
        yield stub


@pytest.fixture
def sagemaker_stub(pauses: Pauses) -> Iterator[Stubber]:
    """Stubbed answers for the router's SageMaker runtime client; DynamoDB stays moto's."""
    from fleetscaler.aws.sagemaker import runtime_client

    with Stubber(runtime_client()) as stub:
        yield stub


def throttle_dynamodb(stub: Stubber) -> None:
    stub.add_client_error("update_item", service_error_code=DYNAMODB_THROTTLE, http_status_code=400)


def throttle_sagemaker(stub: Stubber, endpoint: str) -> None:
    stub.add_client_error(
        "invoke_endpoint_async",
        service_error_code=SAGEMAKER_THROTTLE,
        service_message="Rate exceeded",
        http_status_code=400,
        expected_params={"EndpointName": endpoint, "InputLocation": ANY, "ContentType": ANY, "Accept": ANY},
    )


def throttle_both_then_queue(stub: Stubber, inference_id: str) -> None:
    """SageMaker throttles the endpoint and the next one, then queues the retry on the endpoint."""
    throttle_sagemaker(stub, "endpoint-1")
    throttle_sagemaker(stub, "endpoint-2")
    stub.add_response(
        "invoke_endpoint_async",
        {"InferenceId": inference_id, "OutputLocation": f"s3://out/{inference_id}.out"},
        {"EndpointName": "endpoint-1", "InputLocation": ANY, "ContentType": ANY, "Accept": ANY},
    )


def the_next_ticket() -> dict[str, Any]:
    """What the counter's UpdateItem returns when it succeeds: the whole server_config, counter taken."""
    item = boto3.client("dynamodb").get_item(TableName=TABLE, Key={"id": {"S": "server_config"}})["Item"]
    return {"Attributes": {**item, "request_count": {"N": str(int(item["request_count"]["N"]) + 1)}}}


def metric_lines(output: str, name: str) -> list[dict[str, Any]]:
    """The EMF lines that carry metric `name`."""
    return [line for line in map(json.loads, filter(None, output.splitlines())) if name in line]


def test_dynamodb_throttling_twice_is_429_after_one_jittered_retry(
    dynamodb_stub: Stubber, pauses: Pauses, router_event: Any, lambda_context: Any, lambda_output: Any
) -> None:
    # Given the counter's partition throttling every write
    throttle_dynamodb(dynamodb_stub)
    throttle_dynamodb(dynamodb_stub)
    # When a request arrives
    status, body, headers = call_router(router_event(), lambda_context)
    # Then it was tried twice, a short random pause apart, and answered 429 with Retry-After
    dynamodb_stub.assert_no_pending_responses()
    assert (status, headers["Retry-After"]) == (429, "1")
    assert body["message"].startswith(f"metadata table {TABLE} is throttling requests ({DYNAMODB_THROTTLE})")
    assert "(throttled again when tried once more, " in body["message"]
    (pause,) = pauses.taken
    assert THROTTLE_RETRY_PAUSE[0] <= pause <= THROTTLE_RETRY_PAUSE[1]
    # And the throttled answer and the retry are counted for the fleet (what the alarm and dashboard watch)
    output = lambda_output()
    throttled = metric_lines(output, "ThrottledRequests")
    assert [(m["Fleet"], m["ThrottledRequests"], m["ThrottleRetries"]) for m in throttled] == [
        ("endpoint", [1.0], [1.0])
    ]
    assert [m["StatusCode"] for m in metric_lines(output, "RouterErrors")] == ["429"]


def test_dynamodb_throttling_once_is_absorbed_by_the_retry(
    dynamodb_stub: Stubber, pauses: Pauses, router_event: Any, lambda_context: Any, lambda_output: Any
) -> None:
    # Given one throttled write, then the table takes the next
    throttle_dynamodb(dynamodb_stub)
    dynamodb_stub.add_response("update_item", the_next_ticket())
    # When a request arrives / Then it is routed after one pause, and the retry is logged and counted
    status, body, _ = call_router(router_event(), lambda_context)
    assert (status, body["endpointName"], len(pauses.taken)) == (202, "endpoint-1", 1)
    output = lambda_output()
    warning = next(m for m in map(json.loads, filter(None, output.splitlines())) if m.get("level") == "WARNING")
    assert (warning["message"], warning["source"]) == ("throttled; routed when tried once more", "DynamoDB")
    assert [m["ThrottleRetries"] for m in metric_lines(output, "ThrottleRetries")] == [[1.0]]
    assert metric_lines(output, "ThrottledRequests") == []


def test_sagemaker_throttling_on_both_endpoints_twice_is_429_and_the_counter_is_given_back(
    sagemaker_stub: Stubber, pauses: Pauses, router_event: Any, lambda_context: Any
) -> None:
    # Given SageMaker throttling every endpoint (after botocore's own retries)
    for _ in range(2):
        throttle_sagemaker(sagemaker_stub, "endpoint-1")
        throttle_sagemaker(sagemaker_stub, "endpoint-2")  # the next endpoint of the sequence
    # When a request arrives
    status, body, headers = call_router(router_event(), lambda_context)
    # Then each attempt went to the endpoint and the next one, the whole request was tried twice, then 429
    sagemaker_stub.assert_no_pending_responses()
    assert (status, headers["Retry-After"], len(pauses.taken)) == (429, "1", 1)
    assert body["message"].startswith(
        f"SageMaker throttled InvokeEndpointAsync on endpoint-2 ({SAGEMAKER_THROTTLE}) "
        "(retried there after endpoint-1 refused: SageMaker throttled InvokeEndpointAsync on endpoint-1"
    )
    # And both attempts gave their counter value back: the next request is still request 0
    assert request_count() == 0


def test_sagemaker_throttling_once_is_routed_on_the_retry(
    sagemaker_stub: Stubber, pauses: Pauses, router_event: Any, lambda_context: Any
) -> None:
    throttle_both_then_queue(sagemaker_stub, "after-retry")
    status, body, _ = call_router(router_event(), lambda_context)
    assert (status, body["inferenceId"], len(pauses.taken)) == (202, "after-retry", 1)
    assert request_count() == 1


def test_no_retry_when_the_time_left_would_not_cover_it(
    dynamodb_stub: Stubber, pauses: Pauses, router_event: Any
) -> None:
    # Given a request whose Lambda has less time left than a pause, another attempt and a second to answer
    throttle_dynamodb(dynamodb_stub)
    # When it is throttled / Then it is answered 429 at once: no pause, no second attempt
    status, body, _ = call_router(router_event(), FakeLambdaContext(remaining_ms=900))
    dynamodb_stub.assert_no_pending_responses()
    assert (status, pauses.taken) == (429, [])
    assert "tried once more" not in body["message"]


def test_a_keyed_request_is_retried_whole_and_recorded_once(
    sagemaker_stub: Stubber, pauses: Pauses, router_event: Any, lambda_context: Any
) -> None:
    # Given SageMaker throttling the first attempt of a request with an Idempotency-Key
    throttle_both_then_queue(sagemaker_stub, "keyed")
    event = router_event(headers={"Idempotency-Key": "k-1"})
    # When it is routed on the retry / Then a repeat gets that answer (one record, no third invocation)
    assert call_router(event, lambda_context)[1]["inferenceId"] == "keyed"
    status, body, headers = call_router(event, lambda_context)
    assert (status, body["inferenceId"], headers["Idempotent-Replayed"]) == (202, "keyed", "true")


def test_the_pause_is_short_and_random() -> None:
    drawn = [jittered_pause() for _ in range(200)]
    assert all(THROTTLE_RETRY_PAUSE[0] <= pause <= THROTTLE_RETRY_PAUSE[1] for pause in drawn)
    assert len(set(drawn)) > 150
