"""Requests the router must refuse or understand: no route, control characters, both header spellings,
conflicting headers, ids too long to repeat. API Gateway events in, under moto."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.conftest import call_router, request_count


def log_records(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def router_error_counts(records: list[dict[str, Any]]) -> list[str]:
    """The StatusCode dimension of every RouterErrors metric the Lambda emitted."""
    return [r["StatusCode"] for r in records if "RouterErrors" in r]


@pytest.mark.parametrize(
    ("method", "fleet", "status", "message", "allow"),
    [
        ("GET", "endpoint", 405, "method GET is not allowed on '/endpoints/endpoint'; use POST", "POST"),
        ("DELETE", "endpoint", 405, "method DELETE is not allowed on '/endpoints/endpoint'; use POST", "POST"),
        ("POST", 'a"b', 404, "fleet 'a\"b' is not served here (this router serves 'endpoint')", None),
        ("POST", "a\nb", 404, "fleet 'a\\nb' is not served here (this router serves 'endpoint')", None),
    ],
)
def test_a_request_no_route_matches_is_404_or_405_not_500(
    table: str,
    router_event: Any,
    lambda_context: Any,
    lambda_output: Any,
    sagemaker_calls: list[dict[str, Any]],
    method: str,
    fleet: str,
    status: int,
    message: str,
    allow: str | None,
) -> None:
    # Given a wrong method, or a fleet name with a character a route rule might not accept
    event = router_event(fleet=fleet)
    event["httpMethod"] = method
    # When it reaches the router
    got_status, body, headers = call_router(event, lambda_context)
    # Then it is refused as not found / not allowed, with a message and Allow for a wrong method
    assert (got_status, body) == (status, {"message": message})
    assert headers.get("Allow") == allow
    # And it is a WARNING counted under its own status, not an ERROR counted as 500
    records = log_records(lambda_output())
    assert [r["level"] for r in records if r.get("message") == "request failed"] == ["WARNING"]
    assert not any(r.get("level") == "ERROR" for r in records)
    assert router_error_counts(records) == [str(status)]
    # And nothing was routed or counted
    assert sagemaker_calls == []
    assert request_count() == 0


def test_a_path_of_no_resource_is_404_naming_what_the_api_serves(
    table: str, router_event: Any, lambda_context: Any
) -> None:
    event = router_event()
    event["path"] = "/nothing/here"
    status, body, _ = call_router(event, lambda_context)
    assert status == 404
    assert body == {"message": "no resource at '/nothing/here' (this API serves POST /endpoints/{fleet})"}


@pytest.mark.parametrize("character", ["\x00", "\t", "\n", "\x7f"])
@pytest.mark.parametrize("header", ["InputLocation", "X-Amzn-SageMaker-InputLocation"])
def test_input_location_with_a_control_character_is_400_before_the_counter(
    table: str,
    router_event: Any,
    lambda_context: Any,
    sagemaker_calls: list[dict[str, Any]],
    header: str,
    character: str,
) -> None:
    # Given an S3 location with a control character inside, under either spelling of the header
    location = f"s3://fleet-inputs/in{character}put.csv"
    event = router_event(headers={"Accept": "text/csv", header: location}, replace_headers=True)
    # When it reaches the router
    status, body, _ = call_router(event, lambda_context)
    # Then 400 names the header and the rule, and neither the counter nor SageMaker was touched
    assert status == 400
    assert body["message"] == (
        f"{header}: must not contain control characters or line breaks, got U+{ord(character):04X} at character 21"
    )
    assert request_count() == 0
    assert sagemaker_calls == []


def test_an_inline_body_reaches_sagemaker_with_its_standard_content_type(
    table: str, router_event: Any, lambda_context: Any, sagemaker_calls: list[dict[str, Any]]
) -> None:
    # Given an inline CSV body described by the standard Content-Type header only
    event = router_event(headers={"Content-Type": "text/csv"}, body="1,2,3\n")
    del event["headers"]["InputLocation"]
    del event["headers"]["ContentType"]
    # When it is routed / Then SageMaker is told what the body is
    assert call_router(event, lambda_context)[0] == 202
    assert sagemaker_calls[0]["ContentType"] == "text/csv"
    assert sagemaker_calls[0]["Body"] == b"1,2,3\n"


def test_sagemakers_header_names_reach_their_parameters(
    table: str, router_event: Any, lambda_context: Any, sagemaker_calls: list[dict[str, Any]]
) -> None:
    # Given a client that used to call InvokeEndpointAsync itself, sending SageMaker's header names
    headers = {
        "X-Amzn-SageMaker-InputLocation": "s3://fleet-inputs/payload.csv",
        "X-Amzn-SageMaker-Content-Type": "text/csv",
        "X-Amzn-SageMaker-Accept": "application/json",
        "X-Amzn-SageMaker-Custom-Attributes": "trace=1",
        "X-Amzn-SageMaker-Inference-Id": "req-7",
        "X-Amzn-SageMaker-RequestTTLSeconds": "600",
        "X-Amzn-SageMaker-InvocationTimeoutSeconds": "60",
        "Accept": "*/*",  # what curl and requests add on their own
    }
    status, body, _ = call_router(router_event(headers=headers, replace_headers=True), lambda_context)
    # Then every one reached SageMaker under its parameter
    assert status == 202, body
    assert {k: v for k, v in sagemaker_calls[0].items() if k != "EndpointName"} == {
        "InputLocation": "s3://fleet-inputs/payload.csv",
        "ContentType": "text/csv",
        "Accept": "application/json",
        "CustomAttributes": "trace=1",
        "InferenceId": "req-7",
        "RequestTTLSeconds": 600,
        "InvocationTimeoutSeconds": 60,
    }


@pytest.mark.parametrize(
    ("headers", "multi_value_headers", "message"),
    [
        (
            {"InputLocation": "s3://fleet-inputs/a.csv", "inputlocation": "s3://fleet-inputs/b.csv"},
            {},
            "InputLocation: the headers InputLocation and inputlocation carry different values; send one of them",
        ),
        (
            {"InputLocation": "s3://fleet-inputs/a.csv", "X-Amzn-SageMaker-InputLocation": "s3://fleet-inputs/b.csv"},
            {},
            "InputLocation: the headers InputLocation and X-Amzn-SageMaker-InputLocation carry different values; "
            "send one of them",
        ),
        (
            {"InputLocation": "s3://fleet-inputs/a.csv", "InferenceId": "b"},
            {"InputLocation": ["s3://fleet-inputs/a.csv"], "InferenceId": ["a", "b"]},
            "InferenceId: the header InferenceId is sent more than once with different values; send it once",
        ),
    ],
)
def test_headers_that_disagree_are_400_naming_both_and_cost_nothing(
    table: str,
    router_event: Any,
    lambda_context: Any,
    sagemaker_calls: list[dict[str, Any]],
    headers: dict[str, str],
    multi_value_headers: dict[str, list[str]],
    message: str,
) -> None:
    # Given one parameter sent twice with different values (API Gateway keeps both in multiValueHeaders)
    event = router_event(headers=headers, replace_headers=True)
    event["multiValueHeaders"] = multi_value_headers
    # When it reaches the router / Then 400 names both, and nothing was counted or sent
    status, body, _ = call_router(event, lambda_context)
    assert (status, body) == (400, {"message": message})
    assert request_count() == 0
    assert sagemaker_calls == []


def test_the_same_value_under_both_spellings_is_fine(
    table: str, router_event: Any, lambda_context: Any, sagemaker_calls: list[dict[str, Any]]
) -> None:
    event = router_event(headers={"X-Amzn-SageMaker-InputLocation": "s3://fleet-inputs/payload.csv"})
    event["multiValueHeaders"] = {"InputLocation": ["s3://fleet-inputs/payload.csv"] * 2}
    assert call_router(event, lambda_context)[0] == 202
    assert sagemaker_calls[0]["InputLocation"] == "s3://fleet-inputs/payload.csv"


def test_a_10000_character_fleet_name_is_not_repeated_in_full(
    table: str, router_event: Any, lambda_context: Any, lambda_output: Any
) -> None:
    # Given a fleet name of 10,000 characters
    status, body, _ = call_router(router_event(fleet="x" * 10_000), lambda_context)
    # Then the 404 quotes its first 100 characters and its length, and so does the log
    assert status == 404
    assert body["message"] == (
        f"fleet '{'x' * 100}... (10000 characters)' is not served here (this router serves 'endpoint')"
    )
    assert "x" * 101 not in lambda_output()
