"""Requests the router must refuse: no route, ids too long to repeat. API Gateway events in, under moto."""

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
        ("POST", 'a"b', 404, "fleet 'a\"b' is not known here", None),
        ("POST", "a\nb", 404, "fleet 'a\\nb' is not known here", None),
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
    # Given a wrong method, or a fleet name with a character powertools' route rule does not accept
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
