"""The SageMaker fleet emulator through unmodified boto3 clients: what the scaling engine relies on."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from fleetscaler.local.sagemaker_emulator import CAPACITY_ERROR, OUTPUT_BUCKET, EndpointSpec, EventFaults


def spec(name: str = "fleet-1", **overrides: Any) -> EndpointSpec:
    values: dict[str, Any] = {
        "name": name,
        "initial_instances": 1,
        "provisioning_seconds": 240.0,
        "scale_in_seconds": 60.0,
        "rollback_seconds": 90.0,
    }
    values.update(overrides)
    return EndpointSpec(**values)


def statuses(events: list[dict[str, Any]]) -> list[str]:
    return [e["detail"]["EndpointStatus"] for e in events]


def test_scale_out_stays_updating_for_the_provisioning_delay(emulator_factory: Any) -> None:
    # Given an InService endpoint with one instance and a 240 s provisioning delay
    fleet = emulator_factory()
    fleet.emulator.add_endpoint(spec())
    # When it is asked for three instances
    fleet.scale("fleet-1", 3)
    fleet.advance(239)
    # Then it stays Updating, still serving with one instance, until the delay has passed
    during = fleet.describe("fleet-1")
    assert during["EndpointStatus"] == "Updating"
    assert during["ProductionVariants"][0]["CurrentInstanceCount"] == 1
    assert during["ProductionVariants"][0]["DesiredInstanceCount"] == 3
    fleet.advance(1)
    after = fleet.describe("fleet-1")
    assert after["EndpointStatus"] == "InService"
    assert after["ProductionVariants"][0]["CurrentInstanceCount"] == 3
    # And the state-change events said so, with the counts and a LastModifiedTime in epoch ms
    assert statuses(fleet.events) == ["UPDATING", "IN_SERVICE"]
    assert fleet.events[-1]["detail"]["ProductionVariants"][0]["DesiredInstanceCount"] == 3
    assert fleet.events[-1]["detail"]["LastModifiedTime"] == int(fleet.clock.now() * 1000)
    assert fleet.events[-1]["detail-type"] == "SageMaker Endpoint State Change"


def test_update_while_not_in_service_is_rejected_like_sagemaker(emulator_factory: Any) -> None:
    # Given an endpoint that is Updating
    fleet = emulator_factory()
    fleet.emulator.add_endpoint(spec())
    fleet.scale("fleet-1", 2)
    # When another update arrives
    with pytest.raises(ClientError) as caught:
        fleet.scale("fleet-1", 5)
    # Then boto3 sees SageMaker's ValidationException and the running update is untouched
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert error["Message"].startswith("Cannot update in-progress endpoint")
    assert fleet.describe("fleet-1")["ProductionVariants"][0]["DesiredInstanceCount"] == 2


def test_unknown_endpoint_is_a_validation_error(emulator_factory: Any) -> None:
    # Given an emulator without the endpoint; When it is described or invoked; Then ValidationException
    fleet = emulator_factory()
    with pytest.raises(ClientError) as described:
        fleet.describe("nope")
    assert described.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as invoked:
        fleet.runtime.invoke_endpoint_async(EndpointName="nope", InputLocation="s3://in/x")
    assert invoked.value.response["Error"]["Code"] == "ValidationException"


def test_capacity_shortage_rolls_back_to_the_old_count(emulator_factory: Any) -> None:
    # Given an endpoint short of capacity
    fleet = emulator_factory()
    fleet.emulator.add_endpoint(spec(initial_instances=2))
    fleet.emulator.set_capacity_shortage("fleet-1", True)
    # When it is scaled out
    fleet.scale("fleet-1", 6)
    fleet.advance(240)
    # Then after the provisioning delay it rolls back with SageMaker's capacity error
    rolling = fleet.describe("fleet-1")
    assert rolling["EndpointStatus"] == "RollingBack"
    assert rolling["FailureReason"] == CAPACITY_ERROR
    assert rolling["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    fleet.advance(90)
    # And ends InService at the old count, the reason still readable
    back = fleet.describe("fleet-1")
    assert back["EndpointStatus"] == "InService"
    assert back["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    assert back["ProductionVariants"][0]["DesiredInstanceCount"] == 2
    assert back["FailureReason"].startswith("CapacityError")
    assert statuses(fleet.events) == ["UPDATING", "ROLLING_BACK", "IN_SERVICE"]
    # And once the shortage is over, the same scale-out succeeds
    fleet.emulator.set_capacity_shortage("fleet-1", False)
    fleet.scale("fleet-1", 6)
    fleet.advance(240)
    assert fleet.describe("fleet-1")["ProductionVariants"][0]["CurrentInstanceCount"] == 6


def test_queue_drains_at_instance_throughput_and_writes_results_to_s3(aws: None, emulator_factory: Any) -> None:
    # Given an endpoint of 2 instances serving 0.5 requests/s each, results going to (moto) S3
    s3 = boto3.client("s3")
    fleet = emulator_factory(s3=s3)
    fleet.emulator.add_endpoint(spec(initial_instances=2, requests_per_second_per_instance=0.5))
    # When 30 requests are queued at once
    answers = [
        fleet.runtime.invoke_endpoint_async(EndpointName="fleet-1", InputLocation=f"s3://in/{i}", InferenceId=f"r{i}")
        for i in range(30)
    ]
    assert answers[0]["InferenceId"] == "r0"
    assert answers[0]["OutputLocation"] == f"s3://{OUTPUT_BUCKET}/fleet-1/r0.out"
    assert answers[0]["FailureLocation"].startswith(f"s3://{OUTPUT_BUCKET}/fleet-1/failures/")
    fleet.advance(10)
    # Then 1 request/s is served: 10 after 10 s, all 30 after 30 s, in arrival order
    assert fleet.emulator.endpoint("fleet-1").completed == 10
    fleet.advance(20)
    assert fleet.emulator.endpoint("fleet-1").completed == 30
    assert [c.inference_id for c in fleet.emulator.completed] == [f"r{i}" for i in range(30)]
    assert fleet.emulator.completed[-1].queue_seconds == pytest.approx(30.0)
    # And every output is in S3 where the answer said
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=OUTPUT_BUCKET)["Contents"]}
    assert keys == {f"fleet-1/r{i}.out" for i in range(30)}
    body = json.loads(s3.get_object(Bucket=OUTPUT_BUCKET, Key="fleet-1/r7.out")["Body"].read())
    assert body["inferenceId"] == "r7"


def test_bigger_instances_drain_faster_and_zero_instances_drain_nothing(emulator_factory: Any) -> None:
    # Given a 4-unit instance type (4x throughput) and an endpoint scaled to zero
    fleet = emulator_factory()
    fleet.emulator.add_endpoint(spec("big-1", capacity_units=4, requests_per_second_per_instance=0.4))
    fleet.emulator.add_endpoint(spec("zero-1", initial_instances=0, requests_per_second_per_instance=0.1))
    for i in range(20):
        fleet.runtime.invoke_endpoint_async(EndpointName="big-1", InputLocation=f"s3://in/{i}")
        fleet.runtime.invoke_endpoint_async(EndpointName="zero-1", InputLocation=f"s3://in/{i}")
    # When 25 s pass
    fleet.advance(25)
    # Then the big one served 10 and the empty one none
    assert fleet.emulator.endpoint("big-1").completed == 10
    assert fleet.emulator.endpoint("zero-1").completed == 0
    assert len(fleet.emulator.endpoint("zero-1").queue) == 20


def test_requests_past_their_ttl_fail_to_the_failure_location(aws: None, emulator_factory: Any) -> None:
    # Given an endpoint with no instances and a request with a 60 s TTL
    s3 = boto3.client("s3")
    fleet = emulator_factory(s3=s3)
    fleet.emulator.add_endpoint(spec(initial_instances=0))
    fleet.runtime.invoke_endpoint_async(
        EndpointName="fleet-1", InputLocation="s3://in/x", InferenceId="late", RequestTTLSeconds=60
    )
    # When 61 s pass
    fleet.advance(61)
    # Then the request is failed, and the failure is written where SageMaker said
    assert [c.failed for c in fleet.emulator.completed] == [True]
    assert fleet.emulator.endpoint("fleet-1").expired == 1
    s3.head_object(Bucket=OUTPUT_BUCKET, Key="fleet-1/failures/late-error.out")


def test_backlog_metrics_are_published_to_cloudwatch(aws: None, emulator_factory: Any) -> None:
    # Given two endpoints, one with 2 instances and one scaled to zero, each with 8 queued requests
    cloudwatch = boto3.client("cloudwatch")
    fleet = emulator_factory(cloudwatch=cloudwatch)
    fleet.emulator.add_endpoint(spec("busy-1", initial_instances=2, requests_per_second_per_instance=0.001))
    fleet.emulator.add_endpoint(spec("idle-1", initial_instances=0))
    for name in ("busy-1", "idle-1"):
        for i in range(8):
            fleet.runtime.invoke_endpoint_async(EndpointName=name, InputLocation=f"s3://in/{i}")
    # When a minute passes
    fleet.advance(60)
    # Then AWS/SageMaker carries the backlog, the backlog per instance and the no-capacity flag
    start = datetime.fromtimestamp(fleet.clock.now() - 600, tz=UTC)
    end = datetime.fromtimestamp(fleet.clock.now() + 60, tz=UTC)

    def latest(metric: str, endpoint: str) -> float | None:
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/SageMaker",
            MetricName=metric,
            Dimensions=[{"Name": "EndpointName", "Value": endpoint}],
            StartTime=start,
            EndTime=end,
            Period=60,
            Statistics=["Maximum"],
        )["Datapoints"]
        return max(points, key=lambda p: p["Timestamp"])["Maximum"] if points else None

    assert latest("ApproximateBacklogSize", "busy-1") == 8
    assert latest("ApproximateBacklogSizePerInstance", "busy-1") == 4
    assert latest("HasBacklogWithoutCapacity", "busy-1") == 0
    assert latest("ApproximateBacklogSize", "idle-1") == 8
    assert latest("HasBacklogWithoutCapacity", "idle-1") == 1
    assert latest("ApproximateBacklogSizePerInstance", "idle-1") is None


def run_updates(fleet: Any) -> None:
    fleet.emulator.add_endpoint(spec(provisioning_seconds=100, scale_in_seconds=100))
    for count in (2, 3, 4, 5, 6):
        fleet.scale("fleet-1", count)
        fleet.advance(100)
    fleet.advance(100)


def test_events_can_be_lost(emulator_factory: Any) -> None:
    # Given every event is lost on the way
    fleet = emulator_factory(faults=EventFaults(loss=1.0))
    # When the endpoint goes through five updates
    run_updates(fleet)
    # Then nothing reaches the handler, and the emulator counts the ten events it dropped
    assert fleet.events == []
    assert fleet.emulator.events_lost == 10


def test_events_can_be_duplicated(emulator_factory: Any) -> None:
    # Given every event is delivered twice
    fleet = emulator_factory(faults=EventFaults(duplicate=1.0))
    run_updates(fleet)
    # Then each state change arrives twice, identical (same id: EventBridge's at-least-once delivery)
    assert len(fleet.events) == 20
    assert fleet.events[0] == fleet.events[1]


def test_events_can_be_delayed_past_later_changes(emulator_factory: Any) -> None:
    # Given events delayed by 150 s, longer than an update takes
    fleet = emulator_factory(faults=EventFaults(delay_seconds=(150.0, 150.0)))
    fleet.emulator.add_endpoint(spec(provisioning_seconds=100))
    fleet.scale("fleet-1", 2)
    # When the update finishes
    fleet.advance(100)
    # Then no event has arrived yet, though the endpoint is InService
    assert fleet.events == []
    assert fleet.describe("fleet-1")["EndpointStatus"] == "InService"
    # And they arrive later, in their order, with their original LastModifiedTime
    fleet.advance(150)
    assert statuses(fleet.events) == ["UPDATING", "IN_SERVICE"]
    assert fleet.events[1]["detail"]["LastModifiedTime"] < int(fleet.clock.now() * 1000)


def test_event_faults_are_deterministic_for_a_seed(emulator_factory: Any) -> None:
    # Given two emulators with the same seed and 50% loss, and one with another seed
    faults = EventFaults(loss=0.5, duplicate=0.3, delay_seconds=(0, 50))
    runs = []
    for seed in (11, 11, 12):
        fleet = emulator_factory(seed=seed, faults=faults)
        run_updates(fleet)
        runs.append([(e["id"], e["detail"]["EndpointStatus"]) for e in fleet.events])
    # Then the same seed loses and duplicates the same events
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
