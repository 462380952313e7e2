"""Refusals of the real router and scaling-API Lambdas behind the local API Gateway, over HTTP: paths their
route rules do not accept, a method the Lambda does not answer, control characters in InputLocation."""

from __future__ import annotations

from typing import Any

import pytest

from fleetscaler.local.gateway import DEFAULT_ROUTES, ROUTER_HANDLER, Route
from tests.integration.conftest import request_count
from tests.local.conftest import call


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("POST", "/endpoints/a%22b", "fleet 'a\"b' is not served here (this router serves 'endpoint')"),
        ("GET", "/scalableTargetDimensions/a%22b", "scalableTargetDimensionId 'a\"b' is not known here"),
        ("PATCH", "/scalableTargetDimensions/a%0Ab", "scalableTargetDimensionId 'a\\nb' is not known here"),
    ],
)
def test_a_path_parameter_the_route_rule_refuses_is_404_not_a_crash(
    table: str, start_gateway: Any, method: str, path: str, message: str
) -> None:
    # Given the template's routes in front of the real Lambdas
    gateway = start_gateway(DEFAULT_ROUTES)
    # When a signed request names an id with a quote or a newline (API Gateway passes it on, decoded)
    answer = call(method, gateway.url + path, body=b'{"desiredCapacity": 2}' if method == "PATCH" else b"")
    # Then the Lambda answers 404 with a message (before: 500 from the catch-all handler)
    assert (answer.status, answer.json()) == (404, {"message": message})


def test_a_method_the_router_does_not_answer_is_405_with_allow(table: str, start_gateway: Any) -> None:
    # Given an API that sends every method of the path to the router (an ANY method)
    gateway = start_gateway([Route("ANY", "/endpoints/{EndpointName}", ROUTER_HANDLER)])
    # When a GET arrives / Then the router itself answers 405 naming the method it takes
    answer = call("GET", f"{gateway.url}/endpoints/endpoint")
    assert answer.status == 405
    assert answer.headers["allow"] == "POST"
    assert answer.json() == {"message": "method GET is not allowed on '/endpoints/endpoint'; use POST"}


@pytest.mark.parametrize("character", ["\x00", "\t", "\x7f"])
def test_input_location_with_a_control_character_is_400_over_http(
    table: str, start_gateway: Any, sagemaker_calls: list[dict[str, Any]], character: str
) -> None:
    # Given the router behind the gateway
    gateway = start_gateway(DEFAULT_ROUTES)
    # When an HTTP request carries a control character inside InputLocation
    answer = call(
        "POST",
        f"{gateway.url}/endpoints/endpoint",
        headers={"InputLocation": f"s3://fleet-inputs/in{character}put.csv"},
    )
    # Then 400 names the header and the rule, before the counter or SageMaker
    assert answer.status == 400
    assert answer.json() == {
        "message": f"InputLocation: must not contain control characters or line breaks, got U+{ord(character):04X} "
        "at character 21"
    }
    assert request_count() == 0
    assert sagemaker_calls == []
