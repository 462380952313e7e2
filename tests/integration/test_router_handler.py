"""The router Lambda end to end under moto: API Gateway event in, InvokeEndpointAsync out."""

from __future__ import annotations

import base64
import json
from collections import Counter
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from fleetscaler.handlers.router import handler
from tests.conftest import TABLE
from tests.integration.conftest import call_router as call
from tests.integration.conftest import set_config


def test_routes_by_weight_and_passes_only_allowed_headers(
    table: str, router_event: Any, lambda_context: Any, sagemaker_calls: list[dict[str, Any]]
) -> None:
    # Given weights 5,3,2
    set_config(weights=[5, 3, 2])
    # When ten requests arrive with extra headers and lower-case names
    statuses = []
    for i in range(10):
        status, body, _ = call(
            router_event(headers={"requestttlseconds": "600", "InferenceId": f"req-{i}"}), lambda_context
        )
        statuses.append(status)
        assert body["endpointName"] == sagemaker_calls[-1]["EndpointName"]
        assert body["inferenceId"] == f"req-{i}"
        assert body["outputLocation"].startswith("s3://")
    # Then all are accepted and split exactly 5,3,2
    assert statuses == [202] * 10
    assert Counter(c["EndpointName"] for c in sagemaker_calls) == {"endpoint-1": 5, "endpoint-2": 3, "endpoint-3": 2}
    # And SageMaker saw only the allowed parameters, the TTL as a number
    assert set(sagemaker_calls[0]) == {
        "EndpointName",
        "InputLocation",
        "ContentType",
        "Accept",
        "InferenceId",
        "RequestTTLSeconds",
    }
    assert sagemaker_calls[0]["RequestTTLSeconds"] == 600


def test_seed_sample_file_works_unchanged(
    seed_sample_table: str, router_event: Any, lambda_context: Any, sagemaker_calls: list[dict[str, Any]]
) -> None:
    # Given the seed sample's data file (weights 0,0,1, no counter on server_config)
    for _ in range(4):
        assert call(router_event(), lambda_context)[0] == 202
    # Then every request goes to the only endpoint with weight
    assert {c["EndpointName"] for c in sagemaker_calls} == {"endpoint-3"}


def test_fleet_resource_name_read_from_dimension_item_when_env_unset(
    table: str, router_event: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import reset_process_caches

    monkeypatch.delenv("RESOURCE_NAME")
    reset_process_caches()
    assert call(router_event(), lambda_context)[0] == 202
    assert call(router_event(fleet="other"), lambda_context)[0] == 404


@pytest.mark.parametrize(
    ("draining", "wake_up_endpoint"),
    [
        ([], "endpoint-1"),  # the first endpoint, where the template's wake-up alarm looks
        (["1"], "endpoint-2"),  # the first endpoint is leaving: requests wait on the next one
    ],
)
def test_scaled_to_zero_queues_on_the_wake_up_endpoint(
    table: str,
    router_event: Any,
    lambda_context: Any,
    sagemaker_calls: list[dict[str, Any]],
    draining: list[str],
    wake_up_endpoint: str,
) -> None:
    # Given a fleet at zero (every weight 0)
    set_config(weights=[0, 0, 0], current_instance_count=[0, 0, 0], draining=draining)
    # When requests arrive / Then none is refused: they wait in the wake-up endpoint's queue
    for _ in range(3):
        assert call(router_event(), lambda_context)[0] == 202
    assert [c["EndpointName"] for c in sagemaker_calls] == [wake_up_endpoint] * 3


def test_draining_endpoint_gets_no_request_whatever_its_weight(
    table: str, router_event: Any, lambda_context: Any, sagemaker_calls: list[dict[str, Any]]
) -> None:
    # Given endpoint 2 listed in draining by a hand edit that left its weight at 1
    set_config(weights=[1, 1, 1], draining=["2"])
    # When requests arrive / Then they go to endpoints 1 and 3 only, alternately
    for _ in range(4):
        call(router_event(), lambda_context)
    assert [c["EndpointName"] for c in sagemaker_calls] == ["endpoint-1", "endpoint-3"] * 2


def test_weight_set_to_zero_takes_effect_on_the_next_request(
    table: str, router_event: Any, lambda_context: Any, sagemaker_calls: list[dict[str, Any]]
) -> None:
    call(router_event(), lambda_context)
    set_config(weights=[0, 1, 0])
    for _ in range(5):
        call(router_event(), lambda_context)
    assert {c["EndpointName"] for c in sagemaker_calls[1:]} == {"endpoint-2"}


def test_inline_body_is_sent_as_body(
    table: str, router_event: Any, lambda_context: Any, sagemaker_calls: list[dict[str, Any]]
) -> None:
    event = router_event(headers={"ContentType": "application/json"}, body='{"x": 1}')
    del event["headers"]["InputLocation"]
    status, _, _ = call(event, lambda_context)
    assert status == 202
    assert sagemaker_calls[0]["Body"] == b'{"x": 1}'
    assert "InputLocation" not in sagemaker_calls[0]


def test_base64_body_is_decoded(
    table: str, router_event: Any, lambda_context: Any, sagemaker_calls: list[dict[str, Any]]
) -> None:
    event = router_event(body=base64.b64encode(b"\x00\x01binary").decode(), base64=True)
    del event["headers"]["InputLocation"]
    assert call(event, lambda_context)[0] == 202
    assert sagemaker_calls[0]["Body"] == b"\x00\x01binary"


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({"RequestTTLSeconds": "10"}, 400, "RequestTTLSeconds: must be from 60 to 21600 seconds, got 10"),
        ({"InvocationTimeoutSeconds": "x"}, 400, "InvocationTimeoutSeconds: must be a whole number"),
        ({"RequestTTLSeconds": "--60"}, 400, "RequestTTLSeconds: must be a whole number"),
        ({"RequestTTLSeconds": "6\u00b2"}, 400, "RequestTTLSeconds: must be a whole number"),
        ({"InputLocation": "s3://other-bucket/x.csv"}, 403, "outside the allowed input prefixes"),
    ],
)
def test_bad_headers(
    table: str,
    router_event: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    headers: dict[str, str],
    status: int,
    message: str,
) -> None:
    from tests.conftest import reset_process_caches

    monkeypatch.setenv("ALLOWED_INPUT_PREFIXES", "s3://fleet-inputs/")
    reset_process_caches()
    got_status, body, _ = call(router_event(headers=headers), lambda_context)
    assert (got_status, message in body["message"]) == (status, True), body


