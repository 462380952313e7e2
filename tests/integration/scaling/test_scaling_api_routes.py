"""Requests the scaling API has no route for: 404 or 405 with a message, a WARNING, nothing recorded."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fleetscaler.handlers import scaling_api
from tests.integration.scaling.conftest import ProvisioningSageMaker, scaling_event, table_item

DIMENSION = "custom-resource:ResourceType:Property"


def call(event: dict[str, Any], context: Any) -> tuple[int, dict[str, Any], dict[str, list[str]]]:
    response = scaling_api.handler(event, context)
    return response["statusCode"], json.loads(response["body"]), response.get("multiValueHeaders") or {}


PATH = f"/scalableTargetDimensions/{DIMENSION}"


@pytest.mark.parametrize(
    ("method", "dimension_id", "status", "message"),
    [
        ("POST", DIMENSION, 405, f"method POST is not allowed on '{PATH}'; use GET, PATCH"),
        ("DELETE", DIMENSION, 405, f"method DELETE is not allowed on '{PATH}'; use GET, PATCH"),
        ("GET", 'a"b', 404, "scalableTargetDimensionId 'a\"b' is not known here"),
        ("PATCH", "a\nb", 404, "scalableTargetDimensionId 'a\\nb' is not known here"),
    ],
)
def test_a_request_no_route_matches_is_404_or_405_not_500(
    fleet: ProvisioningSageMaker,
    lambda_context: Any,
    lambda_output: Any,
    method: str,
    dimension_id: str,
    status: int,
    message: str,
) -> None:
    # Given a method the API does not have, or an id with a character powertools' route rule refuses
    before = table_item(DIMENSION)
    event = scaling_event("PATCH", {"desiredCapacity": 2}, dimension_id=dimension_id)
    event["httpMethod"] = method
    # When it reaches the scaling API
    got_status, body, headers = call(event, lambda_context)
    # Then 404 / 405 with a message (405 with Allow), logged as a WARNING, with nothing recorded or issued
    assert (got_status, body) == (status, {"message": message})
    assert headers.get("Allow") == (["GET, PATCH"] if status == 405 else None)
    lines = [json.loads(line) for line in lambda_output().splitlines() if line.startswith("{")]
    assert [line["level"] for line in lines if line.get("message") == "request failed"] == ["WARNING"]
    assert table_item(DIMENSION) == before
    assert fleet.calls == []


def test_a_10000_character_id_is_not_repeated_in_full(fleet: ProvisioningSageMaker, lambda_context: Any) -> None:
    status, body, _ = call(scaling_event("GET", dimension_id="x" * 10_000), lambda_context)
    assert status == 404
    assert body == {"message": f"scalableTargetDimensionId '{'x' * 100}... (10000 characters)' is not known here"}
