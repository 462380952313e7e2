"""What the stack's dashboard and "scaling failed" alarm are fed: EMF metrics and ERROR lines of the scaling Lambdas."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from fleetscaler.handlers import endpoint_state, scaling_api
from tests.integration.scaling.conftest import ProvisioningSageMaker, scaling_event


@pytest.fixture
def scaling_output(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """JSON lines the two scaling Lambdas print: their powertools logs and EMF metrics (stdout)."""
    buffer = io.StringIO()
    handlers = [scaling_api.logger.registered_handler, endpoint_state.logger.registered_handler]
    previous = []
    for handler in handlers:
        assert isinstance(handler, logging.StreamHandler)
        previous.append(handler.setStream(buffer))

    def read() -> list[dict[str, Any]]:
        text = buffer.getvalue() + capsys.readouterr().out
        buffer.seek(0)
        buffer.truncate()
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    yield read
    for handler, stream in zip(handlers, previous, strict=True):
        handler.setStream(stream)


def metrics(lines: list[dict[str, Any]], name: str) -> dict[str, float]:
    """The values of one EMF metric, by the value of its dimension (Fleet or EndpointName)."""
    found: dict[str, float] = {}
    for line in lines:
        directives = line.get("_aws", {}).get("CloudWatchMetrics", [])
        if any(metric["Name"] == name for d in directives for metric in d["Metrics"]):
            dimension = next(d for d in directives[0]["Dimensions"][0] if d in ("Fleet", "EndpointName"))
            value = line[name]  # EMF allows a list of values; powertools writes [v] for a float
            found[line[dimension]] = value[-1] if isinstance(value, list) else value
    return found


def call(method: str, context: Any, body: Any = None) -> dict[str, Any]:
    response = scaling_api.handler(scaling_event(method, body), context)
    assert response["statusCode"] == 200, response
    return json.loads(response["body"])


def test_every_reconcile_publishes_desired_actual_and_instances_per_endpoint(
    fleet: ProvisioningSageMaker, lambda_context: Any, scaling_output: Any
) -> None:
    # Given 3 endpoints x 1 instance; When Application Auto Scaling asks for 6
    call("PATCH", lambda_context, {"desiredCapacity": 6})
    lines = scaling_output()
    # Then the fleet's desired and actual capacity are published under the fleet's name
    assert metrics(lines, "DesiredCapacity") == {"endpoint": 6}
    assert metrics(lines, "ActualCapacity") == {"endpoint": 3}
    assert metrics(lines, "ScalingFailed") == {"endpoint": 0}
    # And every endpoint's serving instances and routing weight
    assert metrics(lines, "InstanceCount") == {"endpoint-1": 1, "endpoint-2": 1, "endpoint-3": 1}
    assert metrics(lines, "RoutingWeight") == {"endpoint-1": 1, "endpoint-2": 1, "endpoint-3": 1}
    # When one endpoint finishes and its event arrives
    endpoint_state.handler(fleet.complete("endpoint-1"), lambda_context)
    lines = scaling_output()
    # Then the endpoint-state Lambda publishes the new counts too
    assert metrics(lines, "InstanceCount")["endpoint-1"] == 2
    assert metrics(lines, "ActualCapacity") == {"endpoint": 4}
    assert all(line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "fleetscaler-test"
               for line in lines if "_aws" in line)


def test_a_scaling_that_turns_failed_logs_one_error_for_the_alarm(
    fleet: ProvisioningSageMaker, lambda_context: Any, scaling_output: Any, manual_clock: Any
) -> None:
    # Given a scale-out whose endpoints never finish
    call("PATCH", lambda_context, {"desiredCapacity": 6})
    scaling_output()
    # When the timeout passes and Application Auto Scaling polls
    manual_clock.advance(1501)
    call("GET", lambda_context)
    lines = scaling_output()
    # Then one ERROR line says why (the template's metric filter counts it) and ScalingFailed is 1
    errors = [line for line in lines if line.get("level") == "ERROR"]
    assert len(errors) == 1
    assert errors[0]["message"] == "scaling failed"
    assert "did not finish within 1500 seconds" in errors[0]["failure_reason"]
    assert metrics(lines, "ScalingFailed") == {"endpoint": 1}
    # When it polls again while still Failed
    call("GET", lambda_context)
    lines = scaling_output()
    # Then no new ERROR: the alarm counts scalings that failed, not polls
    assert not [line for line in lines if line.get("level") == "ERROR"]
    assert metrics(lines, "ScalingFailed") == {"endpoint": 1}


def test_metrics_disabled_prints_no_emf(
    fleet: ProvisioningSageMaker, lambda_context: Any, scaling_output: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given POWERTOOLS_METRICS_DISABLED (the local stack sets it so its terminal stays readable)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    # When the scaling API reconciles
    call("GET", lambda_context)
    # Then no EMF line is printed
    assert not [line for line in scaling_output() if "_aws" in line]
