"""Once a minute the endpoint-state Lambda snapshots the queues and publishes the fleet's scaling signal.

SageMaker's backlog metrics are put into moto's CloudWatch as SageMaker would publish them; the schedule's
EventBridge event comes from tests/events/.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from fleetscaler.handlers import endpoint_state, router, scaling_api
from tests.conftest import load_event
from tests.integration.scaling.conftest import ProvisioningSageMaker, scaling_event, set_config, table_item

NAMESPACE = "fleetscaler-test"


def queue(backlog: dict[str, float]) -> None:
    """SageMaker publishing each endpoint's ApproximateBacklogSize for the minute that just ended."""
    boto3.client("cloudwatch").put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {
                "MetricName": "ApproximateBacklogSize",
                "Dimensions": [{"Name": "EndpointName", "Value": name}],
                "Timestamp": datetime.now(UTC),
                "Value": value,
            }
            for name, value in backlog.items()
        ],
    )


def tick(context: Any) -> dict[str, Any]:
    return endpoint_state.handler(load_event("eventbridge_scheduled_event.json"), context)


def published(metric: str) -> list[float]:
    answer = boto3.client("cloudwatch").get_metric_data(
        MetricDataQueries=[
            {
                "Id": "m",
                "MetricStat": {
                    "Metric": {"Namespace": NAMESPACE, "MetricName": metric,
                               "Dimensions": [{"Name": "Fleet", "Value": "endpoint"}]},
                    "Period": 60,
                    "Stat": "Maximum",
                },
            }
        ],
        StartTime=datetime.fromtimestamp(datetime.now(UTC).timestamp() - 600, tz=UTC),
        EndTime=datetime.fromtimestamp(datetime.now(UTC).timestamp() + 60, tz=UTC),
    )
    return list(answer["MetricDataResults"][0]["Values"])


def patch(context: Any, desired: int) -> dict[str, Any]:
    response = scaling_api.handler(scaling_event("PATCH", {"desiredCapacity": desired}), context)
    assert response["statusCode"] == 200, response
    return json.loads(response["body"])


def deliver(fleet: ProvisioningSageMaker, context: Any) -> None:
    """Finish every update in flight and hand the endpoint-state Lambda the events they send."""
    for event in fleet.complete_all():
        endpoint_state.handler(event, context)


def route(context: Any, count: int) -> list[str]:
    names = []
    for _ in range(count):
        response = router.handler(load_event("apigw_router_post.json"), context)
        assert response["statusCode"] == 202, response
        names.append(json.loads(response["body"])["endpointName"])
    return names


@pytest.fixture
def at_zero(fleet: ProvisioningSageMaker, lambda_context: Any) -> ProvisioningSageMaker:
    """The seed fleet scaled to zero (every endpoint InService at 0 instances)."""
    patch(lambda_context, 0)
    deliver(fleet, lambda_context)
    assert fleet.counts() == {"endpoint-1": 0, "endpoint-2": 0, "endpoint-3": 0}
    return fleet


def test_signal_per_capacity_unit_serving_or_coming(fleet: ProvisioningSageMaker, lambda_context: Any) -> None:
    # Given 3 endpoints x 1 instance with 12, 6 and 0 requests queued
    queue({"endpoint-1": 12, "endpoint-2": 6, "endpoint-3": 0})
    # When the schedule fires
    result = tick(lambda_context)
    # Then the fleet's backlog per unit (18 / 3) and no shortfall (18 needs ceil(18/5) = 4 > 3: 1 unit) are published
    assert result["handled"] is True
    assert result["signal"]["BacklogPerCapacityUnit"] == 6.0
    assert result["signal"]["CapacityShortfallUnits"] == 1
    assert published("BacklogPerCapacityUnit") == [6.0]
    assert published("FleetBacklog") == [18.0]
    # And the queues are snapshot in server_config for the router, with its counter
    routing = table_item("server_config")["routing"]
    assert [int(b) for b in routing["backlog"]] == [12, 6, 0]


def test_capacity_on_its_way_counts(fleet: ProvisioningSageMaker, lambda_context: Any) -> None:
    # Given a scale-out to 9 under way and 20 requests queued
    patch(lambda_context, 9)
    queue({"endpoint-1": 20, "endpoint-2": 0, "endpoint-3": 0})
    # When the schedule fires / Then the units coming count: 20 / 9, and no shortfall is published again
    signal = tick(lambda_context)["signal"]
    assert signal["CapacityUnitsServingOrComing"] == 9
    assert signal["BacklogPerCapacityUnit"] == pytest.approx(20 / 9, abs=0.001)
    assert signal["CapacityShortfallUnits"] == 0