def test_missing_input_location_is_400_and_costs_no_counter(table: str, router_event: Any, lambda_context: Any) -> None:
    status, body, _ = call(router_event(headers={"Accept": "text/csv"}, replace_headers=True), lambda_context)
    assert status == 400
    assert body["message"].startswith("InputLocation: header is required")
    item = boto3.resource("dynamodb").Table(TABLE).get_item(Key={"id": "server_config"})["Item"]
    assert item["request_count"] == 0


def test_body_too_large_is_413(table: str, router_event: Any, lambda_context: Any) -> None:
    event = router_event(body="x" * 128_001)
    del event["headers"]["InputLocation"]
    status, body, _ = call(event, lambda_context)
    assert status == 413
    assert "128000 bytes" in body["message"]


def test_unknown_fleet_is_404(table: str, router_event: Any, lambda_context: Any) -> None:
    status, body, _ = call(router_event(fleet="nope"), lambda_context)
    assert status == 404
    assert "'nope'" in body["message"]


def test_invalid_server_config_is_503_with_reason(table: str, router_event: Any, lambda_context: Any) -> None:
    set_config(weights=[1, 2])
    status, body, _ = call(router_event(), lambda_context)
    assert status == 503
    assert "weights: has 2 entries but servers has 3" in body["message"]


def test_missing_server_config_is_503_and_not_created(table: str, router_event: Any, lambda_context: Any) -> None:
    boto3.resource("dynamodb").Table(TABLE).delete_item(Key={"id": "server_config"})
    status, body, _ = call(router_event(), lambda_context)
    assert status == 503
    assert "no 'server_config' item" in body["message"]
    assert "Item" not in boto3.resource("dynamodb").Table(TABLE).get_item(Key={"id": "server_config"})


def test_missing_table_is_503(aws: None, router_event: Any, lambda_context: Any) -> None:
    status, body, _ = call(router_event(), lambda_context)
    assert status == 503
    assert "does not exist" in body["message"]


def _raise_client_error(code: str, message: str) -> Any:
    def fail(*_: Any, **__: Any) -> Any:
        raise ClientError({"Error": {"Code": code, "Message": message}}, "InvokeEndpointAsync")

    return fail


def test_sagemaker_rejection_is_502_with_its_message(
    table: str, router_event: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fleetscaler.aws.sagemaker import runtime_client

    monkeypatch.setattr(
        runtime_client(),
        "invoke_endpoint_async",
        _raise_client_error("ValidationError", "Endpoint endpoint-1 not found."),
    )
    status, body, _ = call(router_event(), lambda_context)
    assert status == 502
    assert "Endpoint endpoint-1 not found." in body["message"]


def test_secrets_never_reach_logs_or_responses(
    table: str, router_event: Any, lambda_context: Any, lambda_output: Any
) -> None:
    # Given a request carrying credentials and a bad header (so error paths log too)
    for headers in ({}, {"RequestTTLSeconds": "1"}):
        response = handler(router_event(headers=headers), lambda_context)
        # Then neither the response nor any log line has the signature, token or the raw event
        out = lambda_output() + json.dumps(response)
        assert "request" in out  # the logs were really captured
        assert "secret-signature" not in out
        assert "secret-session-token" not in out
        assert "203.0.113.7" not in out
        assert '"requestContext"' not in out


def test_logs_carry_the_correlation_id_and_metrics_per_endpoint(
    table: str, router_event: Any, lambda_context: Any, lambda_output: Any
) -> None:
    handler(router_event(), lambda_context)
    lines = [json.loads(line) for line in lambda_output().splitlines() if line.startswith("{")]
    routed = next(line for line in lines if line.get("message") == "routed request")
    assert routed["correlation_id"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    emf = next(line for line in lines if "RoutedRequests" in line)
    assert emf["EndpointName"] == routed["endpoint_name"]
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "fleetscaler-test"
