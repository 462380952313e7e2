"""Every refusal of the scaling API: 400 naming the rule, 404 for unknown ids; nothing recorded."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fleetscaler.errors import ConcurrentModification, FleetscalerError, StoreUnavailable, UpstreamRejected
from fleetscaler.handlers import scaling_api
from tests.integration.scaling.conftest import ProvisioningSageMaker, scaling_event, table_item

DIMENSION = "custom-resource:ResourceType:Property"


def call(event: dict[str, Any], context: Any) -> tuple[int, dict[str, Any]]:
    response = scaling_api.handler(event, context)
    return response["statusCode"], json.loads(response["body"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"desiredCapacity": 2', "body: must be valid JSON"),
        ("", "body: is required"),
        ("[2]", "body: must be a JSON object"),
        ("{}", "desiredCapacity: is required"),
        ('{"desiredCapacity": "2"}', "desiredCapacity: must be a number, got '2'"),
        ('{"desiredCapacity": true}', "desiredCapacity: must be a number, got True"),
        ('{"desiredCapacity": null}', "desiredCapacity: must be a number, got None"),
        ('{"desiredCapacity": NaN}', "desiredCapacity: must be a finite number"),
        ('{"desiredCapacity": Infinity}', "desiredCapacity: must be a finite number"),
        ('{"desiredCapacity": -1}', "desiredCapacity: must be >= 0, got -1"),
        ('{"desiredCapacity": 2.5}', "desiredCapacity: must be a whole number (no fractional part), got 2.5"),
        ('{"desiredCapacity": 1e300}', "desiredCapacity: must be at most 2147483647 (the largest capacity"),
        (
            '{"desiredCapacity": ' + "9" * 500 + "}",
            "desiredCapacity: must be at most 2147483647 (the largest capacity Application Auto Scaling has), "
            "got a 500-digit number",
        ),
        ('{"desiredCapacity": ' + "9" * 5000 + "}", "body: must not contain a number with thousands of digits"),
        ("[" * 100_000 + "]" * 100_000, "body: must be a flat JSON object"),
    ],
)
def test_bad_desired_capacity_is_400_naming_the_rule(
    fleet: ProvisioningSageMaker, lambda_context: Any, body: str, message: str
) -> None:
    # Given the seed fleet
    before = table_item(DIMENSION)
    # When PATCH carries a bad body
    status, answer = call(scaling_event("PATCH", body), lambda_context)
    # Then 400 with a message naming the field and rule, and nothing was recorded or issued
    assert status == 400
    assert answer["message"].startswith(message), answer
    assert set(answer) == {"message"}
    assert table_item(DIMENSION) == before
    assert fleet.calls == []


def test_min_and_max_capacity_from_the_environment(
    fleet: ProvisioningSageMaker, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import reset_process_caches

    # Given MIN_CAPACITY 2 and MAX_CAPACITY 12
    monkeypatch.setenv("MIN_CAPACITY", "2")
    monkeypatch.setenv("MAX_CAPACITY", "12")
    reset_process_caches()
    # Then values outside are refused naming the variable, values inside accepted
    status, answer = call(scaling_event("PATCH", {"desiredCapacity": 1}), lambda_context)
    assert (status, answer["message"]) == (400, "desiredCapacity: must be at least 2 (MIN_CAPACITY), got 1")
    status, answer = call(scaling_event("PATCH", {"desiredCapacity": 13}), lambda_context)
    assert status == 400 and "at most 12 (MAX_CAPACITY" in answer["message"]
    assert call(scaling_event("PATCH", {"desiredCapacity": 12}), lambda_context)[0] == 200


@pytest.mark.parametrize("method", ["GET", "PATCH"])
def test_unknown_dimension_is_404(fleet: ProvisioningSageMaker, lambda_context: Any, method: str) -> None:
    status, answer = call(scaling_event(method, {"desiredCapacity": 2}, dimension_id="other"), lambda_context)
    assert status == 404
    assert answer == {"message": "scalableTargetDimensionId 'other' is not known here"}
    assert fleet.calls == []


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ConcurrentModification("the scaling state kept changing under this request; try again"), 429),
        (UpstreamRejected("endpoint-1: no such endpoint", "ValidationException"), 500),
        (StoreUnavailable("metadata table fleetscaler-test is unreachable"), 500),
    ],
)
def test_server_side_errors_use_only_the_contract_status_codes(
    fleet: ProvisioningSageMaker,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    error: FleetscalerError,
    status: int,
) -> None:
    # Given the engine fails in a way that is not the caller's fault
    def fail(self: Any, dimension_id: str) -> None:
        raise error

    monkeypatch.setattr("fleetscaler.services.scaling.ScalingEngine.get", fail)
    # When AAS polls / Then it gets a status its contract lists (400, 403, 404, 429, 500) and the reason
    response = scaling_api.handler(scaling_event("GET"), lambda_context)
    assert response["statusCode"] == status
    assert json.loads(response["body"]) == {"message": error.message}
    if status == 429:
        assert response["multiValueHeaders"]["Retry-After"] == ["1"]


def test_url_encoded_dimension_id_is_accepted(fleet: ProvisioningSageMaker, lambda_context: Any) -> None:
    status, answer = call(
        scaling_event("GET", dimension_id="custom-resource%3AResourceType%3AProperty"), lambda_context
    )
    assert status == 200
    assert answer["scalableTargetDimensionId"] == DIMENSION


def test_answer_has_the_contract_fields(fleet: ProvisioningSageMaker, lambda_context: Any) -> None:
    status, answer = call(scaling_event("GET"), lambda_context)
    assert status == 200
    assert answer == {
        "actualCapacity": 3.0,
        "desiredCapacity": 3.0,
        "scalableTargetDimensionId": DIMENSION,
        "scalingStatus": "Successful",
        "version": "1",
        "resourceName": "endpoint",
        "dimensionName": "DesiredInstanceCount",
    }