def test_requests_at_zero_are_counted_before_cloudwatch_sees_them(at_zero: ProvisioningSageMaker,
                                                                  lambda_context: Any) -> None:
    # Given a fleet at zero with a first snapshot, then a batch of 23 requests routed
    tick(lambda_context)
    routed = route(lambda_context, 23)
    # Then they wait on the endpoint that wakes first (its quota: 10 instances x 5 requests)
    assert set(routed) == {"endpoint-1"}
    # When the schedule fires before CloudWatch has a datapoint for them
    signal = tick(lambda_context)["signal"]
    # Then the queue is known from the router's counter, and the shortfall asks for ceil(23 / 5) = 5 units at once
    assert signal["FleetBacklog"] == 23
    assert signal["CapacityShortfallUnits"] == 5
    assert published("CapacityShortfallUnits")[0] == 5


def test_a_stranded_queue_gets_capacity_moved_to_it(at_zero: ProvisioningSageMaker, lambda_context: Any) -> None:
    # Given the fleet back at 1 unit on endpoint-1, and 3 requests stranded on endpoint-3 (no instance there): one
    # unit holds them at the target, so no scale-out is coming
    patch(lambda_context, 1)
    deliver(at_zero, lambda_context)
    assert at_zero.counts() == {"endpoint-1": 1, "endpoint-2": 0, "endpoint-3": 0}
    queue({"endpoint-1": 0, "endpoint-2": 0, "endpoint-3": 3})
    # When the schedule fires
    tick(lambda_context)
    # Then endpoint-3 gets the instance (made before endpoint-1's is released)
    assert at_zero.calls[-1] == ("endpoint-3", 1)
    deliver(at_zero, lambda_context)
    tick(lambda_context)
    deliver(at_zero, lambda_context)
    assert at_zero.counts() == {"endpoint-1": 0, "endpoint-2": 0, "endpoint-3": 1}


def test_a_fleet_bound_by_its_endpoints_says_so(fleet: ProvisioningSageMaker, lambda_context: Any) -> None:
    # Given caps of 10 x 3 endpoints and a desired capacity of 40
    patch(lambda_context, 40)
    queue({"endpoint-1": 0, "endpoint-2": 0, "endpoint-3": 0})
    # When the schedule fires / Then CapacityBound is 1 and the reason is said
    result = tick(lambda_context)
    assert result["signal"]["CapacityBound"] == 1
    assert "at most 30 capacity units" in result["boundReason"]
    assert published("CapacityBound") == [1.0]


def test_a_corrupted_snapshot_is_ignored_and_replaced(fleet: ProvisioningSageMaker, lambda_context: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(endpoint_state.logger, "warning", lambda message, *_, **__: warnings.append(message))
    # Given a routing attribute a hand edit broke
    set_config(routing={"backlog": ["x"], "counter": 1, "at": 1, "wake_up": [0], "ahead": [0]})
    queue({"endpoint-1": 3, "endpoint-2": 0, "endpoint-3": 0})
    # When the schedule fires / Then it works, warns, and writes a fresh snapshot
    assert tick(lambda_context)["handled"] is True
    assert any("routing.backlog: has 1 entries but servers has 3" in w for w in warnings), warnings
    assert [int(b) for b in table_item("server_config")["routing"]["backlog"]] == [3, 0, 0]


def test_a_stranded_queue_that_announces_a_scale_out_gets_its_capacity_from_it(
    at_zero: ProvisioningSageMaker, lambda_context: Any
) -> None:
    # Given the fleet back at 1 unit on endpoint-1, and 7 requests stranded on endpoint-3: more than one unit holds
    patch(lambda_context, 1)
    deliver(at_zero, lambda_context)
    queue({"endpoint-1": 0, "endpoint-2": 0, "endpoint-3": 7})
    calls = len(at_zero.calls)
    # When the schedule fires
    signal = tick(lambda_context)["signal"]
    # Then the signal asks for one more unit and no instance moves while that scale-out is awaited
    assert signal["CapacityShortfallUnits"] == 1
    assert len(at_zero.calls) == calls
    # When Application Auto Scaling answers with desired 2
    patch(lambda_context, 2)
    # Then the scale-out goes where the queue is: endpoint-3 first, in one update
    assert at_zero.calls[calls] == ("endpoint-3", 2)
    deliver(at_zero, lambda_context)
    tick(lambda_context)
    deliver(at_zero, lambda_context)
    assert at_zero.counts() == {"endpoint-1": 0, "endpoint-2": 0, "endpoint-3": 2}
